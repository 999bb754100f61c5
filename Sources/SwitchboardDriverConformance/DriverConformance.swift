import Foundation
import Switchboard

/// The driver conformance kit: the rules of `docs/drivers.md`, checked against a real driver
/// over real loopback sockets. A driver author hands it a factory and runs every check from
/// Swift Testing:
///
/// ```swift
/// import SwitchboardDriverConformance
/// import Testing
///
/// @Suite struct MyDriverConformance {
///     static let kit = DriverConformance(name: "MyDriver") { try MyDriver() }
///     @Test(arguments: DriverConformance.Check.allCases)
///     func conforms(_ check: DriverConformance.Check) throws { try Self.kit.run(check) }
/// }
/// ```
///
/// Each check builds a fresh driver, starts it on 127.0.0.1 port 0, runs its loop on a thread
/// of its own, and throws `ConformanceFailure` naming the broken rule.
///
/// A driver without real sockets (`sockets: false`, like the simulation's `SimDriver`) cannot
/// be reached by the kit's loopback peers: it runs `checks` (those that need no connection)
/// and `skipped` lists the rest. Running a skipped check throws: it never passes unseen.
public struct DriverConformance: Sendable {
    public enum Check: String, CaseIterable, Sendable, CustomStringConvertible {
        /// `execute` before `run()` and from inside the loop queues, in order, onto the loop.
        case executeQueues
        /// One open and one close per connection, whoever closes it (the peer, `close` inside
        /// `connectionOpened`, inside `bytesReceived`); callbacks on the loop, not re-entrant.
        case connectionLifecycle
        /// Writes of every kind arrive in call order, flushed after the callback, the `execute`
        /// work or the timer that made them, with no further input.
        case orderingAndFlush
        /// Writes after `close` and to unknown connections are ignored (the bounded ones
        /// answer true); `close` of an unknown connection is harmless.
        case writesAfterClose
        /// `close(flushFirst: true)` writes everything, then FIN, then closes within the linger
        /// bound although the peer never closes; `flushFirst: false` closes at once.
        case closeAndLinger
        /// Under a stalled reader `bufferedAmount` grows and bounded writes are refused; once the
        /// peer reads, `connectionDrained` follows, `bufferedAmount` is 0, no byte is lost.
        case backpressure
        /// `pauseReading` stops `bytesReceived` (bytes are held; a FIN waits behind them);
        /// `resumeReading` delivers the held bytes later, never inside the call.
        case pauseAndResume
        /// One-shot timers on the `now.monotonic` scale: replace, cancel, order of equal deadlines.
        case timers
        /// `stop` before `run`, and from another thread while the loop runs.
        case stopFromAnotherThread
        /// `stopAccepting` from another thread: no new connection opens, open ones carry on.
        case stopAccepting
        /// A `Server` on the driver: upgrade, `authenticate`, `connected`, echo through a hook.
        case gatewayAuthentication
        /// A `Server` on the driver: `join` and room delivery to several clients.
        case gatewayRooms
        /// A `Server` on the driver: close codes 4003, 1009, 4001 and a clean 1000.
        case gatewayCloseCodes

        public var description: String { rawValue }

        /// The check connects to the driver over loopback TCP (its peers, or a `Server`'s
        /// WebSocket clients): a driver without real sockets skips it.
        public var needsSockets: Bool {
            switch self {
            case .executeQueues, .timers, .stopFromAnotherThread: false
            default: true
            }
        }
    }

    public let name: String
    /// How long `close(flushFirst: true)` may linger, in seconds (the POSIX driver: 2).
    public let lingerBound: Double
    /// The driver listens on real sockets that the kit's loopback peers can reach.
    public let sockets: Bool
    let makeDriver: @Sendable () throws -> any Driver

    /// - Parameters:
    ///   - sockets: false for a driver whose connections are not loopback TCP (a simulation):
    ///     only `checks` apply.
    ///   - makeDriver: a new driver, not started, each time it is called.
    public init(name: String, lingerBound: Double = 5, sockets: Bool = true,
                makeDriver: @escaping @Sendable () throws -> any Driver) {
        self.name = name
        self.lingerBound = lingerBound
        self.sockets = sockets
        self.makeDriver = makeDriver
    }

