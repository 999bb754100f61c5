import CoreMetrics
import Switchboard

/// Reports `ServerMetrics` snapshots to swift-metrics under `switchboard_*` names, so an
/// application that bootstraps `MetricsSystem` (a Prometheus, StatsD, OTel backend...) sees
/// the gateway's numbers next to its own.
///
/// `ServerMetrics` holds totals; swift-metrics counters only go up by amounts, so the reporter
/// remembers the last snapshot and increments by the difference. Hook and fan-out latencies are
/// kept as histograms with fixed buckets, not samples: each new sample is recorded on the `Timer`
/// at its bucket's upper bound (samples over the largest bound at that bound), so a backend with
/// the same buckets sees exactly what `/metrics` shows. Not thread-safe: report from one task.
public final class MetricsReporter {
    private let factory: any MetricsFactory
    private var last = ServerMetrics()
    private var counters: [String: Counter] = [:]
    private var gauges: [String: Gauge] = [:]
    private var timers: [String: Timer] = [:]

    /// `factory` defaults to the one `MetricsSystem.bootstrap` installed.
    public init(factory: (any MetricsFactory)? = nil) {
        self.factory = factory ?? MetricsSystem.factory
    }

    /// Reports `snapshot`: counters by what grew since the previous call, gauges as they are.
    public func report(_ snapshot: ServerMetrics) {
        for state in ClientState.allCases where !state.isTerminal {
            gauge("switchboard_clients", ["state": state.specName]).record(snapshot.clientsByState[state.specName] ?? 0)
        }
        let gauges: [(String, KeyPath<ServerMetrics, Int>)] = [
            ("switchboard_connections", \.connections), ("switchboard_backpressured_clients", \.backpressuredClients),
            ("switchboard_rooms", \.rooms), ("switchboard_users", \.users),
        ]
        for (name, field) in gauges { gauge(name).record(snapshot[keyPath: field]) }

        let counters: [(String, KeyPath<ServerMetrics, Int>)] = [
            ("switchboard_connections_accepted_total", \.connectionsAccepted), ("switchboard_upgrades_total", \.upgrades),
            ("switchboard_messages_received_total", \.messagesIn), ("switchboard_messages_sent_total", \.messagesOut),
            ("switchboard_received_bytes_total", \.bytesIn), ("switchboard_sent_bytes_total", \.bytesOut),
            ("switchboard_bus_published_total", \.published), ("switchboard_backpressure_drops_total", \.backpressureDrops),
            ("switchboard_hook_failures_total", \.hookFailures), ("switchboard_idle_timeouts_total", \.idleTimeouts),
            ("switchboard_upgrade_timeouts_total", \.upgradeTimeouts),
            ("switchboard_rejected_connections_total", \.rejectedConnections),
            ("switchboard_compressed_payloads_total", \.compressedPayloads),
        ]
        for (name, field) in counters { increment(counter(name), snapshot[keyPath: field] - last[keyPath: field]) }
        for (code, count) in snapshot.closes {
            // Codes outside the registered ranges share one value, so the dimension stays bounded.
            let label = (1000...1015).contains(code) || (3000...4999).contains(code) ? "\(code)" : "other"
            increment(counter("switchboard_closes_total", ["code": label]), count - (last.closes[code] ?? 0))
        }

        for (hook, histogram) in snapshot.hookLatency {
            record(histogram, since: last.hookLatency[hook] ?? LatencyHistogram(),
                   on: timer("switchboard_hook_duration_seconds", ["hook": hook]))
        }
        record(snapshot.fanOutLatency, since: last.fanOutLatency, on: timer("switchboard_fanout_duration_seconds"))
        last = snapshot
    }

    /// The samples `histogram` gained since `before`, each at its bucket's upper bound.
    private func record(_ histogram: LatencyHistogram, since before: LatencyHistogram, on timer: Timer) {
        for (slot, count) in histogram.counts.enumerated() {
            let bound = histogram.bounds[min(slot, histogram.bounds.count - 1)]
            for _ in 0..<max(count - before.counts[slot], 0) { timer.recordSeconds(bound) }
        }
    }

    /// Reports `server.metrics()` every `interval` until the task is cancelled or the server stops.
    public func run(server: Server, every interval: Duration) async {
        while !Task.isCancelled {
            guard let snapshot = try? await server.metrics() else { return }
            report(snapshot)
            try? await Task.sleep(for: interval)
        }
    }

    /// A counter never goes down; a smaller total (a restarted server) is ignored, not subtracted.
    private func increment(_ counter: Counter, _ amount: Int) {
        if amount > 0 { counter.increment(by: amount) }
    }

    private func key(_ name: String, _ dimensions: [String: String]) -> String {
        name + dimensions.sorted { $0.key < $1.key }.map { "|\($0.key)=\($0.value)" }.joined()
    }

    private func dimensions(_ labels: [String: String]) -> [(String, String)] {
        labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    private func counter(_ name: String, _ labels: [String: String] = [:]) -> Counter {
        reused(&counters, name, labels) { Counter(label: $0, dimensions: $1, factory: factory) }
    }

    private func gauge(_ name: String, _ labels: [String: String] = [:]) -> Gauge {
        reused(&gauges, name, labels) { Gauge(label: $0, dimensions: $1, factory: factory) }
    }

    private func timer(_ name: String, _ labels: [String: String] = [:]) -> Timer {
        reused(&timers, name, labels) { Timer(label: $0, dimensions: $1, factory: factory) }
    }

    /// The metric of `name` and `labels` from `made`, made on first use and kept: each report
    /// records on the same handler instead of asking the factory for a new one.
    private func reused<Metric>(_ made: inout [String: Metric], _ name: String, _ labels: [String: String],
                                _ make: (String, [(String, String)]) -> Metric) -> Metric {
        let key = key(name, labels)
        if let existing = made[key] { return existing }
        let metric = make(name, dimensions(labels))
        made[key] = metric
        return metric
    }
}
