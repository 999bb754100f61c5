@testable import Switchboard
import Testing

/// The engine batches the small broadcasts of one read into one write per recipient. The
/// simulation feeds the engine message by message, so these tests drive the engine directly
/// with a recording driver: several frames in one `bytesReceived`.
@Suite("Fan-out batching")
struct FanOutBatchTests {
    /// Three authenticated clients whose `broadcast` custom event fans out to every client:
    /// 1 publishes, 2 is stalled with `preload` bytes already queued, 3 reads.
    static func world(limit: Int, preload: Int) async -> EngineHarness {
        let harness = EngineHarness(backpressureLimit: limit) { engine, message in
            engine.deliverNow(.broadcast(event: "broadcast", data: message.message.data, exclude: []))
        }
        await harness.connect(1...3)
        harness.driver.stalled = [2]
        harness.driver.preloaded[2] = preload
        return harness
    }

    static func broadcast(_ index: Int) -> [UInt8] {
        EngineHarness.clientText(#"{"event":"broadcast","data":{"n":\#(index),"pad":""# + String(repeating: "x", count: 400) + #""}}"#)
    }

    static func numbers(_ texts: [String]) -> [Int] {
        texts.compactMap { (try? JSONValue.parse($0))?["data"]?["n"]?.numberValue?.int }
    }

    @Test("Eight broadcasts in one read: each recipient gets them in order, in one write")
    func batchedInOrder() async {
        let world = await Self.world(limit: 1 << 20, preload: 0)
        world.receive(1, (0..<8).flatMap(Self.broadcast))
        for id: ConnectionID in 1...3 {
            let writes = world.driver.writes[id] ?? []
            #expect(writes.count == 1, "client \(id): \(writes.count) writes")
            #expect(writes.first?.kind == .copied)
            let numbers = Self.numbers(RecordingDriver.texts(writes.first?.bytes ?? []))
            #expect(numbers == Array(0..<8), "client \(id): \(numbers)")
        }
    }

    @Test("Broadcasts in separate reads are separate writes")
    func separateReadsAreNotBatched() async {
        let world = await Self.world(limit: 1 << 20, preload: 0)
        for index in 0..<3 { world.receive(1, Self.broadcast(index)) }
        #expect(world.driver.writes[3]?.count == 3)
        #expect(Self.numbers(world.driver.texts(3)) == [0, 1, 2])
    }

    @Test("A batch crossing the backpressure limit drops exactly what message-by-message delivery drops",
          arguments: [0, 1500, 3600, 3900, 4096, 4097])
    func batchKeepsPerMessageBackpressure(preload: Int) async {
        let limit = 4096
        // Together, in one read ...
        let batched = await Self.world(limit: limit, preload: preload)
        batched.receive(1, (0..<8).flatMap(Self.broadcast))
        // ... and one read per message.
        let single = await Self.world(limit: limit, preload: preload)
        for index in 0..<8 { single.receive(1, Self.broadcast(index)) }

        let frameSize = batched.driver.written(3).count / 8
        #expect(frameSize > 400)
        // PROTOCOL.md 7: message j is queued iff what is queued before it is within the limit.
        let expected = (0..<8).filter { preload + $0 * frameSize <= limit }.count
        #expect(batched.driver.texts(2).count == expected, "batched: \(batched.driver.texts(2).count), expected \(expected)")
        #expect(single.driver.texts(2) == batched.driver.texts(2))
        #expect(batched.driver.texts(3).count == 8 && single.driver.texts(3) == batched.driver.texts(3))
        #expect(batched.engine.stats.backpressureDrops == 8 - expected)
        #expect(single.engine.stats.backpressureDrops == 8 - expected)
        // What fitted went out in one write; nothing at all when the first did not fit.
        #expect(batched.driver.writes[2]?.count ?? 0 == (expected > 0 ? 1 : 0))
        #expect(batched.driver.writes[3]?.count == 1)
        #expect(single.driver.writes[3]?.count == 8)
    }
}
