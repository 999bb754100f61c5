// Real redis-server processes, the `switchboard` binary and cross-instance helpers for the
// Redis end-to-end tests (PROTOCOL.md 8). Redis helpers follow Tests/BusTests/RedisTestSupport.swift
// under their own names (that file lives in another test target).
import Foundation
import Switchboard
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A loopback port nothing listens on (and, with `clusterBus`, port + 10000 too).
func e2eFreePort(clusterBus: Bool = false) -> Int {
    func bindable(_ port: Int) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { return nil }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
    for _ in 0..<200 {
        guard let port = bindable(0) else { continue }
        if !clusterBus { return port }
        if port + 10_000 <= 65_535, bindable(port + 10_000) != nil { return port }
    }
    fatalError("no free loopback port")
}

/// Sends one RESP command over a fresh socket; the raw reply, or nil if nothing answered.
func e2eRawRedis(port: Int, _ arguments: [String], timeout: Double = 1) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { Glibc.close(fd) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    var command = "*\(arguments.count)\r\n"
    for argument in arguments { command += "$\(argument.utf8.count)\r\n\(argument)\r\n" }
    let bytes = Array(command.utf8)
    guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { return nil }
    var buffer = [UInt8](repeating: 0, count: 65_536)
    let count = recv(fd, &buffer, buffer.count, 0)
    guard count > 0 else { return nil }
    return String(decoding: buffer[..<count], as: UTF8.self)
}

/// Repeats `attempt` (each bounded by its own timeout) until it succeeds or `timeout` passes.
/// Only for conditions that nothing announces, such as a server starting to answer PING.
func e2eRetry(timeout: Double, _ attempt: () -> Bool) -> Bool {
    let end = deadline(after: timeout)
    while ContinuousClock.now < end {
        if attempt() { return true }
        var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
        nanosleep(&pause, nil)
    }
    return attempt()
}

/// Runs a program to completion; exit status, stdout and stderr.
@discardableResult
func e2eRun(_ path: String, _ arguments: [String], timeout: Double = 20) throws
    -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let exited = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in exited.signal() }
    try process.run()
    let stdout = OutputCollector(pipe: out)
    let stderr = OutputCollector(pipe: err)
    guard exited.wait(timeout: .now() + timeout) == .success else {
        Glibc.kill(process.processIdentifier, SIGKILL)
        throw E2EError("\(path) \(arguments) did not exit within \(timeout) s; stdout: \(stdout.text) stderr: \(stderr.text)")
    }
    _ = stdout.waitForEnd(timeout: 2)
    _ = stderr.waitForEnd(timeout: 2)
    let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    return (status, stdout.text, stderr.text)
}

/// A real `redis-server` on a free loopback port; `kill9()` then `start()` is a crash and a
/// restart on the same port. Killed at deinit.
final class E2ERedisServer: @unchecked Sendable {
    let port: Int
    let directory: String
    private let arguments: [String]
    private var process: Process?

    init(port: Int? = nil, start: Bool = true, clusterEnabled: Bool = false) throws {
        let port = port ?? e2eFreePort(clusterBus: clusterEnabled)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-e2e-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.port = port
        self.directory = directory
        arguments = clusterEnabled ? [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "\(directory)/nodes-\(port).conf",
            "--cluster-node-timeout", "2000",
        ] : []
        if start { try self.start() }
    }

    deinit {
        kill9()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `redis://127.0.0.1:<port>`.
    var url: String { "redis://127.0.0.1:\(port)" }
    var address: String { "127.0.0.1:\(port)" }

    /// Spawns the server and waits until it answers PING.
    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", directory, "--logfile", "\(directory)/redis.log"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        guard waitForPing(timeout: 10) else {
            let log = (try? String(contentsOfFile: "\(directory)/redis.log", encoding: .utf8)) ?? ""
            throw E2EError("redis-server on port \(port) did not answer PING within 10 s:\n\(log.suffix(2000))")
        }
    }

    /// Whether the server answers PING within `timeout`.
    func waitForPing(timeout: Double) -> Bool {
        e2eRetry(timeout: timeout) { e2eRawRedis(port: port, ["PING"], timeout: 0.5)?.contains("PONG") == true }
    }

    /// SIGKILL, as in a crash: no goodbye to clients.
    func kill9() {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// `PUBLISH channel message` through `redis-cli`; the number of receivers Redis reports.
    @discardableResult
    func publish(_ channel: String, _ message: String) throws -> Int {
        let result = try e2eRun("/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(port), "PUBLISH", channel, message])
        let text = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.status == 0, let count = Int(text) else {
            throw E2EError("redis-cli PUBLISH \(channel) failed (\(result.status)): \(result.stdout) \(result.stderr)")
        }
        return count
    }

    /// One command through a raw socket; the RESP reply.
    func command(_ arguments: [String]) throws -> String {
        guard let reply = e2eRawRedis(port: port, arguments) else { throw E2EError("no reply from Redis on \(port) to \(arguments)") }
        return reply
    }
}

/// Three `redis-server`s joined into a Redis Cluster without replicas, `cluster_state:ok`.
final class E2ERedisCluster: @unchecked Sendable {
    let servers: [E2ERedisServer]

    init() throws {
        var servers: [E2ERedisServer] = []
        for _ in 0..<3 { servers.append(try E2ERedisServer(clusterEnabled: true)) }
        self.servers = servers
        let created = try e2eRun("/usr/bin/redis-cli", ["--cluster", "create"] + servers.map(\.address)
                                 + ["--cluster-replicas", "0", "--cluster-yes"], timeout: 60)
        guard created.status == 0 else { throw E2EError("redis-cli --cluster create failed:\n\(created.stdout)\(created.stderr)") }
        let ok = e2eRetry(timeout: 30) {
            servers.allSatisfy { e2eRawRedis(port: $0.port, ["CLUSTER", "INFO"])?.contains("cluster_state:ok") == true }
        }
        guard ok else { throw E2EError("the cluster did not reach cluster_state:ok within 30 s") }
    }
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
