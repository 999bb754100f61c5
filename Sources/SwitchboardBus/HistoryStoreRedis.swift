import SwitchboardDriverSupport
import CHiredis
import Glibc

/// The history of a fleet's rooms in Redis. New keys only, beside the original's channels (the
/// spec's `channels.history_stream` and `history_meta` name them; the server passes their
/// prefixes):
///
/// - `{metaPrefix}{room}`: a hash, `epoch` (set once with HSETNX, from a candidate unique to
///   each call, so a Redis that lost the key draws a new one) and `offset` (the last one given);
/// - `{streamPrefix}{room}`: a stream, one entry per message, fields `o` (its offset) and `m`
///   (its `{"event","data"}`), `MAXLEN ~ size`, trimmed to `ttl` by `MINID`.
///
/// Offsets are not the stream ids: one `HINCRBY` per message in the same script as the `XADD`
/// gives 1, 2, 3, ... with no gap, so what a client missed is the last `offset - since` entries
/// (one `XREVRANGE ... COUNT n`, no scan), and a count that comes short proves a trim. Stream ids
/// (milliseconds of Redis's clock) still carry the age.
///
/// The same script publishes the room envelope with `offset` and `epoch` spliced in: every
/// instance, this one included, hears it on its subscription in Redis's order and delivers it
/// with the same offset; the instance that recorded it does not deliver it before. One worker
/// thread sends the scripts in pipelined batches, in the order they were appended.
public final class RedisHistoryStore: HistoryStore, @unchecked Sendable {
    private enum Job {
        case append(HistoryRecord)
        case read(String, UInt64?, @Sendable (HistorySnapshot?) -> Void)
        case readLast(String, Int, @Sendable (HistorySnapshot?) -> Void)

        /// A read's answer (nil for an append).
        var answer: (@Sendable (HistorySnapshot?) -> Void)? {
            switch self {
            case .append: nil
            case .read(_, _, let answer), .readLast(_, _, let answer): answer
            }
        }
    }

    private let url: RedisURL
    private let streamPrefix: String
    private let metaPrefix: String
    private let size: Int
    private let ttl: Int64
    private let epochTTL: Int64
    private let log: @Sendable (String) -> Void
    private let monitor = ThreadMonitor()
    private var jobs: [Job] = []
    private var closed = false
    private var thread: pthread_t?
    private let wake: (read: Int32, write: Int32)
    /// Epoch candidates: this store's random prefix and a counter (a new one per call).
    private let epochPrefix = String(InMemoryHistoryStore.randomEpoch().prefix(8))
    private var epochCounter: UInt64 = 0
    /// Appends waiting while Redis cannot be reached; past this many the oldest are dropped.
    private static let maxQueued = 10_000
    private static let maxBatch = 512

