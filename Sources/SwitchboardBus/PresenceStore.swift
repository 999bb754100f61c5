import SwitchboardDriverSupport
import CHiredis
import Glibc

/// Where the instances of a fleet keep who is in which room with presence, so that a query on
/// one instance sees the members of all of them. Members are opaque JSON bytes
/// (`{clientId, userId?, metadata?}`, written by the kernel); the store only keeps them.
///
/// Calls come from the server's loop and never block it: changes are queued, and a query's
/// answer comes back on the store's own thread.
public protocol PresenceStore: AnyObject, Sendable {
    /// Starts keeping this instance's entries alive (the server calls it when it starts).
    func start()
    /// A client of this instance joined (true) or left a room with presence.
    func changed(room: String, clientID: String, member: [UInt8], joined: Bool)
    /// The members of `room` on every live instance (this one's as last written), in no order;
    /// empty when the store cannot be reached.
    func members(room: String, answer: @escaping @Sendable ([[UInt8]]) -> Void)
    /// Stops the heartbeat and the worker; this instance's entries are removed if Redis answers.
    func close()
}

/// The presence store of a fleet on Redis. New keys only, beside the original's channels (the
/// spec's `channels.presence_room` and `presence_instance` name them; the server passes their
/// prefixes):
///
/// - `{roomKeyPrefix}{room}`: a hash, one field per client id, its value `{serverId}\n{member JSON}`;
/// - `{instanceKeyPrefix}{serverId}`: this instance's heartbeat, set with `PX ttl` every
///   `ttl / 3` by the worker.
///
/// An instance killed without a goodbye leaves its fields behind, but its heartbeat key
/// expires at most `ttl` after its last refresh: readers drop (and delete) the fields of every
/// instance whose heartbeat key is gone, so no query lists a dead instance's client later than
/// `ttl` after it stopped.
public final class RedisPresenceStore: PresenceStore, @unchecked Sendable {
    private let roomPrefix: String
    private let instancePrefix: String

    private enum Job {
        case write([String])
        case query(String, @Sendable ([[UInt8]]) -> Void)
    }

    private let url: RedisURL
    private let serverID: String
    private let ttlMilliseconds: Int64
    private let log: @Sendable (String) -> Void
    private let monitor = ThreadMonitor()
    private var jobs: [Job] = []
    private var closed = false
    private var thread: pthread_t?
    private let wake: (read: Int32, write: Int32)

