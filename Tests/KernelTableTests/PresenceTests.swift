import SwitchboardJSON
import Testing
@testable import SwitchboardKernel

/// Presence (spec: `presence_rooms`, the `presence` event, `announce_presence`): join and leave
/// events to the other members of rooms with presence, here and on the bus, and the query.
@Suite struct PresenceTests {
    typealias Machine = KernelScenarioTests.Machine

    static func machine(_ patterns: [String] = ["chat:*", "lobby"]) -> Machine {
        Machine {
            $0.presenceRooms = patterns
            $0.validateRoomConfigured = true
            $0.defaultRooms = []
        }
    }

    /// `join` answered by validateRoomFn with `rooms`; the effects of the answer.
    static func join(_ m: inout Machine, _ handle: UInt64, _ rooms: [String]) -> [Effect] {
        let names = rooms.map { "\"\($0)\"" }.joined(separator: ",")
        let call = m.text(handle, #"{"event":"join","data":{"rooms":[\#(names)]}}"#)
        guard case .callValidateRoom(_, let attempt, _, _, _)? = call.last else {
            Issue.record("join did not call validateRoomFn: \(call)")
            return []
        }
        return m.feed(.validateRoomReturned(ClientHandle(handle), attempt, .ok(rooms)))
    }

    static func published(_ effects: [Effect]) -> [String] {
        effects.compactMap {
            if case .publish(let channel, let message) = $0 { "\(channel) \(String(decoding: message, as: UTF8.self))" } else { nil }
        }
    }

    static func changes(_ effects: [Effect]) -> [String] {
        effects.compactMap {
            if case .presenceChanged(let room, let member, let joined) = $0 { "\(joined ? "+" : "-")\(member.clientID)@\(room)" } else { nil }
        }
    }

    @Test func patternsAreNamesOrPrefixes() {
        let patterns = PresencePatterns(["chat:*", "lobby"])
        #expect(patterns.matches("chat:1"))
        #expect(patterns.matches("chat:"))
        #expect(patterns.matches("lobby"))
        #expect(!patterns.matches("lobby2"))
        #expect(!patterns.matches("chat"))
        #expect(PresencePatterns([]).isEmpty)
    }

    @Test func aJoinIsAnnouncedToTheOtherMembersAndOnTheBus() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        _ = m.connect(2, user: "b")
        _ = Self.join(&m, 1, ["chat:1"])
        let effects = Self.join(&m, 2, ["chat:1", "quiet"])
        #expect(KernelScenarioTests.sent(effects) == [#"[1] {"event":"presence_join","data":{"room":"chat:1","clientId":"c2","userId":"b"}}"#])
        #expect(Self.published(effects) == [#"ws:room:chat:1 {"serverId":"me","type":"room","target":"chat:1","event":"presence_join","data":{"room":"chat:1","clientId":"c2","userId":"b"},"exclude":["c2"]}"#])
        #expect(Self.changes(effects) == ["+c2@chat:1"])
    }

