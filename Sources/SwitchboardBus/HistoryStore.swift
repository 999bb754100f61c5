import SwitchboardDriverSupport
import Glibc

/// One message of a room with history to record: opaque bytes, as the kernel made them.
public struct HistoryRecord: Sendable {
    public var room: String
    /// `{"event","data"}`: what is kept and replayed.
    public var message: [UInt8]
    /// The room's channel, and its envelope split around the `offset` and `epoch` values
    /// (`BusEnvelope.encodedAroundStamp`), for a store that publishes (Redis).
    public var channel: String
    public var envelopeParts: [[UInt8]]
    public var offsetFirst: Bool

    public init(room: String, message: [UInt8], channel: String, envelopeParts: [[UInt8]], offsetFirst: Bool) {
        self.room = room
        self.message = message
        self.channel = channel
        self.envelopeParts = envelopeParts
        self.offsetFirst = offsetFirst
    }
}

/// One kept message: its offset and its `{"event","data"}` JSON.
public struct HistoryStoreEntry: Equatable, Sendable {
    public var offset: UInt64
    public var message: [UInt8]
    public init(offset: UInt64, message: [UInt8]) {
        self.offset = offset
        self.message = message
    }
}

/// What a store read of one room: its epoch, the offset of its last message (0: none yet),
/// and the messages after the asked offset it still keeps (within its size and age), oldest first.
public struct HistorySnapshot: Equatable, Sendable {
    public var epoch: String
    public var offset: UInt64
    public var entries: [HistoryStoreEntry]
    public init(epoch: String, offset: UInt64, entries: [HistoryStoreEntry]) {
        self.epoch = epoch
        self.offset = offset
        self.entries = entries
    }
}

/// Where the messages of rooms with history are kept, each with an offset that only grows
/// within the room's epoch. Calls come from a server's loop and never block it for I/O.
public protocol HistoryStore: AnyObject, Sendable {
    /// Whether an append publishes the room envelope, with its offset and epoch, for every
    /// instance (Redis); when false the server delivers `recorded` messages itself.
    var publishes: Bool { get }
    /// Starts the store's worker, if it has one (the server calls it when it starts).
    func start()
    /// Records `record` with its room's next offset. A store that does not deliver by itself
    /// (in memory) calls `recorded(offset, epoch)` before returning, in the order the offsets
    /// were given (under its lock); one that delivers through the bus (Redis: the envelope with
    /// `offset` and `epoch` reaches every instance, this one too) never calls it.
    func append(_ record: HistoryRecord, recorded: (UInt64, String) -> Void)
    /// For a store that `publishes`: records `records` in order, as `append` one by one would.
    /// A store with a worker hands them to it together, so they go to Redis in one pipeline
    /// and come back on the subscription in one read (one loop turn delivers them all).
    func append(all records: [HistoryRecord])
    /// Where `room` is, and the messages kept after `offset` (none asked for when nil); nil
    /// when the store cannot be read. Answered on any thread.
    func read(room: String, after offset: UInt64?, answer: @escaping @Sendable (HistorySnapshot?) -> Void)
    /// Where `room` is, and the last `count` messages it keeps (within its size and age),
    /// oldest first; nil when the store cannot be read. Answered on any thread. For the
    /// `history` query, which reads a room's recent messages without knowing its offset.
    func readLast(room: String, count: Int, answer: @escaping @Sendable (HistorySnapshot?) -> Void)
    /// Stops the worker; appends still queued may be lost.
    func close()
}

extension HistoryStore {
    public func append(all records: [HistoryRecord]) {
        for record in records { append(record, recorded: { _, _ in }) }
    }
}

/// The history of one instance's rooms in its memory: a ring of at most `size` messages per
/// room, none kept longer than `ttl`. The epoch is drawn when the store is made (a restart
/// starts a new one, so clients that recover across it are told). A room's last offset is kept
/// as long as the store, even once its messages have aged out, so offsets never repeat within
/// the epoch (a few bytes per room ever written).
public final class InMemoryHistoryStore: HistoryStore, @unchecked Sendable {
    private struct Kept {
        var offset: UInt64
        var at: Int64
        var message: [UInt8]
    }

    private struct Room {
        var last: UInt64 = 0
        /// Kept messages from `start` on, oldest first (`start` moves instead of shifting).
        var kept: [Kept] = []
        var start = 0
        var count: Int { kept.count - start }

        mutating func dropFirst() {
            start += 1
            if start > 32 && start * 2 > kept.count {
                kept.removeFirst(start)
                start = 0
            }
        }
    }

    public let epoch: String
    private let size: Int
    private let ttl: Int64
    private let clock: @Sendable () -> Int64
    private let monitor = ThreadMonitor()
    private var rooms: [String: Room] = [:]

    /// `ttlMilliseconds` against `clock` (milliseconds; the monotonic clock by default).
    public init(size: Int, ttlMilliseconds: Int64, epoch: String = InMemoryHistoryStore.randomEpoch(),
                clock: (@Sendable () -> Int64)? = nil) {
        self.size = max(0, size)
        self.ttl = ttlMilliseconds
        self.epoch = epoch
        self.clock = clock ?? { Int64(redisNow() / 1_000_000) }
    }

    /// 16 hex digits from the system's random source.
    public static func randomEpoch() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next()
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    public var publishes: Bool { false }
    public func start() {}
    public func close() {}

    public func append(_ record: HistoryRecord, recorded: (UInt64, String) -> Void) {
        monitor.withLock {
            let now = clock()
            var room = rooms[record.room] ?? Room()
            room.last += 1
            age(&room, now: now)
            if size > 0 {
                room.kept.append(Kept(offset: room.last, at: now, message: record.message))
                while room.count > size { room.dropFirst() }
            }
            rooms[record.room] = room
            recorded(room.last, epoch)
        }
    }

    public func read(room name: String, after offset: UInt64?, answer: @escaping @Sendable (HistorySnapshot?) -> Void) {
        let snapshot = monitor.withLock { () -> HistorySnapshot in
            guard var room = rooms[name] else { return HistorySnapshot(epoch: epoch, offset: 0, entries: []) }
            age(&room, now: clock())
            rooms[name] = room
            guard let offset else { return HistorySnapshot(epoch: epoch, offset: room.last, entries: []) }
            let entries = room.kept[room.start...].filter { $0.offset > offset }.map {
                HistoryStoreEntry(offset: $0.offset, message: $0.message)
            }
            return HistorySnapshot(epoch: epoch, offset: room.last, entries: entries)
        }
        answer(snapshot)
    }

    public func readLast(room name: String, count: Int, answer: @escaping @Sendable (HistorySnapshot?) -> Void) {
        let snapshot = monitor.withLock { () -> HistorySnapshot in
            guard var room = rooms[name] else { return HistorySnapshot(epoch: epoch, offset: 0, entries: []) }
            age(&room, now: clock())
            rooms[name] = room
            let entries = room.kept[room.start...].suffix(max(0, count)).map {
                HistoryStoreEntry(offset: $0.offset, message: $0.message)
            }
            return HistorySnapshot(epoch: epoch, offset: room.last, entries: entries)
        }
        answer(snapshot)
    }

    /// Drops the messages older than `ttl`.
    private func age(_ room: inout Room, now: Int64) {
        while room.count > 0 && now - room.kept[room.start].at > ttl { room.dropFirst() }
    }
}
