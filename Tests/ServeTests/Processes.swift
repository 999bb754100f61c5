import TestSupport
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

// A real redis-server a test can stop and start again: TestSupport's `RedisServer`.

/// Polls `condition` until it holds or `timeout` passes; whether it held.
func eventually(within timeout: Duration = .seconds(10), _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try condition()
}
