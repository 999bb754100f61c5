// The `switchboard` binary and cross-instance helpers for the Redis end-to-end tests
// (PROTOCOL.md 8); redis-server itself comes from TestSupport.
import Foundation
import Switchboard
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

// The shared helpers (Tests/TestSupport) under the names these tests grew up with; new code
// may use either.
typealias E2EError = TestFailure
typealias E2ERedisServer = RedisServer
typealias E2ERedisCluster = RedisCluster

func e2eFreePort(clusterBus: Bool = false) -> Int { freePort(clusterBus: clusterBus) }

func e2eRawRedis(port: Int, _ arguments: [String], timeout: Double = 1) -> String? {
    rawRedis(port: port, arguments, timeout: timeout)
}

func e2eRetry(timeout: Double, _ attempt: () -> Bool) -> Bool { pollUntil(timeout: timeout, attempt) }

/// Runs a program to completion; exit status, stdout and stderr.
@discardableResult
func e2eRun(_ path: String, _ arguments: [String], timeout: Double = 20) throws
    -> (status: Int32, stdout: String, stderr: String) {
    let result = try runProgram(path, arguments, timeout: timeout)
    return (result.status, result.stdout, result.stderr)
}

/// The `switchboard` binary: `$SWITCHBOARD_BIN`, else next to the fixture binary.
let switchboardExecutablePath: String = {
    if let path = ProcessInfo.processInfo.environment["SWITCHBOARD_BIN"], !path.isEmpty { return path }
    return URL(fileURLWithPath: Fixture.executablePath).deletingLastPathComponent().appendingPathComponent("switchboard").path
}()

/// Runs `switchboard emit` with `arguments`.
func switchboardEmit(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
    guard FileManager.default.isExecutableFile(atPath: switchboardExecutablePath) else {
        throw E2EError("no switchboard binary at \(switchboardExecutablePath); build it or set SWITCHBOARD_BIN")
    }
    return try e2eRun(switchboardExecutablePath, ["emit"] + arguments)
}

/// A Redis envelope (PROTOCOL.md 8) as JSON text.
func redisEnvelope(serverID: String = "someone", type: String, target: String? = nil, event: String, data: JSONValue,
              exclude: [String]? = nil) -> String {
    var members: [(String, JSONValue)] = [("serverId", .string(serverID)), ("type", .string(type))]
    if let target { members.append(("target", .string(target))) }
    members += [("event", .string(event)), ("data", data)]
    if let exclude { members.append(("exclude", .array(exclude.map { .string($0) }))) }
    return object(members).serialized()
}

/// An authenticated client on one instance, with what `connected` told it.
struct Peer {
    let client: WSClient
    let id: String
    let userID: String?
    let name: String

    init(_ fixture: Fixture, token: String, name: String) throws {
        let (client, info) = try fixture.authenticatedClient(token: token)
        self.client = client
        id = info.id
        userID = info.userID
        self.name = name
    }
}

/// Starts a fixture with `flags` and waits for LISTENING.
func startedFixture(_ flags: [String]) throws -> Fixture {
    let fixture = try Fixture(flags)
    do { try fixture.waitUntilListening(timeout: 20) } catch {
        fixture.kill()
        throw error
    }
    return fixture
}

