import Foundation
import Glibc
import SwitchboardBus

enum RedisTestError: Error, CustomStringConvertible {
    case failed(String)
    var description: String { switch self { case .failed(let text): text } }
}

/// Polls `condition` until it holds or `timeout` passes (for things nothing can signal, such as
/// a server starting to accept). Returns the final value of `condition`.
func pollUntil(timeout: Double, every interval: Double = 0.02, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(useconds_t(interval * 1_000_000))
    }
    return condition()
}

/// A loopback port nothing listens on (and, with `clusterBus`, port + 10000 too).
func freePort(clusterBus: Bool = false) -> Int {
    func bindable(_ port: Int) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
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

/// Sends one command over a plain socket and returns the raw reply (nil if nothing answered).
func rawRedis(port: Int, _ arguments: [String], timeout: Double = 1) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
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
    let n = recv(fd, &buffer, buffer.count, 0)
    guard n > 0 else { return nil }
    return String(decoding: buffer[..<n], as: UTF8.self)
}

/// Runs a program to completion and returns its exit status and standard output.
@discardableResult
func runProgram(_ path: String, _ arguments: [String], stdin: [UInt8]? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    let input = Pipe()
    if stdin != nil { process.standardInput = input }
    try process.run()
    if let stdin {
        input.fileHandleForWriting.write(Data(stdin))
        try input.fileHandleForWriting.close()
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A real `redis-server` on a free loopback port; `kill9()` and `start()` simulate a crash and
/// a restart on the same port. Stopped at deinit.
final class RedisServer: @unchecked Sendable {
    let port: Int
    let directory: String
    private let arguments: [String]
    private var process: Process?

    init(port: Int? = nil, arguments: [String] = [], start: Bool = true, clusterEnabled: Bool = false) throws {
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

    var node: RedisURL.Node { RedisURL.Node(host: "127.0.0.1", port: port) }
    var url: RedisURL { RedisURL(nodes: [node]) }

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
        let up = pollUntil(timeout: 10) {
            guard let reply = rawRedis(port: port, ["PING"], timeout: 0.5) else { return false }
            return reply.contains("PONG") || reply.contains("NOAUTH")
        }
        if !up {
            let log = (try? String(contentsOfFile: "\(directory)/redis.log", encoding: .utf8)) ?? ""
            throw RedisTestError.failed("redis-server on port \(port) did not answer PING:\n\(log.suffix(2000))")
        }
    }

    /// SIGKILL, as in a crash: no goodbye to clients.
    func kill9() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// SIGSTOP / SIGCONT: the server stops answering without closing its sockets.
    func freeze() { if let process { kill(process.processIdentifier, SIGSTOP) } }
    func thaw() { if let process { kill(process.processIdentifier, SIGCONT) } }

    /// Also SIGKILL: a process spawned from a test thread inherits its blocked SIGTERM.
    func stop() { kill9() }
}

/// Three `redis-server`s joined into a Redis Cluster (no replicas), waiting for `cluster_state:ok`.
final class RedisCluster: @unchecked Sendable {
    let servers: [RedisServer]

    init() throws {
        var servers: [RedisServer] = []
        for _ in 0..<3 { servers.append(try RedisServer(clusterEnabled: true)) }
        self.servers = servers
        let created = try runProgram("/usr/bin/redis-cli", ["--cluster", "create"] + servers.map { "127.0.0.1:\($0.port)" }
                                + ["--cluster-replicas", "0", "--cluster-yes"])
        guard created.status == 0 else { throw RedisTestError.failed("cluster create failed:\n\(created.output)") }
        let ok = pollUntil(timeout: 30, every: 0.1) {
            servers.allSatisfy { rawRedis(port: $0.port, ["CLUSTER", "INFO"])?.contains("cluster_state:ok") == true }
        }
        guard ok else { throw RedisTestError.failed("cluster did not reach cluster_state:ok") }
    }
}

/// Collects what a bus delivers and lets a test wait for it (condition variable, with timeout).
final class Inbox: @unchecked Sendable {
    struct Message: Equatable, CustomStringConvertible {
        var channel: String
        var bytes: [UInt8]
        var text: String { String(decoding: bytes, as: UTF8.self) }
        var description: String { "\(channel) \(text)" }
    }

    private let condition = NSCondition()
    private var items: [Message] = []

    var receive: @Sendable (String, [UInt8]) -> Void {
        { [self] channel, bytes in
            condition.lock()
            items.append(Message(channel: channel, bytes: bytes))
            condition.broadcast()
            condition.unlock()
        }
    }

    var messages: [Message] { condition.lock(); defer { condition.unlock() }; return items }

    /// Waits until `predicate` holds for the messages so far; false on timeout.
    @discardableResult
    func wait(timeout: Double = 10, until predicate: ([Message]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !predicate(items) {
            if !condition.wait(until: deadline) { return predicate(items) }
        }
        return true
    }

    /// Waits for a message whose text is `text`.
    @discardableResult
    func wait(for text: String, timeout: Double = 10) -> Message? {
        var found: Message?
        wait(timeout: timeout) { messages in
            found = messages.first { $0.text == text }
            return found != nil
        }
        return found
    }
}

/// A value set once by another thread, awaited with a timeout.
final class Latch<Value: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: Value?

    func set(_ newValue: Value) {
        condition.lock()
        if value == nil { value = newValue }
        condition.broadcast()
        condition.unlock()
    }

    var current: Value? { condition.lock(); defer { condition.unlock() }; return value }

    func wait(timeout: Double = 10) -> Value? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while value == nil {
            if !condition.wait(until: deadline) { break }
        }
        return value
    }
}

/// Collects log lines; a test can wait for one containing some text.
final class LogSink: @unchecked Sendable {
    private let condition = NSCondition()
    private var lines: [String] = []

    var log: @Sendable (String) -> Void {
        { [self] line in
            condition.lock()
            lines.append(line)
            condition.broadcast()
            condition.unlock()
        }
    }

    var all: [String] { condition.lock(); defer { condition.unlock() }; return lines }

    func wait(forLineContaining text: String, timeout: Double = 10) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let line = lines.first(where: { $0.contains(text) }) { return line }
            if !condition.wait(until: deadline) { return lines.first { $0.contains(text) } }
        }
    }
}

/// The spec's subscriptions (PROTOCOL.md 8).
let specChannels = ["ws:broadcast"]
let specPatterns = ["ws:room:*", "ws:client:*", "ws:user:*"]

/// Starts a bus with the spec's subscriptions and waits for `ready`.
func startedBus(_ url: RedisURL, inbox: Inbox, log: LogSink = LogSink(),
                options: RedisBusOptions = RedisBusOptions()) throws -> RedisBus {
    let bus = RedisBus(url: url, channels: specChannels, patterns: specPatterns, options: options, log: log.log)
    let ready = Latch<Result<Void, BusError>>()
    bus.start(receive: inbox.receive, ready: { ready.set($0) })
    guard let result = ready.wait(timeout: 15) else {
        bus.close()
        throw RedisTestError.failed("bus not ready; log: \(log.all)")
    }
    try result.get()
    return bus
}

func utf8Bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func milliseconds(since start: Date) -> Int { Int(Date().timeIntervalSince(start) * 1000) }