    /// Nothing runs until `start()`.
    public init(url: RedisURL, serverID: String, ttlMilliseconds: Int64, roomKeyPrefix: String, instanceKeyPrefix: String,
                log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.url = url
        self.roomPrefix = roomKeyPrefix
        self.instancePrefix = instanceKeyPrefix
        self.serverID = serverID
        self.ttlMilliseconds = max(300, ttlMilliseconds)
        self.log = log
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0, "pipe failed")
        wake = (fds[0], fds[1])
    }

    /// Starts the worker, which connects and writes the first heartbeat at once.
    public func start() {
        monitor.withLock {
            guard thread == nil, !closed else { return }
            thread = redisSpawnThread { [self] in run() }
        }
    }

    deinit {
        Glibc.close(wake.read)
        Glibc.close(wake.write)
    }

    public func changed(room: String, clientID: String, member: [UInt8], joined: Bool) {
        let key = roomPrefix + room
        enqueue(.write(joined ? ["HSET", key, clientID, serverID + "\n" + String(decoding: member, as: UTF8.self)]
                              : ["HDEL", key, clientID]))
    }

    public func members(room: String, answer: @escaping @Sendable ([[UInt8]]) -> Void) {
        if !enqueue(.query(room, answer)) { answer([]) }
    }

    public func close() {
        let wasOpen = monitor.withLock { () -> Bool in
            defer { closed = true }
            monitor.broadcast()
            return !closed
        }
        guard wasOpen, let thread = monitor.withLock({ thread }) else { return }
        pthread_join(thread, nil)
    }

    @discardableResult
    private func enqueue(_ job: Job) -> Bool {
        monitor.withLock {
            guard !closed else { return false }
            jobs.append(job)
            monitor.broadcast()
            return true
        }
    }

    // MARK: - The worker

    /// Refreshes the heartbeat every ttl/3 and performs queued jobs in order. What this
    /// instance holds is kept here too (`held`), so that a new connection (after a failure, or
    /// a Redis restart that lost the hashes) writes it all again, and deletes that may not have
    /// reached Redis are sent again; a query that fails answers empty. On close the heartbeat
    /// and every held field are removed.
    private func run() {
        var connection: RedisConnection?
        var nextBeat: UInt64 = 0
        let period = UInt64(ttlMilliseconds) * 1_000_000 / 3
        var held: [String: [String: String]] = [:]  // room key -> client id -> value
        var unconfirmedDeletes: [String: Set<String>] = [:]  // room key -> client ids
        while true {
            var batch: [Job] = []
            let stop = monitor.withLock { () -> Bool in
                while jobs.isEmpty && !closed && redisNow() < nextBeat { _ = monitor.wait(until: nextBeat) }
                batch = jobs
                jobs.removeAll()
                return closed
            }
            // The wanted state first: a write that fails is repeated by the next connection.
            for case .write(let arguments) in batch {
                let (key, id) = (arguments[1], arguments[2])
                if arguments[0] == "HSET" {
                    held[key, default: [:]][id] = arguments[3]
                    unconfirmedDeletes[key]?.remove(id)
                } else {
                    held[key]?[id] = nil
                    if held[key]?.isEmpty == true { held[key] = nil }
                    unconfirmedDeletes[key, default: []].insert(id)
                }
            }
            do throws(RedisIOError) {
                let link: RedisConnection
                if let connection {
                    link = connection
                } else {
                    link = try RedisConnection.connect(url.nodes[0], of: url, deadline: redisNow() + 2_000_000_000, wakeFD: wake.read)
                    connection = link
                    // The heartbeat before the fields: a reader that saw our fields without it
                    // would take this instance for dead and delete them.
                    _ = try command(link, ["SET", instancePrefix + serverID, "1", "PX", String(ttlMilliseconds)])
                    nextBeat = redisNow() + period
                    for (key, ids) in unconfirmedDeletes where !ids.isEmpty { _ = try command(link, ["HDEL", key] + ids.sorted()) }
                    unconfirmedDeletes = [:]
                    for (key, fields) in held {
                        _ = try command(link, ["HSET", key] + fields.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] })
                    }
                    batch.removeAll { if case .write = $0 { true } else { false } }  // written just now
                }
                if redisNow() >= nextBeat || stop {
                    let ttl = String(ttlMilliseconds)
                    if try command(link, ["PEXPIRE", instancePrefix + serverID, ttl]).first != Array("1".utf8) {
                        // The key was gone (it expired while this thread stalled, or Redis lost
                        // it): readers may have deleted our fields as a dead instance's. The
                        // heartbeat first, then everything held again.
                        _ = try command(link, ["SET", instancePrefix + serverID, "1", "PX", ttl])
                        for (key, fields) in held {
                            _ = try command(link, ["HSET", key] + fields.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] })
                        }
                    }
                    nextBeat = redisNow() + period
                }
                for job in batch {
                    switch job {
                    case .write(let arguments):
                        _ = try command(link, arguments)
                        if arguments[0] == "HDEL" { unconfirmedDeletes[arguments[1]]?.remove(arguments[2]) }
                    case .query(let room, let answer):
                        answer(try query(link, room: room))
                    }
                }
                if stop {
                    for (key, fields) in held { _ = try command(link, ["HDEL", key] + fields.keys.sorted()) }
                    _ = try command(link, ["DEL", instancePrefix + serverID])
                }
            } catch {
                log("presence store: \(error)")
                connection?.close()
                connection = nil
                for case .query(_, let answer) in batch { answer([]) }
                nextBeat = redisNow() + 200_000_000  // retry soon
            }
            if stop { break }
        }
        connection?.close()
    }

    /// One command and its reply as strings (an array's elements, or the one value).
    private func command(_ link: RedisConnection, _ arguments: [String]) throws(RedisIOError) -> [[UInt8]] {
        var writer = RESPWriter()
        writer.command(arguments)
        let deadline = redisNow() + 2_000_000_000
        try link.write(writer.bytes, deadline: deadline)
        let reply = try link.reply(deadline: deadline)
        defer { freeReplyObject(reply) }
        if reply.pointee.type == REDIS_REPLY_ERROR {
            throw RedisIOError(kind: .rejected, description: "\(arguments[0]): \(RedisConnection.text(reply))")
        }
        guard reply.pointee.type == REDIS_REPLY_ARRAY else { return [Array(RedisConnection.text(reply).utf8)] }
        return (0..<reply.pointee.elements).map { index in
            guard let element = reply.pointee.element[index] else { return [] }
            return Array(RedisConnection.text(element).utf8)
        }
    }

    /// HGETALL, then one EXISTS per instance named: entries of instances without a heartbeat
    /// are left out and deleted.
    private func query(_ link: RedisConnection, room: String) throws(RedisIOError) -> [[UInt8]] {
        let key = roomPrefix + room
        let flat = try command(link, ["HGETALL", key])
        var entries: [(field: String, server: String, member: [UInt8])] = []
        var index = 0
        while index + 1 < flat.count {
            let value = flat[index + 1]
            if let newline = value.firstIndex(of: UInt8(ascii: "\n")) {
                entries.append((String(decoding: flat[index], as: UTF8.self),
                                String(decoding: value[..<newline], as: UTF8.self), Array(value[(newline + 1)...])))
            }
            index += 2
        }
        var alive: [String: Bool] = [serverID: true]
        for server in Set(entries.map(\.server)) where alive[server] == nil {
            alive[server] = try command(link, ["EXISTS", instancePrefix + server]).first == Array("1".utf8)
        }
        let dead = entries.filter { alive[$0.server] != true }.map(\.field)
        if !dead.isEmpty { _ = try command(link, ["HDEL", key] + dead) }
        return entries.filter { alive[$0.server] == true }.map(\.member)
    }
}