    /// Nothing runs until `start()`.
    public init(url: RedisURL, streamKeyPrefix: String, metaKeyPrefix: String, size: Int, ttlMilliseconds: Int64,
                epochTTLMilliseconds: Int64, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.url = url
        self.streamPrefix = streamKeyPrefix
        self.metaPrefix = metaKeyPrefix
        self.size = max(0, size)
        self.ttl = max(1, ttlMilliseconds)
        self.epochTTL = max(1, epochTTLMilliseconds)
        self.log = log
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0, "pipe failed")
        wake = (fds[0], fds[1])
    }

    deinit {
        Glibc.close(wake.read)
        Glibc.close(wake.write)
    }

    public var publishes: Bool { true }

    public func start() {
        monitor.withLock {
            guard thread == nil, !closed else { return }
            thread = redisSpawnThread { [self] in run() }
        }
    }

    public func append(_ record: HistoryRecord, recorded: (UInt64, String) -> Void) {
        append(all: [record])
    }

    /// One lock and one wake-up of the worker for them all: woken at the first of a loop
    /// turn's appends, it would send that one alone and the rest in a second pipeline, and
    /// their envelopes would come back in two reads (two loop turns, two writes per recipient).
    public func append(all records: [HistoryRecord]) {
        var dropped = 0
        monitor.withLock {
            guard !closed else { return }
            for record in records {
                if jobs.count >= Self.maxQueued,
                   let index = jobs.firstIndex(where: { if case .append = $0 { true } else { false } }) {
                    jobs.remove(at: index)
                    dropped += 1
                }
                jobs.append(.append(record))
            }
            monitor.broadcast()
        }
        if dropped > 0 { log("history store: \(Self.maxQueued) messages wait for Redis; dropped the oldest (\(dropped))") }
    }

    public func read(room: String, after offset: UInt64?, answer: @escaping @Sendable (HistorySnapshot?) -> Void) {
        enqueueRead(.read(room, offset, answer))
    }

    public func readLast(room: String, count: Int, answer: @escaping @Sendable (HistorySnapshot?) -> Void) {
        enqueueRead(.readLast(room, max(0, count), answer))
    }

    private func enqueueRead(_ job: Job) {
        let queued = monitor.withLock { () -> Bool in
            guard !closed else { return false }
            jobs.append(job)
            monitor.broadcast()
            return true
        }
        if !queued { job.answer?(nil) }
    }

    public func close() {
        let thread = monitor.withLock { () -> pthread_t? in
            defer { closed = true }
            monitor.broadcast()
            return closed ? nil : self.thread
        }
        var byte: UInt8 = 1
        _ = Glibc.write(wake.write, &byte, 1)
        if let thread { pthread_join(thread, nil) }
        let left = monitor.withLock { () -> [Job] in
            defer { jobs = [] }
            return jobs
        }
        for job in left { job.answer?(nil) }
    }

    // MARK: - The worker

    /// Takes the queued jobs in batches and sends each batch in one write. A connection lost in
    /// a batch puts its unanswered appends back in front (sent again: at least once) and answers
    /// its reads with nil; the next batch reconnects after a pause.
    private func run() {
        var connection: RedisConnection?
        var shas: (append: String, read: String) = ("", "")
        while true {
            var batch: [Job] = []
            let stop = monitor.withLock { () -> Bool in
                while jobs.isEmpty && !closed { monitor.wait() }
                batch = Array(jobs.prefix(Self.maxBatch))
                jobs.removeFirst(batch.count)
                return closed
            }
            if stop { break }
            var answered = 0
            let reused = connection != nil
            do throws(RedisIOError) {
                let link: RedisConnection
                if let connection {
                    link = connection
                } else {
                    link = try RedisConnection.connect(url.nodes[0], of: url, deadline: redisNow() + 2_000_000_000, wakeFD: wake.read)
                    shas = (try load(link, Self.appendScript), try load(link, Self.readScript))
                    connection = link
                }
                var writer = RESPCommands()
                for job in batch { write(job, shas, into: &writer) }
                let deadline = redisNow() + 5_000_000_000
                try link.write(writer.bytes, deadline: deadline)
                for job in batch {
                    let reply = try link.reply(deadline: deadline)
                    defer { freeReplyObject(reply) }
                    answered += 1
                    switch job {
                    case .append:
                        if reply.pointee.type == REDIS_REPLY_ERROR {
                            throw RedisIOError(kind: .rejected, description: "history append: \(RedisConnection.text(reply))")
                        }
                    case .read(_, _, let answer), .readLast(_, _, let answer):
                        answer(Self.snapshot(reply))
                    }
                }
            } catch {
                log("history store: \(error)")
                connection?.close()
                connection = nil
                let unanswered = batch[answered...]
                if reused && error.kind != .rejected {
                    // The connection had gone stale (Redis restarted, say): everything again, at
                    // once, on a new one; a read is answered nil only when that fails too.
                    monitor.withLock { jobs.insert(contentsOf: unanswered, at: 0) }
                    continue
                }
                for job in unanswered { job.answer?(nil) }
                let appends = unanswered.filter { if case .append = $0 { true } else { false } }
                let stop = monitor.withLock { () -> Bool in
                    jobs.insert(contentsOf: appends, at: 0)
                    if !closed { _ = monitor.wait(until: redisNow() + 200_000_000) }  // retry soon
                    return closed
                }
                if stop { break }
            }
        }
        connection?.close()
    }

    /// `SCRIPT LOAD`: the script's SHA1 for EVALSHA (a new connection loads again, so a Redis
    /// restart, which forgets scripts, is followed by a load before the next call).
    private func load(_ link: RedisConnection, _ script: String) throws(RedisIOError) -> String {
        var writer = RESPCommands()
        writer.command([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(script.utf8)])
        let deadline = redisNow() + 2_000_000_000
        try link.write(writer.bytes, deadline: deadline)
        let reply = try link.reply(deadline: deadline)
        defer { freeReplyObject(reply) }
        guard reply.pointee.type == REDIS_REPLY_STRING else {
            throw RedisIOError(kind: .rejected, description: "SCRIPT LOAD: \(RedisConnection.text(reply))")
        }
        return RedisConnection.text(reply)
    }

    private func nextEpochCandidate() -> [UInt8] {
        epochCounter += 1
        return Array((epochPrefix + String(epochCounter, radix: 16)).utf8)
    }

    private func write(_ job: Job, _ shas: (append: String, read: String), into writer: inout RESPCommands) {
        switch job {
        case .append(let record):
            // Written argument by argument into the batch's buffer: one per broadcast, and built
            // as fifteen small arrays it was most of the worker's cost (bench/redis.md).
            epochCounter += 1
            writer.begin(15)
            writer.argument("EVALSHA".utf8)
            writer.argument(shas.append.utf8)
            writer.argument("2".utf8)
            writer.argument(metaPrefix.utf8, record.room.utf8)
            writer.argument(streamPrefix.utf8, record.room.utf8)
            writer.argument(epochPrefix.utf8, hex: epochCounter)
            writer.argument(decimal: UInt64(size))
            writer.argument(decimal: UInt64(ttl))
            writer.argument(decimal: UInt64(epochTTL))
            writer.argument(record.channel.utf8)
            for index in 0..<3 {
                writer.argument(index < record.envelopeParts.count ? record.envelopeParts[index] : [])
            }
            writer.argument((record.offsetFirst ? "o" : "e").utf8)
            writer.argument(record.message)
        case .read(let room, let after, _):
            writeRead(room: room, after: after.map { String($0) } ?? "-1", last: 0, sha: shas.read, into: &writer)
        case .readLast(let room, let count, _):
            writeRead(room: room, after: "-1", last: count, sha: shas.read, into: &writer)
        }
    }

    /// The read script's call: the messages after `after` (-1: none), or with `last` above 0 the
    /// last `last` kept messages.
    private func writeRead(room: String, after: String, last: Int, sha: String, into writer: inout RESPCommands) {
        writer.command([Array("EVALSHA".utf8), Array(sha.utf8), Array("2".utf8),
                        Array((metaPrefix + room).utf8), Array((streamPrefix + room).utf8),
                        nextEpochCandidate(), Array(String(epochTTL).utf8), Array(after.utf8),
                        Array(String(size).utf8), Array(String(ttl).utf8), Array(String(last).utf8)])
    }

    /// The read script's reply: `[epoch, last offset, [offset, message, offset, message, ...]]`.
    private static func snapshot(_ reply: UnsafeMutablePointer<redisReply>) -> HistorySnapshot? {
        guard reply.pointee.type == REDIS_REPLY_ARRAY, reply.pointee.elements == 3, let items = reply.pointee.element,
              let epoch = items[0], let last = items[1], let flat = items[2],
              let offset = UInt64(RedisConnection.text(last)) else { return nil }
        var entries: [HistoryStoreEntry] = []
        if flat.pointee.type == REDIS_REPLY_ARRAY, let values = flat.pointee.element {
            var index = 0
            while index + 1 < flat.pointee.elements {
                if let offsetReply = values[index], let messageReply = values[index + 1],
                   let entryOffset = UInt64(RedisConnection.text(offsetReply)), let bytes = messageReply.pointee.str {
                    entries.append(HistoryStoreEntry(offset: entryOffset, message: Array(UnsafeRawBufferPointer(
                        start: bytes, count: messageReply.pointee.len))))
                }
                index += 2
            }
        }
        return HistorySnapshot(epoch: RedisConnection.text(epoch), offset: offset, entries: entries)
    }

    // MARK: - Scripts

    /// KEYS: meta, stream. ARGV: epoch candidate, size, ttl ms, epoch ttl ms, channel, the three
    /// envelope parts, `o` (offset first) or `e`, the message. Gives the next offset, keeps the
    /// message, publishes the envelope with the offset and epoch spliced in; answers the offset.
    static let appendScript = """
        redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
        local epoch = redis.call('HGET', KEYS[1], 'epoch')
        local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
        redis.call('PEXPIRE', KEYS[1], ARGV[4])
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('XTRIM', KEYS[2], 'MINID', '~', tostring(now - tonumber(ARGV[3])))
        if tonumber(ARGV[2]) > 0 then
          redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'o', tostring(offset), 'm', ARGV[10])
          redis.call('PEXPIRE', KEYS[2], ARGV[3])
        end
        local first, second = tostring(offset), '"' .. epoch .. '"'
        if ARGV[9] == 'e' then first, second = second, first end
        redis.call('PUBLISH', ARGV[5], ARGV[6] .. first .. ARGV[7] .. second .. ARGV[8])
        return offset
        """

    /// KEYS: meta, stream. ARGV: epoch candidate, epoch ttl ms, after (-1: no messages asked
    /// for), size, ttl ms, last (0: none). Answers `[epoch, last offset, [offset, message, ...]]`:
    /// oldest first and none older than the ttl by Redis's clock, the kept messages after
    /// `after`, none when more were missed than `size` (they cannot all be there); or, with
    /// `last` above 0 (the `history` query), the last `last` kept messages.
    static let readScript = """
        redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        local epoch = redis.call('HGET', KEYS[1], 'epoch')
        local last = tonumber(redis.call('HGET', KEYS[1], 'offset') or '0')
        local after = tonumber(ARGV[3])
        local count = tonumber(ARGV[6])
        if count == 0 and after >= 0 and last > after and last - after <= tonumber(ARGV[4]) then
          count = last - after
        end
        local entries = {}
        if count > 0 then
          local t = redis.call('TIME')
          local oldest = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[5])
          local range = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', tostring(count))
          for i = #range, 1, -1 do
            local ms = tonumber(string.match(range[i][1], '^(%d+)'))
            if ms >= oldest then
              entries[#entries + 1] = range[i][2][2]
              entries[#entries + 1] = range[i][2][4]
            end
          end
        end
        return {epoch, tostring(last), entries}
        """
}

