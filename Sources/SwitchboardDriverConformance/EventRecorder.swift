import Foundation
import Switchboard

/// A `DriverEvents` that records what a driver reports and checks, as each callback arrives,
/// the rules of `docs/drivers.md` that one callback can break: on the loop, never re-entrant,
/// never inside a driver call, one open and one close per connection, no bytes after `close`
/// or while paused, `now` never going back, no timer early, cancelled or unarmed.
///
/// Checks act on the driver through the recorder's wrappers (`close`, `pauseReading`,
/// `schedule`, ...) so it knows what the driver was told. Reactions (`onOpened`, `onBytes`,
/// `onTimer`, `onDrained`) run on the loop inside the callback, as the engine's code would.
/// The test thread reads the record with `wait(_:timeout:until:)`.
public final class EventRecorder: DriverEvents, @unchecked Sendable {
    public enum Event: Equatable, Sendable {
        case opened(ConnectionID)
        case bytes(ConnectionID, [UInt8])
        case drained(ConnectionID)
        case closed(ConnectionID)
        case timer(UInt64)
    }

    /// The driver being checked; set before `start` (not retained by the driver: see `Driver`).
    public var driver: (any Driver)!

    // Loop-only state.
    public var onOpened: ((ConnectionID) -> Void)?
    public var onBytes: ((ConnectionID, [UInt8]) -> Void)?
    public var onTimer: ((UInt64) -> Void)?
    public var onDrained: ((ConnectionID) -> Void)?
    private var depth = 0
    private var inDriverCall: String?
    private var closeRequested: Set<ConnectionID> = []
    private var paused: Set<ConnectionID> = []
    private var armed: [UInt64: Int64] = [:]
    private var lastMonotonic = Int64.min

    // Shared with the test thread, under `condition`.
    private let condition = NSCondition()
    private var events: [Event] = []
    private var violations: [String] = []
    private var open: Set<ConnectionID> = []
    private var closed: Set<ConnectionID> = []

    public init() {}

    // MARK: - The test thread's view

    /// Everything recorded so far.
    public var recorded: [Event] { condition.withLock { events } }
    /// Rules broken so far, one line each.
    public var problems: [String] { condition.withLock { violations } }