extension WSClient {
    /// The next message must be `event` with `data`.
    func expectMessage(_ event: String, _ data: JSONValue, timeout: Double = 3, who: String = "",
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let message = try receiveJSON(timeout: timeout)
        #expect(message.event == event && message.data == data,
                "\(who): expected {\"event\":\"\(event)\",\"data\":\(data.serialized())}, got \(message)",
                sourceLocation: sourceLocation)
    }

    /// Waits until this client is a member of `room`: sends `to-room` with a fresh probe, then
    /// `echo` with it; once the probe's room message comes before its echo, the join took effect.
    /// Unlike `waitUntilMember`, other messages (probes of members on other instances, which
    /// reach this client through Redis) are skipped.
    func awaitMembership(of room: String, timeout: Double = 5) throws {
        let end = deadline(after: timeout)
        while ContinuousClock.now < end {
            let probe = object([("membership-probe", .string(nextNonce() + UUID().uuidString))])
            try toRoom(room, probe)
            try send("echo", probe)
            var sawRoomMessage = false
            while true {
                let message = try receiveJSON(timeout: 3)
                if message.event == "room-message", message.data == probe { sawRoomMessage = true }
                if message.event == "echo", message.data == probe { break }
            }
            if sawRoomMessage { return }
        }
        throw E2EError("not a member of \(room) within \(timeout) s", isTimeout: true)
    }

    /// Skips messages until `event` with `data` arrives; the number skipped.
    /// - Throws: when it does not arrive within `timeout`.
    @discardableResult
    func skipUntil(_ event: String, _ data: JSONValue, timeout: Double) throws -> Int {
        let end = deadline(after: timeout)
        var skipped = 0
        while true {
            let remaining = Double((end - .now).components.seconds) + Double((end - .now).components.attoseconds) / 1e18
            guard remaining > 0 else { throw E2EError("\(event) \(data.serialized()) did not arrive within \(timeout) s", isTimeout: true) }
            let message = try receiveJSON(timeout: remaining)
            if message.event == event, message.data == data { return skipped }
            skipped += 1
        }
    }
}

/// A broadcast envelope published straight to Redis that every peer must receive as its
/// very next message. Redis delivers in publish order on each subscription, so anything the
/// instances received from Redis before it (a duplicate, a message meant for an excluded
/// client) would come first: this proves such messages absent without waiting.
func expectFence(_ peers: [Peer], redis: E2ERedisServer, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let data = object([("fence", .string(UUID().uuidString))])
    try redis.publish("ws:broadcast", redisEnvelope(type: "broadcast", event: "fence", data: data))
    for peer in peers {
        let message = try peer.client.receiveJSON(timeout: 3)
        #expect(message.event == "fence" && message.data == data,
                "\(peer.name): expected nothing before the fence, got \(message)", sourceLocation: sourceLocation)
        if message.event != "fence" {
            _ = try? peer.client.skipUntil("fence", data, timeout: 3)
        }
    }
}

/// Expects `event` with `data` as the next message of each of `receivers` (named in failures by
/// `who`), then a fence at `everyone`: the receivers got it exactly once and nobody else got it.
func expectDelivered(_ event: String, _ data: JSONValue, to receivers: [Peer], everyone: [Peer], redis: E2ERedisServer,
                     who: (Peer) -> String = \.name, sourceLocation: SourceLocation = #_sourceLocation) throws {
    for peer in receivers { try peer.client.expectMessage(event, data, who: who(peer), sourceLocation: sourceLocation) }
    try expectFence(everyone, redis: redis, sourceLocation: sourceLocation)
}

/// Peers on two instances: a1 (u1) and b1 (u3), b3 (u4) are members of `public-x`; a2 (u2) and
/// b2 (u1) are not. Room, client, user and broadcast deliveries (and excludes) each reach a
/// different set of them, so one scene tells every kind of envelope apart.
struct RoomScene {
    let a1, a2, b1, b2, b3: Peer
    var everyone: [Peer] { [a1, a2, b1, b2, b3] }

    init(redis: E2ERedisServer, a: Fixture, b: Fixture) throws {
        a1 = try Peer(a, token: "user:u1", name: "a1 (u1, member)")
        a2 = try Peer(a, token: "user:u2", name: "a2 (u2)")
        b1 = try Peer(b, token: "user:u3", name: "b1 (u3, member)")
        b2 = try Peer(b, token: "user:u1", name: "b2 (u1)")
        b3 = try Peer(b, token: "user:u4", name: "b3 (u4, member)")
        try join("public-x", [a1, b1, b3], everyone: [a1, a2, b1, b2, b3], redis: redis)
    }
}

/// Publishes a fence and discards everything each peer received before it (setup noise).
func drainWithFence(_ peers: [Peer], redis: E2ERedisServer) throws {
    let data = object([("fence", .string(UUID().uuidString))])
    try redis.publish("ws:broadcast", redisEnvelope(type: "broadcast", event: "fence", data: data))
    for peer in peers { try peer.client.skipUntil("fence", data, timeout: 5) }
}

/// Seconds elapsed since `start`.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}
