import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Sends one RESP command over a fresh loopback socket and returns the raw reply (nil if
/// nothing answered within `timeout`). Independent of the client under test.
public func rawRedis(port: Int, _ arguments: [String], timeout: Double = 1) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    guard connectLoopback(fd, port: port) == 0 else { return nil }
    var command = "*\(arguments.count)\r\n"
    for argument in arguments { command += "$\(argument.utf8.count)\r\n\(argument)\r\n" }
    let bytes = Array(command.utf8)
    guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { return nil }
    var buffer = [UInt8](repeating: 0, count: 65_536)
    let count = recv(fd, &buffer, buffer.count, 0)
    guard count > 0 else { return nil }
    return String(decoding: buffer[..<count], as: UTF8.self)
}

/// A real `redis-server` on a free loopback port, in a directory of its own. `kill9()` then
/// `start()` is a crash and a restart on the same port; `freeze()`/`thaw()` stop it answering
/// without closing sockets. Killed and its directory removed at deinit.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    public let directory: String
    private let arguments: [String]
    private var process: Process?

    /// - Parameters:
    ///   - arguments: extra `redis-server` options (for example `--requirepass`).
    ///   - clusterEnabled: a Redis Cluster node (port + 10000 must be free too).
    public init(port: Int? = nil, arguments: [String] = [], start: Bool = true, clusterEnabled: Bool = false) throws {
        let port = port ?? freePort(clusterBus: clusterEnabled)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.port = port
        self.directory = directory
        self.arguments = arguments + (clusterEnabled ? [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "\(directory)/nodes-\(port).conf",
            "--cluster-node-timeout", "2000",
        ] : [])
        if start { try self.start() }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `redis://127.0.0.1:<port>`.
    public var url: String { "redis://127.0.0.1:\(port)" }
    /// `127.0.0.1:<port>`.
    public var address: String { "127.0.0.1:\(port)" }

    /// Spawns the server and waits until it answers PING.
    public func start() throws {
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
            throw TestFailure("redis-server on port \(port) did not answer PING within 10 s:\n\(log.suffix(2000))")
        }
    }

    /// Whether the server answers PING within `timeout` (NOAUTH counts: it is up, with a password).
    public func waitForPing(timeout: Double) -> Bool {
        pollUntil(timeout: timeout) {
            guard let reply = rawRedis(port: port, ["PING"], timeout: 0.5) else { return false }
            return reply.contains("PONG") || reply.contains("NOAUTH")
        }
    }

    /// SIGKILL, as in a crash: no goodbye to clients.
    public func kill9() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// SIGSTOP / SIGCONT: the server stops answering without closing its sockets.
    public func freeze() { if let process { kill(process.processIdentifier, SIGSTOP) } }
    public func thaw() { if let process { kill(process.processIdentifier, SIGCONT) } }

    /// Also SIGKILL: a process spawned from a test thread inherits its blocked SIGTERM.
    public func stop() { kill9() }

    /// `PUBLISH channel message` through `redis-cli`; the number of receivers Redis reports.
    @discardableResult
    public func publish(_ channel: String, _ message: String) throws -> Int {
        let result = try runProgram("/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(port), "PUBLISH", channel, message],
                                    timeout: 20)
        let text = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.status == 0, let count = Int(text) else {
            throw TestFailure("redis-cli PUBLISH \(channel) failed (\(result.status)): \(result.output)")
        }
        return count
    }

    /// One command through a raw socket; the RESP reply.
    public func command(_ arguments: [String]) throws -> String {
        guard let reply = rawRedis(port: port, arguments) else { throw TestFailure("no reply from Redis on \(port) to \(arguments)") }
        return reply
    }
}

/// Three `redis-server`s joined into a Redis Cluster without replicas, at `cluster_state:ok`.
public final class RedisCluster: @unchecked Sendable {
    public let servers: [RedisServer]

    public init() throws {
        var servers: [RedisServer] = []
        for _ in 0..<3 { servers.append(try RedisServer(clusterEnabled: true)) }
        self.servers = servers
        let created = try runProgram("/usr/bin/redis-cli", ["--cluster", "create"] + servers.map(\.address)
                                     + ["--cluster-replicas", "0", "--cluster-yes"], timeout: 60)
        guard created.status == 0 else { throw TestFailure("redis-cli --cluster create failed:\n\(created.output)") }
        let ok = pollUntil(timeout: 30, every: 0.1) {
            servers.allSatisfy { rawRedis(port: $0.port, ["CLUSTER", "INFO"])?.contains("cluster_state:ok") == true }
        }
        guard ok else { throw TestFailure("the cluster did not reach cluster_state:ok within 30 s") }
    }
}
