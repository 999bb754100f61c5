import SwitchboardJSON
import Testing
@testable import SwitchboardKernel

/// `disconnect_requested`: the application closes a client or a user's clients with a code it
/// chose among the spec's `origin: request` codes.
@Suite struct DisconnectRequestTests {
    typealias Machine = KernelScenarioTests.Machine

    @Test func theRequestableCodesAreTheSpecsRequestOrigin() {
        #expect(CloseCode.requestable.map(\.code) == [4010, 4011])
        #expect(CloseCode.requested(4011) == .reconnectRequested)
        #expect(CloseCode.requested(4003) == nil)  // a kernel code
        #expect(CloseCode.requested(1000) == nil)  // a codec code
        #expect(CloseCode.disconnectedByServer.reconnect == .no)
        #expect(CloseCode.reconnectRequested.reconnect == .yes)
    }

    @Test func aClientIsClosedWithTheChosenCodeAndItsDisconnectRuns() {
        var m = Machine()
        _ = m.connect(1, user: "a")
        _ = m.connect(2, user: "a")
        let effects = m.feed(.disconnect(.client(id: "c2"), .reconnectRequested))
        #expect(KernelScenarioTests.sent(effects) == ["2 close 4011 Reconnect requested by the server"])
        #expect(effects.contains(.callClientDisconnected(ClientHandle(2), clientID: "c2", userID: "a")))
        #expect(m.kernel.clients(ofUser: "a") == ["c1"])
    }

    @Test func everyClientOfAUserIsClosedAndNoOneElse() {
        var m = Machine()
        _ = m.connect(1, user: "a")
        _ = m.connect(2, user: "b")
        _ = m.connect(3, user: "a")
        let effects = m.feed(.disconnect(.user("a"), .disconnectedByServer))
        #expect(KernelScenarioTests.sent(effects).sorted() == ["1 close 4010 Disconnected by the server",
                                                                "3 close 4010 Disconnected by the server"])
        #expect(m.kernel.clientCount == 1)
        #expect(m.kernel.clients(ofUser: "b") == ["c2"])
    }

    @Test func aClientNotYetAuthenticatedCanBeClosedByID() {
        var m = Machine()
        _ = m.feed(.opened(ClientHandle(1), id: "c1"))
        let effects = m.feed(.disconnect(.client(id: "c1"), .disconnectedByServer))
        #expect(KernelScenarioTests.sent(effects) == ["1 close 4010 Disconnected by the server"])
        #expect(m.kernel.clientCount == 0)
    }

    @Test func aCodeNotOfferedToRequestsClosesNothing() {
        var m = Machine()
        _ = m.connect(1, user: "a")
        let effects = m.feed(.disconnect(.client(id: "c1"), .authenticationFailed))
        #expect(KernelScenarioTests.sent(effects).isEmpty)
        #expect(m.kernel.clientCount == 1)
    }

    @Test func nobodyByThatIdOrUserIsNothing() {
        var m = Machine()
        _ = m.connect(1, user: "a")
        #expect(m.feed(.disconnect(.client(id: "nope"), .disconnectedByServer)).isEmpty)
        #expect(m.feed(.disconnect(.user("nope"), .disconnectedByServer)).isEmpty)
    }
}