/// RESP commands of binary-safe arguments into one buffer: whole (`command`), or argument by
/// argument after `begin`, with no array per argument.
struct RESPCommands {
    var bytes: [UInt8] = []

    /// A command of `count` arguments; exactly that many `argument` calls follow.
    mutating func begin(_ count: Int) {
        bytes.append(UInt8(ascii: "*"))
        digits(UInt64(count), radix: 10)
        bytes.append(contentsOf: [13, 10])
    }

    mutating func argument(_ value: some Collection<UInt8>) {
        header(value.count)
        bytes.append(contentsOf: value)
        bytes.append(contentsOf: [13, 10])
    }

    /// Two pieces as one argument (a key prefix and a room).
    mutating func argument(_ first: String.UTF8View, _ second: String.UTF8View) {
        header(first.count + second.count)
        bytes.append(contentsOf: first)
        bytes.append(contentsOf: second)
        bytes.append(contentsOf: [13, 10])
    }

    /// `prefix`, then `value` in lowercase hexadecimal, as one argument.
    mutating func argument(_ prefix: String.UTF8View, hex value: UInt64) {
        header(prefix.count + Self.digitCount(value, radix: 16))
        bytes.append(contentsOf: prefix)
        digits(value, radix: 16)
        bytes.append(contentsOf: [13, 10])
    }

