// Runs the `switchboard-fixture` binary (docs/contract.md) for end-to-end tests.
import Foundation
import Switchboard
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One running `switchboard-fixture`. `withFixture` kills it when the test ends; so does deinit.
final class Fixture: @unchecked Sendable {
    let process: Process
    private let stdout: OutputCollector
    private let stderr: OutputCollector
    private let exited = DispatchSemaphore(value: 0)
    private let exitLock = NSLock()
    private var exitStatus: Int32?
    /// The port of `LISTENING <port>`; 0 until it was seen.
    private(set) var port: UInt16 = 0

    /// The binary: `$SWITCHBOARD_FIXTURE`, else next to the running test bundle (same scratch
    /// path and configuration), else `<repo>/.build/debug/switchboard-fixture`.
    static let executablePath: String = {
        if let path = ProcessInfo.processInfo.environment["SWITCHBOARD_FIXTURE"], !path.isEmpty { return path }
        var folders: [URL] = []
        if let url = Bundle.main.executableURL { folders.append(url.deletingLastPathComponent()) }
        if let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            folders.append(URL(fileURLWithPath: own).deletingLastPathComponent())
        }
        folders.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        for folder in folders {
            let candidate = folder.appendingPathComponent("switchboard-fixture").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return repo.appendingPathComponent(".build/debug/switchboard-fixture").path
    }()

    /// `$SWITCHBOARD_FIXTURE_DRIVER` (`posix`, `nio`): the fixture's `--driver`, so the same
    /// suite runs on another driver (`make test-nio`); unset, the fixture's default (POSIX).
    static let driverFlags: [String] = {
        guard let driver = ProcessInfo.processInfo.environment["SWITCHBOARD_FIXTURE_DRIVER"], !driver.isEmpty
        else { return [] }
        return ["--driver", driver]
    }()

    /// Flags added to every fixture this run starts, from `SWITCHBOARD_FIXTURE_FLAGS`
    /// (space-separated): `SWITCHBOARD_FIXTURE_FLAGS="--loops 2"` runs every end-to-end test
    /// against a fixture with two event loops.
    static let extraFlags: [String] = (ProcessInfo.processInfo.environment["SWITCHBOARD_FIXTURE_FLAGS"] ?? "")
        .split(separator: " ").map(String.init)

    /// Starts the fixture with `flags` (plus `--port 0`, unless a port is given, and
    /// `extraFlags`).
    init(_ flags: [String]) throws {
        let flags = flags + Self.extraFlags
        let path = Self.executablePath
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw E2EError("no fixture binary at \(path); build it (swift build --build-tests) or set SWITCHBOARD_FIXTURE")
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = (flags.contains("--port") ? flags : flags + ["--port", "0"]) + Self.driverFlags
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let exited = self.exited
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        stdout = OutputCollector(pipe: out)
        stderr = OutputCollector(pipe: err)
    }

    deinit { kill() }

    /// Waits for `LISTENING <port>`.
    /// - Throws: with the stderr text when the fixture exits or is silent for `timeout`.
    func waitUntilListening(timeout: Double = 10) throws {
        guard let line = stdout.takeLine(prefix: "LISTENING ", timeout: timeout) else {
            throw E2EError("no LISTENING line within \(timeout) s from \(Self.executablePath) \(process.arguments ?? []);"
                + " stdout: \(stdout.text.debugDescription) stderr: \(stderr.text.debugDescription)")
        }
        guard let port = UInt16(line.dropFirst("LISTENING ".count)), port != 0 else {
            throw E2EError("malformed line \(line.debugDescription)")
        }
        self.port = port
    }

    /// The next stdout line starting with `prefix` (each line is returned once).
    @discardableResult
    func waitForLine(prefix: String, timeout: Double = 2) throws -> String {
        guard let line = stdout.takeLine(prefix: prefix, timeout: timeout) else {
            throw E2EError("no stdout line starting with \(prefix.debugDescription) within \(timeout) s;"
                + " stdout: \(stdout.text.debugDescription) stderr: \(stderr.text.debugDescription)")
        }
        return line
    }

    var stdoutLines: [String] { stdout.allLines }
    var stderrText: String { stderr.text }

    /// The exit status once the process has exited (nil on timeout). A death by signal is
    /// reported as 128 + signal.
    func waitForExit(timeout: Double) -> Int32? {
        exitLock.lock()
        if let status = exitStatus {
            exitLock.unlock()
            return status
        }
        exitLock.unlock()
        guard exited.wait(timeout: .now() + timeout) == .success else { return nil }
        let status = process.terminationReason == .uncaughtSignal
            ? 128 + process.terminationStatus : process.terminationStatus
        exitLock.lock()
        exitStatus = status
        exitLock.unlock()
        // Let the collectors see the end of their pipes.
        _ = stdout.waitForEnd(timeout: 1)
        _ = stderr.waitForEnd(timeout: 1)
        return status
    }

    /// Sends `signal` without waiting.
    func send(signal: Int32) {
        Glibc.kill(process.processIdentifier, signal)
    }

    /// Sends `signal` and waits for the exit status.
    /// - Throws: when the process does not exit within `timeout`.
    func terminate(signal: Int32 = SIGTERM, timeout: Double = 5) throws -> Int32 {
        send(signal: signal)
        guard let status = waitForExit(timeout: timeout) else {
            throw E2EError("the fixture did not exit within \(timeout) s after signal \(signal); stderr: \(stderrText.debugDescription)")
        }
        return status
    }

    /// SIGKILL if still running.
    func kill() {
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
            _ = waitForExit(timeout: 5)
        }
    }

    /// Connects a WebSocket client to this fixture.
    func client(path: String = "/ws", receiveBuffer: Int32? = nil) throws -> WSClient {
        try WSClient(port: port, path: path, receiveBuffer: receiveBuffer)
    }

    /// A client that sent `authenticate` with `token` (and `extra` data members) and got
    /// `connected`; returns it with the `connected` data.
    func authenticatedClient(token: String = "user:a", extra: [(String, JSONValue)] = []) throws
        -> (client: WSClient, connected: ConnectedInfo) {
        let client = try self.client()
        let info = try client.authenticate(token: token, extra: extra)
        return (client, info)
    }

    /// Runs the fixture with `flags` until it exits (start-up errors).
    static func runToExit(_ flags: [String], timeout: Double = 10) throws -> (status: Int32, stdout: [String], stderr: String) {
        let fixture = try Fixture(flags)
        defer { fixture.kill() }
        guard let status = fixture.waitForExit(timeout: timeout) else {
            throw E2EError("the fixture \(flags) did not exit within \(timeout) s; stdout: \(fixture.stdoutLines)"
                + " stderr: \(fixture.stderrText.debugDescription)")
        }
        return (status, fixture.stdoutLines, fixture.stderrText)
    }
}

/// Starts the fixture with `flags`, waits for LISTENING, runs `body`, and always kills the
/// process afterwards.
func withFixture<T>(_ flags: [String] = [], _ body: (Fixture) throws -> T) throws -> T {
    let fixture = try Fixture(flags)
    defer { fixture.kill() }
    try fixture.waitUntilListening()
    return try body(fixture)
}
