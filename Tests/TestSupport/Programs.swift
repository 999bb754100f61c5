import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a program run by `runProgram` ended and what it wrote.
public struct ProgramResult: Sendable {
    /// The exit status, or 128 + the signal number when a signal ended it.
    public let status: Int32
    public let stdoutBytes: [UInt8]
    public let stderr: String

    public var stdout: String { String(decoding: stdoutBytes, as: UTF8.self) }
    /// Standard output, then standard error (for messages about a failure).
    public var output: String { stdout + stderr }
}

/// Runs a program to completion with `stdin` (none: /dev/null), in `directory` (nil: this
/// process's), and returns its status and output. Both pipes are read on their own threads,
/// so a chatty child never blocks.
/// - Throws: when it cannot start, or has not exited after `timeout` seconds (it is killed).
@discardableResult
public func runProgram(_ path: String, _ arguments: [String], stdin: [UInt8]? = nil, in directory: String? = nil,
                       timeout: Double = 60) throws -> ProgramResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe()
    let err = Pipe()
    let input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = stdin == nil ? FileHandle.nullDevice : input
    let exited = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in exited.signal() }
    try process.run()
    let stdout = OutputCollector(pipe: out)
    let stderr = OutputCollector(pipe: err)
    if let stdin {
        input.fileHandleForWriting.write(Data(stdin))
        try input.fileHandleForWriting.close()
    }
    guard exited.wait(timeout: .now() + timeout) == .success else {
        kill(process.processIdentifier, SIGKILL)
        throw TestFailure("\(path) \(arguments) did not exit within \(timeout) s; stdout: \(stdout.text) stderr: \(stderr.text)",
                          isTimeout: true)
    }
    _ = stdout.waitForEnd(timeout: 2)
    _ = stderr.waitForEnd(timeout: 2)
    let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    return ProgramResult(status: status, stdoutBytes: stdout.data, stderr: stderr.text)
}
