import SwitchboardDriverSupport
import CHiredis
import Glibc

/// The state and the shared parts of a `RedisBus`: the buffer `publish` appends to, the
/// counters, connecting and backing off, and the one lock (`monitor`) that guards them. Its two
/// threads are in extensions of their own: the subscriber (RedisBusSubscriber.swift) and the
/// publisher (RedisBusPublisher.swift).
final class RedisBusCore: @unchecked Sendable {
    struct Pending {
        var channel: String
        var message: [UInt8]
    }

    enum ConnectOutcome {
        case connected(RedisConnection)
        case failed(String)
        case closed
    }

    static let maxBatchCount = 512
    static let maxBatchBytes = 1 << 20

    let url: RedisURL
    let channels: [String]
    let patterns: [String]
    let options: RedisBusOptions
    let log: @Sendable (String) -> Void
    let connectTimeout: UInt64
    let commandTimeout: UInt64
    let healthInterval: UInt64?
    let monitor = ThreadMonitor()
    /// Readable once the bus is closed: every poll watches it.
    let wakeRead: Int32
    let wakeWrite: Int32

    // Guarded by `monitor`.
    var queue: RedisRing<Pending>
    var started = false
    var closed = false
    var threads: [pthread_t] = []
    var readyCallback: (@Sendable (Result<Void, BusError>) -> Void)?
    var everReady = false
    var subscribed = false
    var publisherUp = false
    var publisherWaiting = false
    /// Bumped when the subscriber loses its connection: the publisher reconnects too.
    var generation = 0
    /// Bumped whenever every subscription is confirmed: ends the publisher's backoff early.
    var subscribedEpoch = 0
    /// The node index that last accepted a connection; rounds start there.
    var cursor = 0
    var node: RedisURL.Node?
    var reconnects = 0
    var published = 0
    var dropped = 0
    var received = 0
    var batches = 0
    /// Drops since the buffer last overflowed, until it drains (nil: not overflowing).
    var overflowDrops: Int?
    /// With `dropsOwnEchoes`: messages published and not yet read back, oldest first. Those
    /// that never come back (a channel nobody subscribes, an outage) are passed over when a
    /// later one does, or fall off the end.
    var unechoed = RedisRing<[UInt8]>(capacity: 1024)
    /// How far into `unechoed` an arriving message is looked for.
    static let echoWindow = 8

    init(url: RedisURL, channels: [String], patterns: [String], options: RedisBusOptions,
         log: @escaping @Sendable (String) -> Void) {
        self.url = url
        self.channels = channels
        self.patterns = patterns
        self.options = options
        self.log = log
        connectTimeout = options.connectTimeout.redisNanoseconds
        commandTimeout = options.commandTimeout.redisNanoseconds
        healthInterval = options.healthCheckInterval.map(\.redisNanoseconds)
        queue = RedisRing(capacity: options.bufferCapacity)
        var fds: [Int32] = [-1, -1]
        precondition(pipe(&fds) == 0, "pipe failed: \(redisErrnoText())")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
    }

    // MARK: Caller side

    func start(receive: @escaping @Sendable ([BusMessage]) -> Void,
               ready: @escaping @Sendable (Result<Void, BusError>) -> Void) {
        monitor.lock()
        if started || closed {
            monitor.unlock()
            ready(.failure(BusError(closed ? "the Redis bus is closed" : "the Redis bus was already started")))
            return
        }
        started = true
        readyCallback = ready
        threads = [
            redisSpawnThread { self.runPublisher() },
            redisSpawnThread { self.runSubscriber(receive) },
        ]
        monitor.unlock()
    }

    func enqueue(channel: String, message: [UInt8]) {
        monitor.lock()
        if closed {
            monitor.unlock()
            return
        }
        var overflowStarted = false
        if queue.isFull {
            queue.removeFirst()
            dropped += 1
            overflowStarted = overflowDrops == nil
            overflowDrops = (overflowDrops ?? 0) + 1
        }
        queue.append(Pending(channel: channel, message: message))
        if options.dropsOwnEchoes {
            if unechoed.isFull { unechoed.removeFirst() }
            unechoed.append(message)
        }
        if publisherWaiting {
            publisherWaiting = false
            monitor.broadcast()
        }
        monitor.unlock()
        if overflowStarted {
            log("redis: publish buffer full (\(queue.capacity) messages); dropping the oldest until Redis accepts again")
        }
    }

