/// XOR-masking of payload bytes with a 4-byte key (RFC 6455 section 5.3), 8 bytes at a time.
enum Masking {
    /// Copies `count` bytes from `source` to `destination` (which may be the same memory), XOR-ing
    /// with `key` (the key's 4 bytes in wire order) starting at key byte `phase`; returns the next phase.
    @inline(__always)
    static func apply(key: UInt32, phase: Int, source: UnsafeRawPointer, destination: UnsafeMutableRawPointer,
                      count: Int) -> Int {
        // The key rotated so that its first byte in memory is the one for the first payload byte.
        let rotated: UInt32
        if phase == 0 {
            rotated = key
        } else {
            let doubled = UInt64(key) | UInt64(key) << 32
            rotated = withUnsafeBytes(of: doubled) { $0.loadUnaligned(fromByteOffset: phase, as: UInt32.self) }
        }
        let wide = UInt64(rotated) | UInt64(rotated) << 32
        var index = 0
        while index + 16 <= count {
            let a = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let b = source.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
            destination.storeBytes(of: a ^ wide, toByteOffset: index, as: UInt64.self)
            destination.storeBytes(of: b ^ wide, toByteOffset: index + 8, as: UInt64.self)
            index += 16
        }
        if index + 8 <= count {
            let a = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            destination.storeBytes(of: a ^ wide, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        if index < count {
            withUnsafeBytes(of: rotated) { keyBytes in
                while index < count {
                    let byte = source.load(fromByteOffset: index, as: UInt8.self) ^ keyBytes[index & 3]
                    destination.storeBytes(of: byte, toByteOffset: index, as: UInt8.self)
                    index += 1
                }
            }
        }
        return (phase + count) & 3
    }
}
