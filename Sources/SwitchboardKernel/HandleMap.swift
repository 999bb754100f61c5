/// A hash map from `ClientHandle` to a record: open addressing with linear probing and
/// backward-shift deletion, hashed with one multiply (Fibonacci hashing). Every input looks
/// up its client here, so it avoids the per-lookup SipHash of `Dictionary`. Not iterated:
/// the kernel walks `live` for a deterministic order.
struct HandleMap<Value> {
    private var keys: [UInt64]
    private var values: [Value?]
    private var mask: Int
    private(set) var count = 0
    /// Keys are stored + 1 so that 0 marks an empty bucket (handle UInt64.max is not supported).
    private static var empty: UInt64 { 0 }

    init() {
        keys = Array(repeating: 0, count: 16)
        values = Array(repeating: nil, count: 16)
        mask = 15
    }

    @inline(__always)
    private func bucket(_ stored: UInt64) -> Int {
        Int(truncatingIfNeeded: (stored &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    subscript(handle: ClientHandle) -> Value? {
        get {
            let stored = handle.rawValue &+ 1
            var index = bucket(stored)
            while true {
                let key = keys[index]
                if key == stored { return values[index] }
                if key == Self.empty { return nil }
                index = (index + 1) & mask
            }
        }
        set {
            if let newValue { insert(handle.rawValue &+ 1, newValue) } else { remove(handle.rawValue &+ 1) }
        }
    }

    private mutating func insert(_ stored: UInt64, _ value: Value) {
        if (count + 1) * 4 > keys.count * 3 { grow() }
        var index = bucket(stored)
        while true {
            let key = keys[index]
            if key == stored {
                values[index] = value
                return
            }
            if key == Self.empty {
                keys[index] = stored
                values[index] = value
                count += 1
                return
            }
            index = (index + 1) & mask
        }
    }

    private mutating func remove(_ stored: UInt64) {
        var index = bucket(stored)
        while keys[index] != stored {
            if keys[index] == Self.empty { return }
            index = (index + 1) & mask
        }
        // Backward-shift: pull later members of the probe run into the hole.
        var hole = index
        var next = (hole + 1) & mask
        while keys[next] != Self.empty {
            let home = bucket(keys[next])
            // Move `next` into `hole` when its home does not lie cyclically in (hole, next].
            let distanceToHole = (hole - home) & mask
            let distanceToNext = (next - home) & mask
            if distanceToHole < distanceToNext {
                keys[hole] = keys[next]
                values[hole] = values[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        keys[hole] = Self.empty
        values[hole] = nil
        count -= 1
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        keys = Array(repeating: 0, count: oldKeys.count * 2)
        values = Array(repeating: nil, count: oldKeys.count * 2)
        mask = keys.count - 1
        count = 0
        for (index, key) in oldKeys.enumerated() where key != Self.empty {
            insert(key, oldValues[index]!)
        }
    }
}
