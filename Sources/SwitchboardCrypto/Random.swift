import COpenSSL

/// A source of random bytes. Production code uses `SystemRandomSource` (OpenSSL's CSPRNG);
/// a simulation injects a seeded source so that salts, IVs and ephemeral keys replay.
public protocol RandomSource {
    /// Fills every byte of `buffer`.
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer)
}

extension RandomSource {
    /// `count` fresh bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "negative byte count")
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }
}

/// The default source: OpenSSL's `RAND_bytes`.
public struct SystemRandomSource: RandomSource, Sendable {
    public init() {}

    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        SecureRandom.fill(buffer)
    }
}

/// Cryptographically secure random bytes from OpenSSL (`RAND_bytes`). A failure of the
/// generator is fatal: no caller can continue safely without randomness.
public enum SecureRandom {
    /// `count` fresh bytes.
    public static func bytes(_ count: Int) -> [UInt8] {
        var source = SystemRandomSource()
        return source.bytes(count)
    }

    /// Fills every byte of `buffer`.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard var next = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var remaining = buffer.count
        while remaining > 0 {
            let chunk = min(remaining, Int(Int32.max))
            guard RAND_bytes(next, Int32(chunk)) == 1 else {
                fatalError("OpenSSL RAND_bytes failed: \(drainErrors())")
            }
            next += chunk
            remaining -= chunk
        }
    }
}
