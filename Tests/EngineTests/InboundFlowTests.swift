@testable import Switchboard
import SwitchboardBus
import Testing

/// `InboundFlow`: a client with `maxPendingHookCalls` hook calls unanswered is not read from
/// until half of them have answered.
@Suite("Inbound flow control")
struct InboundFlowTests {
    /// An engine on a recording driver whose `validateRoom` answers at once (the answers then
    /// wait in the driver's `execute` queue until `settle`), and an authenticated client 1.
    private static func engine(limit: Int) async -> (Engine, RecordingDriver) {
        let driver = RecordingDriver()
        var hooks = Hooks(authenticate: { _ in AuthResult(userID: "u") })
        hooks.validateRoom = { $0.rooms }
        var options = ServerOptions()
        options.maxPendingHookCalls = limit
        let engine = Engine(options: options, hooks: hooks, driver: driver, bus: InProcessBus(), serverID: "test",
                            ids: IDGenerator(), log: Logger(level: .error, sink: { _, _ in }))
        engine.connectionOpened(1, peer: "test")
        EngineHarness.upgrade.withUnsafeBytes { engine.bytesReceived(1, $0) }
        EngineHarness.clientText(#"{"event":"authenticate","data":{"token":"t"}}"#).withUnsafeBytes { engine.bytesReceived(1, $0) }
        await driver.settle()
        return (engine, driver)
    }

    private static func join(_ engine: Engine, count: Int) {
        for n in 0..<count {
            EngineHarness.clientText(#"{"event":"join","data":{"rooms":["r\#(n)"]}}"#).withUnsafeBytes {
                engine.bytesReceived(1, $0)
            }
        }
    }

    @Test("reading pauses at the bound of unanswered hook calls and resumes once they answer")
    func pausesAtBound() async {
        let (engine, driver) = await Self.engine(limit: 4)
        #expect(driver.readingPaused.isEmpty)  // authenticate answered: nothing pending
        Self.join(engine, count: 3)
        #expect(driver.readingPaused.isEmpty)
        Self.join(engine, count: 1)
        #expect(driver.readingPaused == [1])
        await driver.settle()  // every validateRoom answer reaches the loop
        #expect(driver.readingPaused.isEmpty)
        #expect(engine.links[1]?.pendingHookCalls == 0)
    }

    @Test("0 turns inbound flow control off")
    func off() async {
        let (engine, driver) = await Self.engine(limit: 0)
        Self.join(engine, count: 200)
        #expect(driver.readingPaused.isEmpty)
        await driver.settle()
    }
}