    mutating func argument(decimal value: UInt64) {
        header(Self.digitCount(value, radix: 10))
        digits(value, radix: 10)
        bytes.append(contentsOf: [13, 10])
    }

    private mutating func header(_ length: Int) {
        bytes.append(UInt8(ascii: "$"))
        digits(UInt64(length), radix: 10)
        bytes.append(contentsOf: [13, 10])
    }

    private mutating func digits(_ value: UInt64, radix: UInt64) {
        if value >= radix { digits(value / radix, radix: radix) }
        let digit = UInt8(value % radix)
        bytes.append(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
    }

    private static func digitCount(_ value: UInt64, radix: UInt64) -> Int {
        var count = 1, rest = value
        while rest >= radix {
            rest /= radix
            count += 1
        }
        return count
    }

    mutating func command(_ arguments: [[UInt8]]) {
        bytes.append(UInt8(ascii: "*"))
        bytes.append(contentsOf: String(arguments.count).utf8)
        bytes.append(contentsOf: [13, 10])
        for argument in arguments {
            bytes.append(UInt8(ascii: "$"))
            bytes.append(contentsOf: String(argument.count).utf8)
            bytes.append(contentsOf: [13, 10])
            bytes.append(contentsOf: argument)
            bytes.append(contentsOf: [13, 10])
        }
    }
}
