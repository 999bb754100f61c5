import MetricsTestKit
import Switchboard
import SwitchboardMetrics
import Testing

/// `MetricsReporter` against swift-metrics' recording factory.
@Suite struct MetricsReporterTests {
    @Test func countersGrowByTheDifferenceAndGaugesTakeTheValue() throws {
        let recorded = TestMetrics()
        let reporter = MetricsReporter(factory: recorded)
        var snapshot = ServerMetrics()
        snapshot.clientsByState = ["authenticated": 3]
        snapshot.connections = 4
        snapshot.messagesIn = 10
        snapshot.closes = [4003: 2, 7: 1]
        reporter.report(snapshot)
        snapshot.messagesIn = 25
        snapshot.connections = 1
        snapshot.closes = [4003: 5, 7: 1, 6000: 2]
        reporter.report(snapshot)

        #expect(recorded.counterTotal(label: "switchboard_messages_received_total") == 25)
        #expect(try recorded.expectGauge("switchboard_connections").lastValue == 1)
        #expect(try recorded.expectGauge("switchboard_clients", [("state", "authenticated")]).lastValue == 3)
        #expect(try recorded.expectGauge("switchboard_clients", [("state", "unauthorized")]).lastValue == 0)
        #expect(recorded.counterTotal(label: "switchboard_closes_total", dimensions: [("code", "4003")]) == 5)
        #expect(recorded.counterTotal(label: "switchboard_closes_total", dimensions: [("code", "other")]) == 3)
    }

    @Test func hookLatencyReachesATimerAtItsBucketBound() throws {
        let recorded = TestMetrics()
        let reporter = MetricsReporter(factory: recorded)
        var snapshot = ServerMetrics()
        var authenticate = LatencyHistogram()
        authenticate.record(seconds: 0.04)
        snapshot.hookLatency["authenticate"] = authenticate
        reporter.report(snapshot)
        authenticate.record(seconds: 0.2)
        snapshot.hookLatency["authenticate"] = authenticate
        reporter.report(snapshot)
        reporter.report(snapshot)

        let timer = try recorded.expectTimer("switchboard_hook_duration_seconds", [("hook", "authenticate")])
        #expect(timer.values == [50_000_000, 250_000_000])
    }

    /// The fan-out histogram's finer buckets reach its Timer the same way.
    @Test func fanOutLatencyReachesATimerAtItsBucketBound() throws {
        let recorded = TestMetrics()
        let reporter = MetricsReporter(factory: recorded)
        var snapshot = ServerMetrics()
        snapshot.fanOutLatency.record(seconds: 0.00003)
        snapshot.fanOutLatency.record(seconds: 0.0004)
        reporter.report(snapshot)
        reporter.report(snapshot)
        let timer = try recorded.expectTimer("switchboard_fanout_duration_seconds")
        #expect(timer.values == [100_000, 500_000])
    }
}