    /// Blocks until `predicate` holds for the events recorded (re-checked after each one), or
    /// throws after `timeout` seconds naming `what`. Also throws at once on a broken rule.
    public func wait(_ what: String, timeout: Double = 5, until predicate: ([Event]) -> Bool) throws {
        let end = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let first = violations.first { throw ConformanceFailure("\(what): \(first)") }
            if predicate(events) { return }
            guard condition.wait(until: end) else {
                if predicate(events) { return }
                throw ConformanceFailure("timed out after \(timeout) s waiting for \(what); recorded: \(Self.summary(events))")
            }
        }
    }

    /// The bytes received on `connection`, concatenated.
    public static func bytes(of connection: ConnectionID, in events: [Event]) -> [UInt8] {
        events.reduce(into: []) { if case .bytes(connection, let bytes) = $1 { $0 += bytes } }
    }

    public static func opened(in events: [Event]) -> [ConnectionID] {
        events.compactMap { if case .opened(let id) = $0 { id } else { nil } }
    }

    static func summary(_ events: [Event]) -> String {
        events.suffix(12).map { event -> String in
            switch event {
            case .opened(let id): "opened(\(id))"
            case .bytes(let id, let bytes): "bytes(\(id), \(bytes.count))"
            case .drained(let id): "drained(\(id))"
            case .closed(let id): "closed(\(id))"
            case .timer(let token): "timer(\(token))"
            }
        }.joined(separator: " ")
    }

    // MARK: - Acting on the driver (on the loop)

    /// `driver.close`, remembered: no bytes may be reported for it afterwards.
    public func close(_ connection: ConnectionID, flushFirst: Bool) {
        closeRequested.insert(connection)
        call("close") { driver.close(connection, flushFirst: flushFirst) }
    }

    public func pauseReading(_ connection: ConnectionID) {
        paused.insert(connection)
        call("pauseReading") { driver.pauseReading(connection) }
    }

    public func resumeReading(_ connection: ConnectionID) {
        paused.remove(connection)
        call("resumeReading") { driver.resumeReading(connection) }
    }

    public func schedule(_ token: UInt64, at deadline: Int64) {
        armed[token] = deadline
        call("schedule") { driver.schedule(token, at: deadline) }
    }

    public func cancel(_ token: UInt64) {
        armed[token] = nil
        call("cancel") { driver.cancel(token) }
    }

    /// Runs a driver call, flagging any callback made inside it.
    public func call(_ name: String, _ body: () -> Void) {
        let outer = inDriverCall
        inDriverCall = name
        body()
        inDriverCall = outer
    }

    // MARK: - DriverEvents

    public func connectionOpened(_ connection: ConnectionID, peer: String) {
        enter("connectionOpened")
        defer { leave() }
        record(.opened(connection)) {
            if open.contains(connection) || closed.contains(connection) { return "connection \(connection) opened twice" }
            if peer.isEmpty { return "connectionOpened(\(connection)) with an empty peer" }
            open.insert(connection)
            return nil
        }
        onOpened?(connection)
    }

    public func bytesReceived(_ connection: ConnectionID, _ bytes: UnsafeRawBufferPointer) {
        enter("bytesReceived")
        defer { leave() }
        let copy = Array(bytes)
        let afterClose = closeRequested.contains(connection)
        let whilePaused = paused.contains(connection)
        record(.bytes(connection, copy)) {
            if !open.contains(connection) { return "bytesReceived for \(connection), which is not open" }
            if afterClose { return "bytesReceived for \(connection) after close(_:flushFirst:)" }
            if whilePaused { return "bytesReceived for \(connection) while its reading is paused" }
            if copy.isEmpty { return "bytesReceived(\(connection)) with no bytes" }
            return nil
        }
        onBytes?(connection, copy)
    }

    public func connectionDrained(_ connection: ConnectionID) {
        enter("connectionDrained")
        defer { leave() }
        record(.drained(connection)) {
            open.contains(connection) ? nil : "connectionDrained for \(connection), which is not open"
        }
        onDrained?(connection)
    }

    public func connectionClosed(_ connection: ConnectionID) {
        enter("connectionClosed")
        defer { leave() }
        closeRequested.remove(connection)
        paused.remove(connection)
        record(.closed(connection)) {
            if closed.contains(connection) { return "connectionClosed(\(connection)) reported twice" }
            guard open.remove(connection) != nil else { return "connectionClosed(\(connection)) without connectionOpened" }
            closed.insert(connection)
            return nil
        }
    }

    public func timerFired(_ token: UInt64) {
        enter("timerFired")
        defer { leave() }
        let deadline = armed.removeValue(forKey: token)
        let now = driver.now.monotonic
        record(.timer(token)) {
            guard let deadline else { return "timerFired(\(token)): not armed (cancelled, replaced or fired already)" }
            return now < deadline ? "timerFired(\(token)) at \(now), before its deadline \(deadline)" : nil
        }
        onTimer?(token)
    }

    // MARK: - Rules every callback follows

    private func enter(_ name: String) {
        var problems: [String] = []
        if !driver.inLoop { problems.append("\(name) called off the loop (inLoop is false)") }
        if depth > 0 { problems.append("\(name) called re-entrantly, inside another callback") }
        if let call = inDriverCall { problems.append("\(name) called inside the driver's \(call)") }
        let now = driver.now.monotonic
        if now < lastMonotonic { problems.append("now.monotonic went back from \(lastMonotonic) to \(now)") }
        lastMonotonic = max(lastMonotonic, now)
        depth += 1
        if !problems.isEmpty { condition.withLock { violations += problems } }
    }

    private func leave() { depth -= 1 }

    private func record(_ event: Event, check: () -> String?) {
        condition.withLock {
            events.append(event)
            if let problem = check() { violations.append(problem) }
            condition.broadcast()
        }
    }
}

/// A broken rule of the driver contract, or a check that timed out.
public struct ConformanceFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
