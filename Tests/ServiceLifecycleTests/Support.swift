import Foundation
import Logging
import Synchronization

/// A value set once by one task and awaited by another (no polling, no sleeps).
final class AsyncSignal<Value: Sendable>: Sendable {
    private let state = Mutex<(value: Value?, waiters: [CheckedContinuation<Value, Never>])>((nil, []))

    func send(_ value: Value) {
        let waiters = state.withLock { state -> [CheckedContinuation<Value, Never>] in
            guard state.value == nil else { return [] }
            state.value = value
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    var value: Value {
        get async {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Value? in
                    if let value = state.value { return value }
                    state.waiters.append(continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }
}

/// One line a `CapturingLogHandler` received.
struct CapturedLine: Sendable {
    let level: Logging.Logger.Level
    let message: String
    let metadata: Logging.Logger.Metadata
}

/// A swift-log `LogHandler` that hands every line, with its merged metadata, to the test.
struct CapturingLogHandler: LogHandler {
    let onLine: @Sendable (CapturedLine) -> Void
    var metadata: Logging.Logger.Metadata = [:]
    var logLevel: Logging.Logger.Level = .trace

    init(onLine: @escaping @Sendable (CapturedLine) -> Void) {
        self.onLine = onLine
    }

    subscript(metadataKey key: String) -> Logging.Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        onLine(CapturedLine(level: event.level, message: event.message.description,
                            metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
    }
}

/// Polls `condition` without holding a thread of the pool (the service under test needs them)
/// until it holds or 10 s pass; whether it held.
func eventually(_ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// `body` on a new thread, awaited: blocking client reads must not hold one of the pool's
/// threads (two on a two-core machine), which the services under test need.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A value handed to one thread at a time (a test client moving to `offThePool` and back).
final class Handed<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
