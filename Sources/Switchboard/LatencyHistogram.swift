/// How long one kind of hook took, as a Prometheus histogram with fixed buckets.
///
/// Filled on the loop from the driver's monotonic clock (milliseconds), so a sample is the
/// time from the kernel's `call...` effect to the loop turn that takes the hook's answer:
/// queueing on the loop included, which is what a client waits for.
public struct LatencyHistogram: Sendable, Equatable {
    /// Upper bounds in seconds (`le`), ascending; `+Inf` is implied.
    public static let bounds: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// Samples per bucket, not cumulative: `counts[i]` holds those in `(bounds[i-1], bounds[i]]`,
    /// and the last slot those over the largest bound.
    public private(set) var counts = [Int](repeating: 0, count: bounds.count + 1)
    /// Total of every sample, in seconds.
    public private(set) var sum = 0.0
    public private(set) var count = 0

    public init() {}

    public mutating func record(seconds: Double) {
        let slot = Self.bounds.firstIndex { seconds <= $0 } ?? Self.bounds.count
        counts[slot] += 1
        sum += seconds
        count += 1
    }

    /// Prometheus `_bucket` values: samples at or under each bound, then `+Inf` (== `count`).
    public var cumulative: [Int] {
        var running = 0
        return counts.map { running += $0; return running }
    }
}
