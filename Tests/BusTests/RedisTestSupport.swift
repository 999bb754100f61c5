import Foundation
import SwitchboardBus
import TestSupport

extension RedisServer {
    var node: RedisURL.Node { RedisURL.Node(host: "127.0.0.1", port: port) }
    /// The server as the bus names it (`url` is the text form).
    var busURL: RedisURL { RedisURL(nodes: [node]) }
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

/// Collects the batches a bus hands to `start(receiveBatch:)`, each as it came.
final class BatchInbox: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [[BusMessage]] = []

    var receive: @Sendable ([BusMessage]) -> Void {
        { [self] batch in
            condition.lock()
            items.append(batch)
            condition.broadcast()
            condition.unlock()
        }
    }

    var all: [[BusMessage]] { condition.lock(); defer { condition.unlock() }; return items }

    /// Waits until `predicate` holds for the batches so far; false on timeout.
    @discardableResult
    func wait(timeout: Double = 10, until predicate: ([[BusMessage]]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !predicate(items) {
            if !condition.wait(until: deadline) { return predicate(items) }
        }
        return true
    }
}

/// A value set once by another thread, awaited with a timeout.
final class OneShot<Value: Sendable>: @unchecked Sendable {
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
    let ready = OneShot<Result<Void, BusError>>()
    bus.start(receive: inbox.receive, ready: { ready.set($0) })
    guard let result = ready.wait(timeout: 15) else {
        bus.close()
        throw TestFailure("bus not ready; log: \(log.all)")
    }
    try result.get()
    return bus
}

func utf8Bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func milliseconds(since start: Date) -> Int { Int(Date().timeIntervalSince(start) * 1000) }
