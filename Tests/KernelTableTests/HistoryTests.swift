import SwitchboardJSON
import Testing
@testable import SwitchboardKernel

/// History and recovery in the kernel (spec: `history_rooms`, `recover_history`, `joined`,
/// `room_message`): messages to rooms with history become appends and come back stamped; a
/// join waits for the store and gets `joined`, the missed messages, then what arrived meanwhile.
@Suite struct HistoryTests {
    typealias Machine = KernelScenarioTests.Machine

    static func machine(_ patterns: [String] = ["chat:*"]) -> Machine {
        Machine {
            $0.historyRooms = patterns
            $0.validateRoomConfigured = true
            $0.defaultRooms = []
        }
    }

    /// A join of `room` (with `since` when given) answered by validateRoomFn; the effects.
    static func join(_ m: inout Machine, _ handle: UInt64, _ room: String, since: String? = nil) -> [Effect] {
        let call = m.text(handle, #"{"event":"join","data":{"room":"\#(room)"\#(since.map { ",\"since\":\($0)" } ?? "")}}"#)
        guard case .callValidateRoom(_, let attempt, _, _, _)? = call.last else {
            Issue.record("join did not call validateRoomFn: \(call)")
            return []
        }
        return m.feed(.validateRoomReturned(ClientHandle(handle), attempt, .ok([room])))
    }

    static func reads(_ effects: [Effect]) -> [(ClientHandle, UInt64, String, HistoryPosition?)] {
        effects.compactMap { if case .readHistory(let h, let request, let room, let since) = $0 { (h, request, room, since) } else { nil } }
    }

    static func message(_ offset: UInt64, _ text: String, epoch: String = "e1") -> HistoryMessage {
        HistoryMessage(room: "chat:1", offset: offset, epoch: epoch, event: "m", data: .string(text), exclude: [])
    }

    @Test func aMessageToARoomWithHistoryIsAnAppendNotADelivery() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        _ = Self.join(&m, 1, "chat:1")
        let effects = m.feed(.deliver(.send(destination: "chat:1", topic: "m", data: .string("hi"))))
        #expect(KernelScenarioTests.sent(effects).isEmpty)
        guard case .appendHistory(let append)? = effects.first, effects.count == 1 else {
            Issue.record("expected one append, got \(effects)")
            return
        }
        #expect(append.room == "chat:1" && append.publish)
        #expect(String(decoding: append.message, as: UTF8.self) == #"{"event":"m","data":"hi"}"#)
        let (parts, offsetFirst) = append.envelope.encodedAroundStamp()
        #expect(offsetFirst)
        #expect(parts.map { String(decoding: $0, as: UTF8.self) }
            == [#"{"serverId":"me","type":"room","target":"chat:1","event":"m","data":"hi","offset":"#, #","epoch":"#, "}"])
    }

    @Test func roomsWithoutHistoryAreDeliveredAsBefore() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        _ = Self.join(&m, 1, "other")
        let effects = m.feed(.deliver(.toRoom(room: "other", event: "m", data: .string("hi"), exclude: [])))
        #expect(KernelScenarioTests.sent(effects) == [#"[1] {"event":"m","data":"hi"}"#])
    }

