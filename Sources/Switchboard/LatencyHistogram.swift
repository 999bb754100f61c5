/// How long something took, as a Prometheus histogram with fixed buckets.
///
/// Hook latencies are filled on the loop from the driver's monotonic clock (milliseconds), so
/// a sample is the time from the kernel's `call...` effect to the loop turn that takes the
/// hook's answer: queueing on the loop included, which is what a client waits for. Fan-out
/// latencies (`ServerMetrics.fanOutLatency`) use finer buckets: a delivery usually takes
/// microseconds, and only a loop under load pushes it into milliseconds.
public struct LatencyHistogram: Sendable, Equatable {
    /// The hooks' upper bounds in seconds (`le`), ascending; `+Inf` is implied.
    public static let bounds: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// The fan-out's upper bounds, from 100 µs.
    public static let fanOutBounds: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                0.1, 0.25, 0.5, 1]

    /// This histogram's upper bounds in seconds, ascending.
    public let bounds: [Double]
    /// Samples per bucket, not cumulative: `counts[i]` holds those in `(bounds[i-1], bounds[i]]`,
    /// and the last slot those over the largest bound.
    public private(set) var counts: [Int]
    /// Total of every sample, in seconds.
    public private(set) var sum = 0.0
    public private(set) var count = 0

    public init(bounds: [Double] = LatencyHistogram.bounds) {
        self.bounds = bounds
        counts = [Int](repeating: 0, count: bounds.count + 1)
    }

    public mutating func record(seconds: Double) {
        let slot = bounds.firstIndex { seconds <= $0 } ?? bounds.count
        counts[slot] += 1
        sum += seconds
        count += 1
    }

    /// Adds another histogram's samples (one with the same bounds: another loop's).
    public mutating func add(_ other: LatencyHistogram) {
        precondition(other.bounds == bounds, "histograms with different bounds")
        for slot in counts.indices { counts[slot] += other.counts[slot] }
        sum += other.sum
        count += other.count
    }

    /// Prometheus `_bucket` values: samples at or under each bound, then `+Inf` (== `count`).
    public var cumulative: [Int] {
        var running = 0
        return counts.map { running += $0; return running }
    }
}
