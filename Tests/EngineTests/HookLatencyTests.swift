@testable import Switchboard
import Testing

/// Hook latencies measured on the loop with the driver's monotonic clock.
@Suite("Hook latency")
struct HookLatencyTests {
    @Test func anAuthenticateAnsweredAfter50msLandsInThe50msBucket() async {
        let harness = EngineHarness()
        let id: ConnectionID = 1
        harness.engine.connectionOpened(id, peer: "test")
        EngineHarness.upgrade.withUnsafeBytes { harness.engine.bytesReceived(id, $0) }
        #expect(harness.engine.metrics().hookLatency["authenticate"] == nil)
        harness.receive(id, EngineHarness.clientText(#"{"event":"authenticate","data":{"token":"t"}}"#))
        harness.driver.clock += 50
        await harness.driver.settle()

        let histogram = try! #require(harness.engine.metrics().hookLatency["authenticate"])
        #expect(histogram.count == 1)
        #expect(histogram.sum == 0.05)
        let at50 = LatencyHistogram.bounds.firstIndex(of: 0.05)!
        #expect(histogram.cumulative[at50 - 1] == 0)
        #expect(histogram.cumulative[at50] == 1)
        #expect(histogram.cumulative.last == 1)

        // A second client answered at once: the count goes up, the fast bucket gets it.
        harness.engine.connectionOpened(2, peer: "test")
        EngineHarness.upgrade.withUnsafeBytes { harness.engine.bytesReceived(2, $0) }
        harness.receive(2, EngineHarness.clientText(#"{"event":"authenticate","data":{"token":"t"}}"#))
        await harness.driver.settle()
        let after = harness.engine.metrics().hookLatency["authenticate"]!
        #expect(after.count == 2)
        #expect(after.cumulative[0] == 1)
        #expect(after.cumulative[at50] == 2)
    }

    @Test func bucketsAreUpperBoundsInclusive() {
        var histogram = LatencyHistogram()
        histogram.record(seconds: 0.001)
        histogram.record(seconds: 0.0011)
        histogram.record(seconds: 11)
        #expect(histogram.counts[0] == 1)
        #expect(histogram.counts[1] == 1)
        #expect(histogram.counts.last == 1)
        #expect(histogram.cumulative == [1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3])
    }
}
