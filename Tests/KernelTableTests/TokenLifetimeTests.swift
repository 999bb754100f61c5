import SwitchboardJSON
import Testing
@testable import SwitchboardKernel

/// Issue 18, token lifetime: the `token_expiry` timer runs until the expiresAt a hook answered
/// (wall clock, converted to the monotonic clock when armed), `refresh` moves it, and a firing
/// closes with 4005. Step by step, with exact effects.
@Suite struct TokenLifetimeTests {
    typealias Machine = KernelScenarioTests.Machine
    static let c1 = ClientHandle(1)

    /// Opens client 1 and authenticates it as `user` with `expiresAt`; the answer's effects.
    static func connect(_ m: inout Machine, user: String? = "alice", expiresAt: Int64?) -> [Effect] {
        _ = m.feed(.opened(c1, id: "c1"))
        let call = m.text(1, #"{"event":"authenticate","data":{"token":"t"}}"#)
        guard case .callAuthenticate(_, let attempt, _)? = call.last else { return [] }
        return m.feed(.authenticateReturned(c1, attempt, .ok(userID: user, metadata: nil, expiresAt: expiresAt)))
    }

    static func armed(_ effects: [Effect]) -> [(TimerID, Int64)] {
        effects.compactMap { if case .armTimer(let timer, let deadline) = $0 { (timer, deadline) } else { nil } }
    }

    static func refreshCall(_ effects: [Effect]) -> AttemptID? {
        effects.lazy.compactMap { if case .callRefresh(_, let attempt, _, _, _) = $0 { attempt } else { nil } }.first
    }

    @Test func anExpiryArmsTheTimerOnTheMonotonicClock() {
        var m = Machine()
        let effects = Self.connect(&m, expiresAt: m.now.wall + 2_000)
        let timers = Self.armed(effects)
        #expect(timers.count == 1)
        #expect(timers.first?.0.owner == .client(Self.c1, .tokenExpiry))
        #expect(timers.first?.1 == m.now.monotonic + 2_000)
        #expect(m.kernel.client(Self.c1)?.expiresAt == m.now.wall + 2_000)
    }

    @Test func noExpiryArmsNothing() {
        var m = Machine()
        #expect(Self.armed(Self.connect(&m, expiresAt: nil)).isEmpty)
    }

    @Test func aPastExpiryFiresAtOnce() {
        var m = Machine()
        #expect(Self.armed(Self.connect(&m, expiresAt: m.now.wall - 60_000)).first?.1 == m.now.monotonic)
    }

    @Test func theFiringClosesWith4005() throws {
        var m = Machine()
        let timer = try #require(Self.armed(Self.connect(&m, expiresAt: m.now.wall + 2_000)).first?.0)
        m.now.monotonic += 2_000
        let effects = m.feed(.timerFired(timer))
        #expect(KernelScenarioTests.sent(effects) == ["1 close 4005 Token expired: reconnect with a new token"])
        #expect(effects.contains(.callClientDisconnected(Self.c1, clientID: "c1", userID: "alice")))
        #expect(m.kernel.client(Self.c1) == nil)
    }

    @Test func aRefreshMovesTheExpiryAndAnswersRefreshed() throws {
        var m = Machine { $0.refreshConfigured = true }
        let old = try #require(Self.armed(Self.connect(&m, expiresAt: m.now.wall + 2_000)).first?.0)
        let call = m.text(1, #"{"event":"refresh","data":{"token":"new"}}"#)
        let attempt = try #require(Self.refreshCall(call))
        #expect(call.contains(.callRefresh(Self.c1, attempt, clientID: "c1", userID: "alice", data: ["token": "new"])))
        let newExpiry = m.now.wall + 10_000
        let answer = m.feed(.refreshReturned(Self.c1, attempt, .ok(userID: "alice", expiresAt: newExpiry)))
        #expect(answer.contains(.cancelTimer(old)))
        #expect(Self.armed(answer).map(\.1) == [m.now.monotonic + 10_000])
        #expect(KernelScenarioTests.sent(answer) == [#"1 {"event":"refreshed","data":{"expiresAt":\#(newExpiry)}}"#])
        // The replaced timer's late firing changes nothing.
        m.now.monotonic += 2_000
        #expect(m.feed(.timerFired(old)) == [])
        #expect(m.kernel.client(Self.c1)?.state == .authenticated)
    }

    @Test func aRefreshToNeverDisarmsTheTimer() throws {
        var m = Machine { $0.refreshConfigured = true }
        let old = try #require(Self.armed(Self.connect(&m, expiresAt: m.now.wall + 2_000)).first?.0)
        let attempt = try #require(Self.refreshCall(m.text(1, #"{"event":"refresh","data":{"token":"n"}}"#)))
        let answer = m.feed(.refreshReturned(Self.c1, attempt, .ok(userID: "alice", expiresAt: nil)))
        #expect(answer.contains(.cancelTimer(old)))
        #expect(Self.armed(answer).isEmpty)
        #expect(KernelScenarioTests.sent(answer) == [#"1 {"event":"refreshed","data":{}}"#])
    }

    @Test func aRefreshForAnotherUserIsRefusedAndTheExpiryStays() throws {
        var m = Machine { $0.refreshConfigured = true }
        _ = Self.connect(&m, expiresAt: m.now.wall + 2_000)
        let attempt = try #require(Self.refreshCall(m.text(1, #"{"event":"refresh","data":{"token":"bob's"}}"#)))
        let answer = m.feed(.refreshReturned(Self.c1, attempt, .ok(userID: "bob", expiresAt: m.now.wall + 99_000)))
        #expect(KernelScenarioTests.sent(answer) == [#"1 {"event":"error","data":{"message":"Refresh rejected: token is for another user"}}"#])
        #expect(Self.armed(answer).isEmpty)
        #expect(m.kernel.client(Self.c1)?.expiresAt == m.now.wall + 2_000)
        #expect(m.kernel.client(Self.c1)?.userID == "alice")
    }

    @Test func rejectedAndThrowingRefreshesAnswerTheirErrors() throws {
        var m = Machine { $0.refreshConfigured = true }
        _ = Self.connect(&m, expiresAt: m.now.wall + 2_000)
        let first = try #require(Self.refreshCall(m.text(1, #"{"event":"refresh","data":{"token":"bad"}}"#)))
        #expect(KernelScenarioTests.sent(m.feed(.refreshReturned(Self.c1, first, .rejected)))
                == [#"1 {"event":"error","data":{"message":"Refresh rejected"}}"#])
        let second = try #require(Self.refreshCall(m.text(1, #"{"event":"refresh","data":{"token":"boom"}}"#)))
        #expect(KernelScenarioTests.sent(m.feed(.refreshReturned(Self.c1, second, .threw("x"))))
                == [#"1 {"event":"error","data":{"message":"Refresh error"}}"#])
        #expect(m.kernel.client(Self.c1)?.state == .authenticated)
    }

    /// A join issues a validateRoomFn attempt; the refresh answer must not turn stale by it,
    /// while an older refresh's answer must.
    @Test func onlyTheLatestRefreshCounts() throws {
        var m = Machine { $0.refreshConfigured = true; $0.validateRoomConfigured = true }
        _ = Self.connect(&m, expiresAt: m.now.wall + 2_000)
        let older = try #require(Self.refreshCall(m.text(1, #"{"event":"refresh","data":{"token":"a"}}"#)))
        let latest = try #require(Self.refreshCall(m.text(1, #"{"event":"refresh","data":{"token":"b"}}"#)))
        #expect(m.text(1, #"{"event":"join","data":{"rooms":["r"]}}"#).contains { if case .callValidateRoom = $0 { true } else { false } })
        let stale = m.feed(.refreshReturned(Self.c1, older, .ok(userID: "alice", expiresAt: m.now.wall + 5_000)))
        #expect(KernelScenarioTests.sent(stale).isEmpty && Self.armed(stale).isEmpty)
        let current = m.feed(.refreshReturned(Self.c1, latest, .ok(userID: "alice", expiresAt: m.now.wall + 7_000)))
        #expect(Self.armed(current).map(\.1) == [m.now.monotonic + 7_000])
    }

    @Test func withoutRefreshFnRefreshIsACustomEvent() {
        var m = Machine { $0.refreshConfigured = false }
        _ = Self.connect(&m, expiresAt: nil)
        let effects = m.text(1, #"{"event":"refresh","data":{"token":"n"}}"#)
        #expect(effects.contains { if case .callMessageHandler(_, _, _, let message) = $0 { message.event == "refresh" } else { false } })
        #expect(Self.refreshCall(effects) == nil)
    }

    @Test func refreshBeforeConnectedIsNotAuthenticated() {
        var m = Machine { $0.refreshConfigured = true }
        _ = m.feed(.opened(Self.c1, id: "c1"))
        #expect(KernelScenarioTests.sent(m.text(1, #"{"event":"refresh","data":{"token":"n"}}"#))
                == [#"1 {"event":"error","data":{"message":"Not authenticated"}}"#])
    }
}
