import Switchboard
import Testing
@testable import SwitchboardServe

private let me = "0b9e0d3c-4a5b-4c6d-8e7f-a1b2c3d4e5f6"

@Suite struct RoomPolicyTests {
    @Test func openPolicyAllowsEverythingButOthersUserRoomsAndClientIDs() {
        let policy = RoomPolicy(config: RoomPolicyConfig(), defaultRooms: ["ws-default"])
        let decision = policy.decide(requested: ["lobby", "user:alice", "user:bob", "1b9e0d3c-4a5b-4c6d-8e7f-a1b2c3d4e5f6", "lobby"],
                                     clientID: me, userID: "alice", current: [])
        #expect(decision.allowed == ["lobby", "user:alice"])
        #expect(decision.denied == ["user:bob", "1b9e0d3c-4a5b-4c6d-8e7f-a1b2c3d4e5f6"])
        #expect(policy.decide(requested: ["user:alice"], clientID: me, userID: nil, current: []).denied == ["user:alice"])
        #expect(policy.decide(requested: ["user:alicex"], clientID: me, userID: "alice", current: []).denied == ["user:alicex"])
    }

    @Test func allowListsDecide() {
        let policy = RoomPolicy(config: RoomPolicyConfig(allowPrefixes: ["public-"], allowPatterns: ["team-*-chat", "doc-??"]),
                                defaultRooms: [])
        let decision = policy.decide(requested: ["public-a", "private", "team-red-chat", "team-chat", "doc-12", "doc-123", "user:u"],
                                     clientID: me, userID: "u", current: [])
        #expect(decision.allowed == ["public-a", "team-red-chat", "doc-12", "user:u"])
        #expect(decision.denied == ["private", "team-chat", "doc-123"])
    }

    @Test func userRoomsCanBeTurnedOff() {
        let policy = RoomPolicy(config: RoomPolicyConfig(allowPrefixes: ["user:"], userRooms: false), defaultRooms: [])
        #expect(policy.decide(requested: ["user:other"], clientID: me, userID: "u", current: []).allowed == ["user:other"])
    }

    @Test func maxPerClientCountsOnlyJoinedRooms() {
        let policy = RoomPolicy(config: RoomPolicyConfig(maxPerClient: 2), defaultRooms: ["ws-default", "ws-notification"])
        let current = [me, "ws-default", "ws-notification", "a"]
        let decision = policy.decide(requested: ["a", "b", "c", "ws-default", "nope:x"], clientID: me, userID: nil, current: current)
        #expect(decision.allowed == ["b"])
        #expect(decision.overLimit == ["c", "nope:x"])
        #expect(decision.denied.isEmpty)
    }

    @Test func glob() {
        #expect(globMatch("*", ""))
        #expect(globMatch("a*b", "ab") && globMatch("a*b", "axxb") && !globMatch("a*b", "axxc"))
        #expect(globMatch("a?c", "abc") && !globMatch("a?c", "ac"))
        #expect(globMatch("*x*y*", "--x--y--") && !globMatch("*x*y*", "--y--x--"))
        #expect(globMatch("ü?", "üé"))
    }

    @Test func clientIDShape() {
        #expect(RoomPolicy.looksLikeClientID(me))
        #expect(!RoomPolicy.looksLikeClientID("0b9e0d3c-4a5b-4c6d-8e7f-a1b2c3d4e5fz"))
        #expect(!RoomPolicy.looksLikeClientID("lobby"))
    }
}

@Suite struct RateLimiterTests {
    @Test func tokenBucket() {
        let limiter = RateLimiter(perSecond: 2, burst: 3)
        #expect(limiter.take("c", now: 0) == .allowed)
        #expect(limiter.take("c", now: 0) == .allowed)
        #expect(limiter.take("c", now: 0) == .allowed)
        #expect(limiter.take("c", now: 0) == .limited(warn: true))
        #expect(limiter.take("c", now: 100) == .limited(warn: false))
        #expect(limiter.take("other", now: 100) == .allowed)
        #expect(limiter.take("c", now: 500) == .allowed)      // one token back after 500 ms
        #expect(limiter.take("c", now: 500) == .limited(warn: false))
        #expect(limiter.take("c", now: 1000) == .allowed)
        #expect(limiter.take("c", now: 1000) == .limited(warn: true))
        limiter.forget("c")
        #expect(limiter.trackedClients == 1)
    }

    @Test func burstDefaultsToTheRate() {
        let limiter = RateLimiter(perSecond: 1, burst: 0)
        #expect(limiter.take("c", now: 0) == .allowed)
        #expect(limiter.take("c", now: 0) == .limited(warn: true))
    }
}