    @Test func roomsWithoutPresenceAnnounceNothing() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        _ = m.connect(2, user: "b")
        _ = Self.join(&m, 1, ["quiet"])
        let effects = Self.join(&m, 2, ["quiet"])
        #expect(KernelScenarioTests.sent(effects).isEmpty)
        #expect(Self.published(effects).isEmpty)
        #expect(Self.changes(effects).isEmpty)
    }

    @Test func leaveAndDisconnectAreAnnounced() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        _ = m.connect(2, user: "b")
        _ = m.connect(3, user: nil)
        for handle: UInt64 in [1, 2, 3] { _ = Self.join(&m, handle, ["chat:1", "lobby"]) }
        let left = m.text(2, #"{"event":"leave","data":{"rooms":["lobby"]}}"#)
        #expect(KernelScenarioTests.sent(left) == [#"[1, 3] {"event":"presence_leave","data":{"room":"lobby","clientId":"c2","userId":"b"}}"#])
        #expect(Self.changes(left) == ["-c2@lobby"])
        let closed = m.feed(.closed(ClientHandle(3)))
        #expect(KernelScenarioTests.sent(closed) == [
            #"[1, 2] {"event":"presence_leave","data":{"room":"chat:1","clientId":"c3"}}"#,
            #"[1] {"event":"presence_leave","data":{"room":"lobby","clientId":"c3"}}"#,
        ])
        #expect(Self.changes(closed) == ["-c3@chat:1", "-c3@lobby"])
        #expect(m.kernel.invariantViolations().isEmpty)
    }

    @Test func defaultRoomsWithPresenceAreAnnouncedAtAdmission() {
        var m = Machine { $0.presenceRooms = ["ws-default"] }
        _ = m.connect(1, user: "a")
        let effects = m.connect(2, user: "b")
        #expect(KernelScenarioTests.sent(effects).dropFirst() == [#"[1] {"event":"presence_join","data":{"room":"ws-default","clientId":"c2","userId":"b"}}"#])
        #expect(Self.changes(effects) == ["+c2@ws-default"])
    }

    @Test func theQueryAsksTheEngineWithTheLocalMembers() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        _ = m.connect(2, user: nil)
        _ = Self.join(&m, 2, ["chat:1"])
        _ = Self.join(&m, 1, ["chat:1"])
        let effects = m.text(1, #"{"event":"presence","data":{"room":"chat:1"}}"#)
        #expect(effects == [.queryPresence(ClientHandle(1), clientID: "c1", room: "chat:1", local: [
            PresenceMember(clientID: "c1", userID: "a", metadata: nil),
            PresenceMember(clientID: "c2", userID: nil, metadata: nil),
        ])])
    }

    @Test func aQueryOutsideTheRoomOrWithoutPresenceIsAnError() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        _ = Self.join(&m, 1, ["quiet"])
        #expect(KernelScenarioTests.sent(m.text(1, #"{"event":"presence","data":{"room":"chat:9"}}"#))
            == [#"1 {"event":"error","data":{"message":"Not in room"}}"#])
        #expect(KernelScenarioTests.sent(m.text(1, #"{"event":"presence","data":{"room":"quiet"}}"#))
            == [#"1 {"event":"error","data":{"message":"Presence not enabled for room"}}"#])
        #expect(KernelScenarioTests.sent(m.text(1, #"{"event":"presence","data":{"room":7}}"#))
            == [#"1 {"event":"error","data":{"message":"Presence not enabled for room"}}"#])
    }

    /// Wire compatibility: with no room with presence, `presence` is the original's custom event.
    @Test func withoutPresenceRoomsThePresenceEventGoesToTheMessageHandler() {
        var m = Machine { $0.messageHandlerConfigured = true }
        _ = m.connect(1, user: "a")
        let effects = m.text(1, #"{"event":"presence","data":{"room":"lobby"}}"#)
        #expect(effects == [.callMessageHandler(ClientHandle(1), clientID: "c1", userID: "a", message: InboundMessage(
            event: "presence", data: ["room": "lobby"], id: nil))])
    }

    @Test func aQueryBeforeConnectedIsNotAuthenticated() {
        var m = Self.machine()
        _ = m.feed(.opened(ClientHandle(1), id: "c1"))
        #expect(KernelScenarioTests.sent(m.text(1, #"{"event":"presence","data":{"room":"lobby"}}"#))
            == [#"1 {"event":"error","data":{"message":"Not authenticated"}}"#])
    }

    @Test func theAnswerMergesByClientIDWithTheLocalMembersWinning() {
        let answer = Kernel.presenceAnswer(room: "lobby", local: [PresenceMember(clientID: "b", userID: "new", metadata: nil)], remote: [
            PresenceMember(clientID: "c", userID: nil, metadata: ["role": "admin"]),
            PresenceMember(clientID: "b", userID: "stale", metadata: nil),
        ])
        #expect(answer.serialized() == #"{"room":"lobby","members":[{"clientId":"b","userId":"new"},{"clientId":"c","metadata":{"role":"admin"}}]}"#)
        let member = PresenceMember(clientID: "x", userID: "u", metadata: ["k": 1])
        #expect(PresenceMember(json: member.json) == member)
    }
}
