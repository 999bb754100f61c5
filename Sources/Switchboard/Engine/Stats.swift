#if canImport(Glibc)
import Glibc
#endif
import SwitchboardKernel

/// Counters for `/metrics` (`Server.metrics()`); loop thread only.
///
/// The counters marked `@exclusivity(unchecked)` change on every message (measured with
/// `Link`'s marks: 8,030 -> 7,658 instructions per echo round trip; see `Engine`).
final class Stats {
    var connectionsAccepted = 0
    var upgrades = 0
    @exclusivity(unchecked) var messagesIn = 0
    @exclusivity(unchecked) var messagesOut = 0
    @exclusivity(unchecked) var bytesIn = 0
    @exclusivity(unchecked) var bytesOut = 0
    @exclusivity(unchecked) var fanOuts = 0
    var published = 0
    var backpressureDrops = 0
    var hookFailures = 0
    var idleTimeouts = 0
    var upgradeTimeouts = 0
    var closes: [UInt16: Int] = [:]
    var compressedPayloads = 0
    var rejectedConnections = 0
    /// Async hooks only (never per message): see `HookScheduler`.
    /// Indexed by `Hook.rawValue`: a hook's answer records without hashing its name (a String
    /// key cost about 800 instructions per connection); `hookLatencyByName` names them.
    /// Unchecked: written for every hook answer (two a connection), a dynamic check each.
    @exclusivity(unchecked) var hookLatency = [LatencyHistogram?](repeating: nil, count: Hook.allCases.count)
    /// Bus messages and API deliveries but `toClient`: see `ServerMetrics.fanOutLatency`.
    var fanOutLatency = LatencyHistogram(bounds: LatencyHistogram.fanOutBounds)

    /// A hook that started at `start` (monotonic ms) answered now.
    func hookAnswered(_ hook: Hook, startedAt start: Int64, now: Int64) {
        let index = Int(hook.rawValue)
        if hookLatency[index] == nil { hookLatency[index] = LatencyHistogram() }
        hookLatency[index]!.record(seconds: Double(now - start) / 1000)
    }

    /// The hooks that answered at least once, by their Swift name (`validateRoom`), as
    /// `ServerMetrics.hookLatency` gives them.
    var hookLatencyByName: [String: LatencyHistogram] {
        var named: [String: LatencyHistogram] = [:]
        for hook in Hook.allCases { if let histogram = hookLatency[Int(hook.rawValue)] { named["\(hook)"] = histogram } }
        return named
    }

    /// A delivery that entered at `entered` (monotonic ns) has its frames queued.
    func fanOutQueued(enteredAt entered: UInt64) {
        fanOutLatency.record(seconds: Double(monotonicNanoseconds() &- entered) / 1e9)
    }
}

/// CLOCK_MONOTONIC in nanoseconds, readable from any thread (a vDSO call, no system call): the
/// fan-out's clock, finer than the driver's per-turn milliseconds.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}
