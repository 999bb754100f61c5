import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The built `switchboard` binary: next to the running test bundle (same scratch path and
/// configuration), else `<repo>/.build/debug/switchboard`.
let switchboardBinary: String = {
    var folders: [URL] = []
    if let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        folders.append(URL(fileURLWithPath: own).deletingLastPathComponent())
    }
    folders.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
    for folder in folders {
        let candidate = folder.appendingPathComponent("switchboard").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return repoRoot + "/.build/debug/switchboard"
}()

struct ProcessResult {
    var status: Int32
    var out: String
    var err: String
}

/// Runs `switchboard ARGUMENTS` to completion in `directory` with only PATH and `environment`
/// set (so a `SWITCHBOARD_*` variable of the machine running the tests cannot leak in).
/// The waiting happens on a thread of its own: blocked in the cooperative pool (two threads on
/// a two-core machine) it would stall the hooks of every ServeApp that other suites run.
func switchboard(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
                 stdin: String? = nil) async throws -> ProcessResult {
    try await offThePool { try runSwitchboard(arguments, environment: environment, directory: directory, stdin: stdin) }
}

/// `body` on a new thread, awaited.
@discardableResult
func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

private func runSwitchboard(_ arguments: [String], environment: [String: String], directory: String?,
                            stdin: String?) throws -> ProcessResult {
    guard FileManager.default.isExecutableFile(atPath: switchboardBinary) else {
        throw TestFailure("no switchboard binary at \(switchboardBinary); build it (swift build --build-tests)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: switchboardBinary)
    process.arguments = arguments
    process.environment = ["PATH": "/usr/bin:/bin"].merging(environment) { $1 }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe(), input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    // Both pipes drained at once: a command that fills one while we block on the other would hang.
    final class Box: @unchecked Sendable { var data = Data() }
    let errors = Box(), drained = DispatchSemaphore(value: 0)
    Thread {
        errors.data = err.fileHandleForReading.readDataToEndOfFile()
        drained.signal()
    }.start()
    let output = out.fileHandleForReading.readDataToEndOfFile()
    drained.wait()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, out: String(decoding: output, as: UTF8.self),
                         err: String(decoding: errors.data, as: UTF8.self))
}

/// A real redis-server on a free port of 127.0.0.1, which a test can stop and start again on
/// the same port. Killed with SIGKILL: a child inherits the signal mask of a process whose
/// loop takes SIGTERM through signalfd.
final class RedisServer: @unchecked Sendable {
    static let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) }

    let port: Int
    private var process: Process?

    var url: String { "redis://127.0.0.1:\(port)" }

    init() throws {
        port = try freePort()
        try start()
    }

    deinit { stop() }

    /// Starts the server and returns once it accepts connections (or throws after 10 s).
    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary ?? "redis-server")
        process.arguments = ["--port", "\(port)", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if (try? Socket(port: port)) != nil { return }
            usleep(10_000)
        }
        throw TestFailure("redis-server did not accept connections on port \(port) within 10 s")
    }

    /// Stops the server and waits until it is gone.
    func stop() {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }
}

/// Polls `condition` until it holds or `timeout` passes; whether it held.
func eventually(within timeout: Duration = .seconds(10), _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try condition()
}
