import SwitchboardJSON
import Testing
@testable import SwitchboardKernel

/// The `history` query through the kernel (spec: input `history`, guards `history_enabled`,
/// `room_has_history`, `in_room`, effect `query_history`, message `history`): who may ask, what
/// the query carries to the engine, and the answer built from what a store read.
@Suite struct HistoryQueryTests {
    typealias Machine = KernelScenarioTests.Machine

    static func machine(_ patterns: [String] = ["chat:*"], size: Int = 50, handler: Bool = false) -> Machine {
        Machine {
            $0.historyRooms = patterns
            $0.historySize = size
            $0.validateRoomConfigured = true
            $0.messageHandlerConfigured = handler
            $0.defaultRooms = []
        }
    }

    /// A client `handle` connected and in `room` (its join's read answered).
    static func member(_ m: inout Machine, _ handle: UInt64, of room: String) {
        _ = m.connect(handle, user: "u\(handle)")
        let read = HistoryTests.reads(HistoryTests.join(&m, handle, room))
        if let first = read.first {
            _ = m.feed(.historyRead(ClientHandle(handle), request: first.1, room: room, .position(HistoryPosition(offset: 0, epoch: "e1"))))
        }
    }

    static func queries(_ effects: [Effect]) -> [(ClientHandle, String, HistoryQuery)] {
        effects.compactMap { if case .queryHistory(let h, let id, let query) = $0 { (h, id, query) } else { nil } }
    }