    /// The checks this driver can take: all of them, or without sockets those that need none.
    public var checks: [Check] { Check.allCases.filter { sockets || !$0.needsSockets } }
    /// The checks skipped for want of sockets (empty for a driver with sockets).
    public var skipped: [Check] { Check.allCases.filter { !sockets && $0.needsSockets } }

    /// Runs one check; throws `ConformanceFailure` (or the failure of a socket) if it fails,
    /// or if it is one this driver skips.
    public func run(_ check: Check) throws {
        if skipped.contains(check) {
            throw ConformanceFailure("\(check) needs loopback sockets, which \(name) does not have: run the kit's `checks`")
        }
        switch check {
        case .executeQueues: try checkExecuteQueues()
        case .connectionLifecycle: try checkConnectionLifecycle()
        case .orderingAndFlush: try checkOrderingAndFlush()
        case .writesAfterClose: try checkWritesAfterClose()
        case .closeAndLinger: try checkCloseAndLinger()
        case .backpressure: try checkBackpressure()
        case .pauseAndResume: try checkPauseAndResume()
        case .timers: try checkTimers()
        case .stopFromAnotherThread: try checkStopFromAnotherThread()
        case .stopAccepting: try checkStopAccepting()
        case .gatewayAuthentication: try checkGatewayAuthentication()
        case .gatewayRooms: try checkGatewayRooms()
        case .gatewayCloseCodes: try checkGatewayCloseCodes()
        }
    }

    /// A started driver whose loop runs on a thread of its own, reporting to a recorder.
    func started() throws -> RunningDriver {
        try RunningDriver(driver: makeDriver())
    }
}

/// A driver started on 127.0.0.1:0 with an `EventRecorder`, its `run()` on a new thread.
final class RunningDriver: @unchecked Sendable {
    let driver: any Driver
    let recorder = EventRecorder()
    let port: UInt16
    private let finished = DispatchSemaphore(value: 0)

    init(driver: any Driver, runLoop: Bool = true) throws {
        self.driver = driver
        recorder.driver = driver
        let bound = try driver.start(host: "127.0.0.1", port: 0, events: recorder)
        // A virtual driver's "port" is its own business; a socket check would fail to connect.
        guard (1...65535).contains(bound) else { throw ConformanceFailure("start returned port \(bound)") }
        port = UInt16(bound)
        if runLoop { startLoop() }
    }

    private var looping = false

    /// A check that failed leaves its driver running: stop it before the recorder it reports
    /// to goes away (a driver does not retain its events).
    deinit {
        guard looping else { return }
        driver.stop()
        _ = finished.wait(timeout: .now() + 10)
    }

    func startLoop() {
        looping = true
        let driver = self.driver
        let finished = self.finished
        Thread.detachNewThread {
            driver.run()
            finished.signal()
        }
    }

    /// Runs `body` on the loop (through `execute`) and returns its value.
    func onLoop<T>(_ what: String = "work queued with execute", timeout: Double = 5, _ body: @escaping () -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let box = UncheckedBox<T?>(nil)
        let body = UncheckedBox(body)
        driver.execute {
            box.value = body.value()
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success, let value = box.value else {
            throw ConformanceFailure("\(what) did not run on the loop within \(timeout) s")
        }
        return value
    }

    /// `stop()` and waits for `run()` to return.
    func stop(timeout: Double = 5) throws {
        driver.stop()
        try waitUntilStopped(timeout: timeout)
    }

    func waitUntilStopped(timeout: Double) throws {
        guard finished.wait(timeout: .now() + timeout) == .success else {
            throw ConformanceFailure("run() did not return within \(timeout) s of stop()")
        }
        looping = false
        if let problem = recorder.problems.first { throw ConformanceFailure(problem) }
    }
}

/// Moves a non-Sendable value across the loop boundary where the kit serialises access itself.
final class UncheckedBox<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// A repeating byte pattern, so that a lost, repeated or reordered byte shows.
func pattern(_ count: Int, from start: Int = 0) -> [UInt8] {
    (start..<(start + count)).map { UInt8(truncatingIfNeeded: $0 % 251) }
}
