import SwitchboardJSON
import Testing
@testable import SwitchboardKernel

/// Issue 18, proxy hooks: the spec's `rpc` and `publish` client events and their hooks' answers,
/// step by step with exact effects (the serve proxy is tested end to end in ServeTests).
@Suite struct ProxyCallTests {
    typealias Machine = KernelScenarioTests.Machine
    static let c1 = ClientHandle(1), c2 = ClientHandle(2)

    static func rpcCall(_ effects: [Effect]) -> InboundMessage? {
        effects.lazy.compactMap { if case .callRPC(_, _, _, let call) = $0 { call } else { nil } }.first
    }

    @Test func anRPCIsAnsweredWithItsIDMethodAndResult() throws {
        var m = Machine { $0.rpcConfigured = true }
        _ = m.connect(1, user: "alice")
        let effects = m.text(1, #"{"event":"rpc","data":{"method":"sum","data":[1,2]},"id":7}"#)
        let call = try #require(Self.rpcCall(effects))
        #expect(effects.last == .callRPC(Self.c1, clientID: "c1", userID: "alice", call: call))
        #expect(call.id == .number(7) && call.data?["data"] == [1, 2])
        let reply = m.feed(.rpcReturned(Self.c1, call: call, .ok(["sum": 3])))
        #expect(KernelScenarioTests.sent(reply) == [#"1 {"event":"rpc_reply","data":{"id":7,"method":"sum","result":{"sum":3}}}"#])
    }

    @Test func aRefusedOrFailedRPCRepliesWithTheSpecError() throws {
        var m = Machine { $0.rpcConfigured = true }
        _ = m.connect(1, user: "alice")
        let call = try #require(Self.rpcCall(m.text(1, #"{"event":"rpc","data":{"method":"x"},"id":"a"}"#)))
        #expect(KernelScenarioTests.sent(m.feed(.rpcReturned(Self.c1, call: call, .rejected)))
                == [#"1 {"event":"rpc_reply","data":{"id":"a","method":"x","error":"RPC refused"}}"#])
        let failed = m.feed(.rpcReturned(Self.c1, call: call, .threw("timeout")))
        #expect(KernelScenarioTests.sent(failed) == [#"1 {"event":"rpc_reply","data":{"id":"a","method":"x","error":"RPC failed"}}"#])
        // A call without an id or a method still gets its one reply (null result).
        let bare = try #require(Self.rpcCall(m.text(1, #"{"event":"rpc"}"#)))
        #expect(KernelScenarioTests.sent(m.feed(.rpcReturned(Self.c1, call: bare, .ok(nil))))
                == [#"1 {"event":"rpc_reply","data":{"result":null}}"#])
    }

    @Test func withoutTheHookRPCAndPublishAreCustomEvents() {
        var m = Machine { $0.rpcConfigured = false; $0.publishConfigured = false }  // every hook is on by default
        _ = m.connect(1, user: "alice")
        let rpc = m.text(1, #"{"event":"rpc","data":{"method":"x"}}"#)
        let publish = m.text(1, #"{"event":"publish","data":{"room":"c1","data":1}}"#)
        #expect(rpc.contains { if case .callMessageHandler(_, _, _, let message) = $0 { message.event == "rpc" } else { false } })
        #expect(publish.contains { if case .callMessageHandler(_, _, _, let message) = $0 { message.event == "publish" } else { false } })
    }

    @Test func beforeConnectedBothAreRefused() {
        var m = Machine { $0.rpcConfigured = true; $0.publishConfigured = true }
        _ = m.feed(.opened(Self.c1, id: "c1"))
        #expect(KernelScenarioTests.sent(m.text(1, #"{"event":"rpc","data":{"method":"x"}}"#))
                == [#"1 {"event":"error","data":{"message":"Not authenticated"}}"#])
        #expect(KernelScenarioTests.sent(m.text(1, #"{"event":"publish","data":{"room":"r","data":1}}"#))
                == [#"1 {"event":"error","data":{"message":"Not authenticated"}}"#])
    }

    @Test func aPublishGoesToTheRoomHereAndOnTheBus() {
        var m = Machine { $0.publishConfigured = true }
        _ = m.connect(1, user: "alice")
        _ = m.connect(2, user: "bob")
        // Both are in the default rooms; the publisher is a member too.
        let call = m.text(1, #"{"event":"publish","data":{"room":"ws-default","data":{"text":"hi"}}}"#)
        #expect(call.last == .callPublish(Self.c1, clientID: "c1", userID: "alice", room: "ws-default", data: ["text": "hi"]))
        let effects = m.feed(.publishReturned(Self.c1, room: "ws-default", .ok(["text": "HI"])))
        let publication = #"{"event":"publication","data":{"room":"ws-default","clientId":"c1","userId":"alice","data":{"text":"HI"}}}"#
        #expect(KernelScenarioTests.sent(effects) == ["[1, 2] " + publication])
        #expect(effects.contains(.publish(channel: "ws:room:ws-default", message: Array(
            #"{"serverId":"me","type":"room","target":"ws-default","event":"publication","data":{"room":"ws-default","clientId":"c1","userId":"alice","data":{"text":"HI"}}}"#.utf8))))
    }

    @Test func aPublishToARoomNotJoinedOrRefusedIsAnError() {
        var m = Machine { $0.publishConfigured = true }
        _ = m.connect(1, user: "alice")
        #expect(KernelScenarioTests.sent(m.text(1, #"{"event":"publish","data":{"room":"elsewhere","data":1}}"#))
                == [#"1 {"event":"error","data":{"message":"Not in room"}}"#])
        #expect(KernelScenarioTests.sent(m.feed(.publishReturned(Self.c1, room: "ws-default", .rejected)))
                == [#"1 {"event":"error","data":{"message":"Publish rejected"}}"#])
        #expect(KernelScenarioTests.sent(m.feed(.publishReturned(Self.c1, room: "ws-default", .threw("500"))))
                == [#"1 {"event":"error","data":{"message":"Publish failed"}}"#])
        // Left the room while the hook ran: nothing is published.
        _ = m.text(1, #"{"event":"leave","data":{"rooms":["ws-default"]}}"#)
        let late = m.feed(.publishReturned(Self.c1, room: "ws-default", .ok(1)))
        #expect(KernelScenarioTests.sent(late) == [#"1 {"event":"error","data":{"message":"Not in room"}}"#])
        #expect(!late.contains { if case .publish = $0 { true } else { false } })
    }

    @Test func aThrowingValidateRoomIsReportedOnlyWhenAsked() throws {
        for report in [false, true] {
            var m = Machine { $0.validateRoomConfigured = true; $0.reportJoinFailures = report }
            _ = m.connect(1, user: "alice")
            let call = m.text(1, #"{"event":"join","data":{"rooms":["news"]}}"#)
            guard case .callValidateRoom(_, let attempt, _, _, _)? = call.last else { Issue.record("no validateRoom call"); return }
            let effects = m.feed(.validateRoomReturned(Self.c1, attempt, .threw("backend down")))
            #expect(KernelScenarioTests.sent(effects) == (report ? [#"1 {"event":"error","data":{"message":"Join failed"}}"#] : []))
            #expect(m.kernel.client(Self.c1)?.rooms.contains("news") == false)
        }
    }
}