    static func ask(_ m: inout Machine, _ handle: UInt64, _ data: String) -> [Effect] {
        m.text(handle, #"{"event":"history","data":\#(data)}"#)
    }

    @Test func aMemberAsksAndTheEngineIsToldTheRoomLimitAndSince() {
        var m = Self.machine()
        Self.member(&m, 1, of: "chat:1")
        let plain = Self.queries(Self.ask(&m, 1, #"{"room":"chat:1"}"#))
        #expect(plain.count == 1)
        #expect(plain.first?.0 == ClientHandle(1))
        #expect(plain.first?.2 == HistoryQuery(room: "chat:1", limit: 50, since: nil))
        let paged = Self.queries(Self.ask(&m, 1, #"{"room":"chat:1","limit":10,"since":{"offset":7,"epoch":"e1"}}"#))
        #expect(paged.first?.2 == HistoryQuery(room: "chat:1", limit: 10, since: HistoryPosition(offset: 7, epoch: "e1")))
    }

    @Test(arguments: [
        ("0", 0),  // the position alone
        ("49", 49),
        ("50", 50),
        ("5000", 50),  // capped at history_size
        ("-1", 50),  // not a whole number from 0: left out
        ("2.5", 50),
        ("\"10\"", 50),
        ("null", 50),
    ])
    func theLimitIsCappedAtTheHistorySize(_ limit: String, _ expected: Int) {
        var m = Self.machine()
        Self.member(&m, 1, of: "chat:1")
        #expect(Self.queries(Self.ask(&m, 1, #"{"room":"chat:1","limit":\#(limit)}"#)).first?.2.limit == expected)
    }

    @Test func aMalformedSinceIsLeftOut() {
        var m = Self.machine()
        Self.member(&m, 1, of: "chat:1")
        for since in [#"{"offset":-1,"epoch":"e1"}"#, #"{"offset":3}"#, #""3@e1""#] {
            #expect(Self.queries(Self.ask(&m, 1, #"{"room":"chat:1","since":\#(since)}"#)).first?.2.since == nil, "\(since)")
        }
    }

    @Test func onlyMembersOfARoomWithHistoryMayAsk() {
        var m = Self.machine()
        Self.member(&m, 1, of: "chat:1")
        _ = HistoryTests.join(&m, 1, "lobby")
        #expect(KernelScenarioTests.sent(Self.ask(&m, 1, #"{"room":"chat:2"}"#))
            == [#"1 {"event":"error","data":{"message":"Not in room"}}"#])
        #expect(KernelScenarioTests.sent(Self.ask(&m, 1, #"{"room":"lobby"}"#))
            == [#"1 {"event":"error","data":{"message":"History not enabled for room"}}"#])
        #expect(KernelScenarioTests.sent(Self.ask(&m, 1, #"{"rooms":["chat:1"]}"#))
            == [#"1 {"event":"error","data":{"message":"History not enabled for room"}}"#])
    }

    @Test func beforeConnectedItIsNotAuthenticated() {
        var m = Self.machine()
        _ = m.feed(.opened(ClientHandle(1), id: "c1"))
        #expect(KernelScenarioTests.sent(Self.ask(&m, 1, #"{"room":"chat:1"}"#))
            == [#"1 {"event":"error","data":{"message":"Not authenticated"}}"#])
    }

    @Test func withoutRoomsWithHistoryItIsTheOriginalsCustomEvent() {
        var m = Self.machine([], handler: true)
        _ = m.connect(1, user: "a")
        let effects = Self.ask(&m, 1, #"{"room":"chat:1"}"#)
        #expect(Self.queries(effects).isEmpty)
        #expect(effects.contains { if case .callMessageHandler = $0 { true } else { false } })
        #expect(KernelScenarioTests.sent(effects).isEmpty)
    }

    // MARK: - The answer

    static func entries(_ offsets: ClosedRange<UInt64>) -> [HistoryEntry] {
        offsets.map { HistoryEntry(offset: $0, message: Array(#"{"event":"m","data":\#($0)}"#.utf8)) }
    }

    @Test func theAnswerListsTheMessagesAsTheRoomReceivedThem() {
        let query = HistoryQuery(room: "chat:1", limit: 2, since: nil)
        let answer = HistoryAnswer.last(query, epoch: "e1", offset: 9, kept: Self.entries(6...9))
        #expect(answer.json.serialized() == #"{"room":"chat:1","epoch":"e1","offset":9,"messages":["#
            + #"{"event":"m","data":8,"room":"chat:1","offset":8,"epoch":"e1"},"#
            + #"{"event":"m","data":9,"room":"chat:1","offset":9,"epoch":"e1"}]}"#)
        let position = HistoryAnswer.last(HistoryQuery(room: "chat:1", limit: 0, since: nil), epoch: "e1", offset: 9,
                                          kept: Self.entries(6...9))
        #expect(position.json.serialized() == #"{"room":"chat:1","epoch":"e1","offset":9,"messages":[]}"#)
    }

    @Test func anUnreadableStoreIsTheReasonUnavailable() {
        let answer = HistoryAnswer.last(HistoryQuery(room: "chat:1", limit: 5, since: nil), epoch: nil, offset: 0, kept: [])
        #expect(answer.json.serialized() == #"{"room":"chat:1","messages":[],"reason":"unavailable"}"#)
    }

    @Test func sinceGivesTheFirstLimitAfterItWhenAllAreKept() {
        let query = HistoryQuery(room: "chat:1", limit: 2, since: HistoryPosition(offset: 5, epoch: "e1"))
        let (answer, failure) = HistoryAnswer.after(query, epoch: "e1", offset: 9, kept: Self.entries(6...9))
        #expect(failure == nil)
        #expect(answer?.entries.map(\.offset) == [6, 7])
        #expect(answer?.position == HistoryPosition(offset: 9, epoch: "e1") && answer?.reason == nil)
    }

    @Test(arguments: [
        (HistoryPosition(offset: 5, epoch: "old"), RecoveryFailure.epochChanged),
        (HistoryPosition(offset: 2, epoch: "e1"), .offsetTooOld),  // 3..5 are no longer kept
        (HistoryPosition(offset: 12, epoch: "e1"), .offsetUnknown),  // ahead of the room
    ])
    func sinceThatCannotBeHonouredSaysWhy(_ since: HistoryPosition, _ reason: RecoveryFailure) {
        let query = HistoryQuery(room: "chat:1", limit: 2, since: since)
        let (answer, failure) = HistoryAnswer.after(query, epoch: "e1", offset: 9, kept: Self.entries(6...9))
        #expect(answer == nil && failure == reason)
        // The engine then reads the last `limit` and answers them with the reason.
        let last = HistoryAnswer.last(query, epoch: "e1", offset: 9, kept: Self.entries(6...9), reason: failure)
        #expect(last.entries.map(\.offset) == [8, 9])
        #expect(last.json["reason"] == .string(reason.rawValue))
    }
}
