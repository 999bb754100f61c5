/// The simulation's only source of randomness: xoshiro256** seeded through SplitMix64.
///
/// Every decision of a run is drawn from streams derived from one seed. Each concern (a
/// connection's network, a client's plan, a client's hooks, the bus) has a stream of its own,
/// so the order in which unrelated parts draw never changes what another part draws.
public struct SimRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    public init(seed: UInt64) {
        var state = seed
        s0 = SimRandom.splitMix(&state)
        s1 = SimRandom.splitMix(&state)
        s2 = SimRandom.splitMix(&state)
        s3 = SimRandom.splitMix(&state)
    }

    /// An independent stream for `(seed, domain, index)`.
    public init(seed: UInt64, domain: UInt64, index: UInt64 = 0) {
        var state = seed ^ (domain &* 0x9E37_79B9_7F4A_7C15)
        _ = SimRandom.splitMix(&state)
        state ^= index &* 0xD1B5_4A32_D192_ED03
        self.init(seed: SimRandom.splitMix(&state))
    }

    static func splitMix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Uniform in `range` (modulo bias is irrelevant at these sizes).
    public mutating func int(_ range: ClosedRange<Int>) -> Int {
        let span = UInt64(range.upperBound - range.lowerBound) &+ 1
        if span == 0 { return Int(bitPattern: UInt(next())) }
        return range.lowerBound + Int(next() % span)
    }

    public mutating func int64(_ range: ClosedRange<Int64>) -> Int64 {
        Int64(int(Int(range.lowerBound)...Int(range.upperBound)))
    }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    public mutating func chance(_ probability: Double) -> Bool { unit() < probability }

    public mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

    /// An index drawn with the given weights.
    public mutating func weighted(_ weights: [Double]) -> Int {
        let total = weights.reduce(0, +)
        var point = unit() * total
        for (index, weight) in weights.enumerated() {
            if point < weight { return index }
            point -= weight
        }
        return weights.count - 1
    }
}