    func close() {
        monitor.lock()
        closed = true
        let joining = threads
        threads = []
        let callback = readyCallback
        readyCallback = nil
        monitor.broadcast()
        monitor.unlock()
        wake()
        let me = pthread_self()
        for thread in joining {
            if pthread_equal(thread, me) != 0 {
                pthread_detach(thread)
            } else {
                pthread_join(thread, nil)
            }
        }
        callback?(.failure(BusError("the Redis bus was closed before its subscriptions were confirmed")))
    }

    func snapshot() -> RedisBusStats {
        monitor.withLock {
            RedisBusStats(connected: subscribed && publisherUp, reconnects: reconnects, published: published,
                          dropped: dropped, received: received, buffered: queue.count, node: node, batches: batches)
        }
    }

    // MARK: Shared by both threads

    func wake() {
        var byte: UInt8 = 1
        _ = Glibc.write(wakeWrite, &byte, 1)
    }

    /// Tries every node once, starting where the last connection succeeded.
    func connectRound() -> ConnectOutcome {
        let start = monitor.withLock { cursor }
        var failures: [String] = []
        for step in 0..<url.nodes.count {
            let index = (start + step) % url.nodes.count
            let node = url.nodes[index]
            do throws(RedisIOError) {
                let connection = try RedisConnection.open(node, deadline: redisNow() + connectTimeout, wakeFD: wakeRead)
                try connection.handshake(url, deadline: redisNow() + commandTimeout)
                monitor.withLock { cursor = index }
                return .connected(connection)
            } catch {
                if error.kind == .woken { return .closed }
                failures.append("\(node): \(error)")
            }
        }
        return .failed("cannot connect to Redis at " + failures.joined(separator: "; "))
    }

    /// After losing `node` mid-run, the next round starts at the node after it (both threads may
    /// report the same loss; only the first moves the cursor).
    func skip(_ node: RedisURL.Node) {
        monitor.withLock {
            if url.nodes[cursor] == node { cursor = (cursor + 1) % url.nodes.count }
        }
    }

    /// Sleeps up to `nanoseconds`, less if `endEarly` (checked under the lock) turns true;
    /// false once the bus is closed.
    func pause(_ nanoseconds: UInt64, endEarly: () -> Bool = { false }) -> Bool {
        let deadline = redisNow() + nanoseconds
        monitor.lock()
        defer { monitor.unlock() }
        while !closed && !endEarly() {
            if !monitor.wait(until: deadline) { break }
        }
        return !closed
    }

    /// Logs `reason` with the next backoff delay of `role`'s thread and sleeps that long (less
    /// if `endEarly` turns true); false once the bus is closed.
    func backOff(_ role: String, _ reason: String, _ backoff: inout BackoffState,
                         endEarly: () -> Bool = { false }) -> Bool {
        let delay = backoff.next()
        log("redis \(role): \(reason); retrying in \(delay / 1_000_000) ms")
        return pause(delay, endEarly: endEarly)
    }

    /// With `failFast`, a failure before the first `ready` ends the bus and fails `ready`.
    /// True when the calling thread must stop.
    func failFastIfNeverReady(_ reason: String) -> Bool {
        guard options.failFast else { return false }
        monitor.lock()
        if everReady {
            monitor.unlock()
            return false
        }
        let callback = readyCallback
        readyCallback = nil
        closed = true
        monitor.broadcast()
        monitor.unlock()
        wake()
        if let callback {
            log("redis: \(reason)")
            callback(.failure(BusError(reason)))
        }
        return true
    }

    /// Under the lock: the `ready` callback to call now that both connections are up, once.
    func takeReadyIfComplete() -> (@Sendable (Result<Void, BusError>) -> Void)? {
        guard !everReady, !closed, subscribed, publisherUp else { return nil }
        everReady = true
        defer { readyCallback = nil }
        return readyCallback
    }
}
