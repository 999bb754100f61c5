@testable import Switchboard
@testable import SwitchboardKernel
import Testing

/// The re-entry contract (`Engine`'s documentation): a delivery made by a hook on the loop is
/// a kernel step nested in the current one, performed before the hook returns; its small
/// fan-outs join the read's batch; and the effects array never keeps a performed payload.
@Suite("Re-entry from hooks")
struct ReentryTests {
    /// What a hook saw, handed out of its `@Sendable` closure.
    final class Seen: @unchecked Sendable {
        var values: [Int] = []
    }

    static func message(_ event: String, _ n: Int) -> [UInt8] {
        EngineHarness.clientText(#"{"event":"\#(event)","data":{"n":\#(n)}}"#)
    }

    /// `echo` replies to the sender, `broadcast` fans out to everyone; `seen` gets the number of
    /// writes each client (1...3) had when the delivery call returned.
    static func world(seen: Seen) async -> EngineHarness {
        let harness = EngineHarness { engine, message in
            let data = message.message.data
            if message.message.event == "echo" {
                engine.deliverNow(.toClient(id: message.clientID, event: "echo", data: data))
            } else {
                engine.deliverNow(.broadcast(event: "broadcast", data: data, exclude: []))
            }
            let driver = engine.driver as! RecordingDriver
            seen.values = (1...3).map { driver.writes[ConnectionID($0)]?.count ?? 0 }
        }
        await harness.connect(1...3)
        return harness
    }

    @Test("A reply made by messageHandler is written before the handler returns")
    func replyWrittenBeforeHookReturns() async {
        let seen = Seen()
        let world = await Self.world(seen: seen)
        world.receive(1, Self.message("echo", 7))
        #expect(seen.values == [1, 0, 0])
        #expect(world.driver.writes[1]?.map(\.kind) == [.twoPieces])
        #expect(world.driver.texts(1) == [#"{"event":"echo","data":{"n":7}}"#])
    }

    @Test("A small fan-out made by messageHandler waits for the end of the read, then goes out once per recipient")
    func hookFanOutJoinsTheReadsBatch() async {
        let seen = Seen()
        let world = await Self.world(seen: seen)
        world.receive(1, Self.message("broadcast", 1) + Self.message("broadcast", 2))
        #expect(seen.values == [0, 0, 0], "nothing written while the read is handled")
        for id: ConnectionID in 1...3 {
            #expect(world.driver.writes[id]?.count == 1, "client \(id)")
            #expect(world.driver.texts(id).count == 2, "client \(id)")
        }
    }

    @Test("A reply after a fan-out in the same read keeps its order: the batch is written first")
    func replyFollowsEarlierFanOut() async {
        let seen = Seen()
        let world = await Self.world(seen: seen)
        world.receive(1, Self.message("broadcast", 1) + Self.message("echo", 2))
        #expect(seen.values == [2, 1, 1], "the reply flushed the batch, then was written")
        #expect(world.driver.texts(1) == [#"{"event":"broadcast","data":{"n":1}}"#, #"{"event":"echo","data":{"n":2}}"#])
        #expect(world.driver.writes[2]?.count == 1 && world.driver.writes[3]?.count == 1)
    }

    @Test("A delivery made on the loop outside any step is an ordinary input: written when it returns")
    func deliveryOutsideAStep() async {
        let world = await Self.world(seen: Seen())
        world.engine.deliverNow(.broadcast(event: "news", data: .string("hi"), exclude: []))
        for id: ConnectionID in 1...3 {
            #expect(world.driver.writes[id]?.count == 1, "client \(id)")
            #expect(world.driver.texts(id) == [#"{"event":"news","data":"hi"}"#])
        }
    }

    @Test("An input a nested step raises (a backpressure drop) is handled after the outer step")
    func nestedStepsInputsWait() async {
        let logged = Lines()
        let seen = Seen()
        let log = Logger(level: .debug, sink: { _, line in logged.lines.append(line) })
        let world = EngineHarness(backpressureLimit: 100, log: log) { engine, message in
            engine.deliverNow(.toClient(id: message.clientID, event: "echo", data: message.message.data))
            seen.values = [engine.stats.backpressureDrops, logged.drops]
        }
        await world.connect(1...1)
        world.driver.stalled = [1]
        world.driver.preloaded[1] = 101
        world.receive(1, Self.message("echo", 1))
        #expect(seen.values == [1, 0], "dropped at once, reported to the kernel after the handler's step")
        #expect(logged.drops == 1)
        #expect(world.driver.writes[1] == nil)
    }

    /// Log lines, handed out of the logger's `@Sendable` sink.
    final class Lines: @unchecked Sendable {
        var lines: [String] = []
        /// The kernel's line for a `.backpressured` input (with the default policy: log, keep open).
        var drops: Int { lines.filter { $0.contains("backpressured client") }.count }
    }

    @Test("The kernel refills its previous reply: performed effects do not hold their payload")
    func replyPayloadIsReused() async {
        let world = await Self.world(seen: Seen())
        world.receive(1, Self.message("echo", 1))
        let first = world.engine.kernel.spareReply.map(ObjectIdentifier.init)
        world.receive(2, Self.message("echo", 2))
        world.receive(1, Self.message("echo", 3) + Self.message("echo", 4))
        #expect(first != nil)
        #expect(world.engine.kernel.spareReply.map(ObjectIdentifier.init) == first)
        #expect(world.driver.texts(1) == [1, 3, 4].map { #"{"event":"echo","data":{"n":\#($0)}}"# })
        #expect(world.driver.texts(2) == [#"{"event":"echo","data":{"n":2}}"#])
    }
}