    @Test func aRecordedMessageCarriesRoomOffsetAndEpochAfterData() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        let joined = Self.join(&m, 1, "chat:1")
        let read = Self.reads(joined)
        #expect(read.count == 1 && read[0].3 == nil)
        _ = m.feed(.historyRead(ClientHandle(1), request: read[0].1, room: "chat:1",
                                .position(HistoryPosition(offset: 4, epoch: "e1"))))
        let effects = m.feed(.historyMessage(Self.message(5, "hi")))
        #expect(KernelScenarioTests.sent(effects) == [#"[1] {"event":"m","data":"hi","room":"chat:1","offset":5,"epoch":"e1"}"#])
    }

    @Test func aJoinGetsJoinedThenMissedThenHeldMessagesOnceEach() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        let read = Self.reads(Self.join(&m, 1, "chat:1", since: #"{"offset":2,"epoch":"e1"}"#))
        #expect(read.count == 1 && read[0].3 == HistoryPosition(offset: 2, epoch: "e1"))
        // Live messages while the store is asked: held, not sent.
        #expect(KernelScenarioTests.sent(m.feed(.historyMessage(Self.message(4, "four")))).isEmpty)
        #expect(KernelScenarioTests.sent(m.feed(.historyMessage(Self.message(5, "five")))).isEmpty)
        // The store read up to 4: 3 and 4 are replayed, the held 4 is not sent twice, 5 follows.
        let entries = [HistoryEntry(offset: 3, message: Array(#"{"event":"m","data":"three"}"#.utf8)),
                       HistoryEntry(offset: 4, message: Array(#"{"event":"m","data":"four"}"#.utf8))]
        let effects = m.feed(.historyRead(ClientHandle(1), request: read[0].1, room: "chat:1",
                                          .recovered(HistoryPosition(offset: 4, epoch: "e1"), entries)))
        #expect(KernelScenarioTests.sent(effects) == [
            #"1 {"event":"joined","data":{"room":"chat:1","epoch":"e1","offset":4,"recovered":true}}"#,
            #"1 {"event":"m","data":"three","room":"chat:1","offset":3,"epoch":"e1"}"#,
            #"1 {"event":"m","data":"four","room":"chat:1","offset":4,"epoch":"e1"}"#,
            #"1 {"event":"m","data":"five","room":"chat:1","offset":5,"epoch":"e1"}"#,
        ])
        // Then live again.
        #expect(KernelScenarioTests.sent(m.feed(.historyMessage(Self.message(6, "six"))))
            == [#"[1] {"event":"m","data":"six","room":"chat:1","offset":6,"epoch":"e1"}"#])
    }

    @Test func aFailedRecoveryIsToldWithItsReason() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        let read = Self.reads(Self.join(&m, 1, "chat:1", since: #"{"offset":2,"epoch":"old"}"#))
        let effects = m.feed(.historyRead(ClientHandle(1), request: read[0].1, room: "chat:1",
                                          .failed(HistoryPosition(offset: 9, epoch: "e1"), .epochChanged)))
        #expect(KernelScenarioTests.sent(effects)
            == [#"1 {"event":"joined","data":{"room":"chat:1","epoch":"e1","offset":9,"recovered":false,"reason":"epoch_changed"}}"#])
    }

    @Test func aStaleAnswerIsDroppedAndLeavingEndsTheWait() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        let first = Self.reads(Self.join(&m, 1, "chat:1"))
        _ = m.text(1, #"{"event":"leave","data":{"rooms":["chat:1"]}}"#)
        #expect(m.kernel.recovering.isEmpty)
        let second = Self.reads(Self.join(&m, 1, "chat:1"))
        #expect(second[0].1 != first[0].1)
        #expect(KernelScenarioTests.sent(m.feed(.historyRead(ClientHandle(1), request: first[0].1, room: "chat:1",
                                                              .position(HistoryPosition(offset: 1, epoch: "e1"))))).isEmpty)
        #expect(KernelScenarioTests.sent(m.feed(.historyRead(ClientHandle(1), request: second[0].1, room: "chat:1",
                                                              .position(HistoryPosition(offset: 1, epoch: "e1"))))).count == 1)
        _ = m.feed(.closed(ClientHandle(1)))
        #expect(m.kernel.recovering.isEmpty)
        #expect(m.kernel.invariantViolations().isEmpty)
    }

    @Test func sinceCountsOnlyForAJoinOfOneRoom() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        let call = m.text(1, #"{"event":"join","data":{"rooms":["chat:1","chat:2"],"since":{"offset":1,"epoch":"e1"}}}"#)
        guard case .callValidateRoom(_, let attempt, _, _, _)? = call.last else {
            Issue.record("no validateRoomFn call")
            return
        }
        let reads = Self.reads(m.feed(.validateRoomReturned(ClientHandle(1), attempt, .ok(["chat:1", "chat:2"]))))
        #expect(reads.map { $0.2 } == ["chat:1", "chat:2"])
        #expect(reads.allSatisfy { $0.3 == nil })
    }

    @Test func aStampedEnvelopeIsDeliveredEvenFromThisInstance() {
        var m = Self.machine()
        _ = m.connect(1, user: "a")
        let read = Self.reads(Self.join(&m, 1, "chat:1"))
        _ = m.feed(.historyRead(ClientHandle(1), request: read[0].1, room: "chat:1", .position(HistoryPosition(offset: 0, epoch: "e1"))))
        let envelope = #"{"serverId":"me","type":"room","target":"chat:1","event":"m","data":1,"offset":1,"epoch":"e1"}"#
        let effects = m.feed(.busMessage(channel: "ws:room:chat:1", message: Array(envelope.utf8)))
        #expect(KernelScenarioTests.sent(effects) == [#"[1] {"event":"m","data":1,"room":"chat:1","offset":1,"epoch":"e1"}"#])
        // Unstamped, our own envelope is still ignored.
        let plain = #"{"serverId":"me","type":"room","target":"chat:1","event":"m","data":1}"#
        #expect(m.feed(.busMessage(channel: "ws:room:chat:1", message: Array(plain.utf8))).isEmpty)
    }

    @Test func decideRecoversOnlyWithoutAGap() {
        let e = { (offset: UInt64) in HistoryEntry(offset: offset, message: [UInt8(offset)]) }
        let since = HistoryPosition(offset: 2, epoch: "x")
        #expect(HistoryRead.decide(since: since, epoch: "x", offset: 4, kept: [e(3), e(4)])
            == .recovered(HistoryPosition(offset: 4, epoch: "x"), [e(3), e(4)]))
        #expect(HistoryRead.decide(since: since, epoch: "x", offset: 4, kept: [e(4)])
            == .failed(HistoryPosition(offset: 4, epoch: "x"), .offsetTooOld))
        #expect(HistoryRead.decide(since: since, epoch: "y", offset: 4, kept: [e(3), e(4)])
            == .failed(HistoryPosition(offset: 4, epoch: "y"), .epochChanged))
        #expect(HistoryRead.decide(since: since, epoch: "x", offset: 1, kept: [])
            == .failed(HistoryPosition(offset: 1, epoch: "x"), .offsetUnknown))
        #expect(HistoryRead.decide(since: since, epoch: "x", offset: 2, kept: []) == .recovered(HistoryPosition(offset: 2, epoch: "x"), []))
        #expect(HistoryRead.decide(since: nil, epoch: "x", offset: 2, kept: []) == .position(HistoryPosition(offset: 2, epoch: "x")))
        #expect(HistoryRead.decide(since: since, epoch: nil, offset: 0, kept: []) == .failed(nil, .unavailable))
    }

    @Test func joinedReasonsAreTheSpecValues() {
        // RecoveryFailure's raw values are what `joined.reason` may hold (spec `values:`).
        #expect(RecoveryFailure.allCases.map(\.rawValue) == ["epoch_changed", "offset_too_old", "offset_unknown", "unavailable"])
    }
}
