import Glibc

/// Reconnect delays: `initial`, doubling up to `maximum`; each wait is drawn from
/// [delay/2, delay] so that instances restarted together do not reconnect in lockstep.
public struct RedisBackoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
        self.initial = initial
        self.maximum = maximum
    }
}

/// Monotonic nanoseconds (`CLOCK_MONOTONIC`, the clock the condition variable waits on).
func redisNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

extension Duration {
    var redisNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
    }
}

struct BackoffState {
    let initial: UInt64
    let maximum: UInt64
    private var current: UInt64

    init(_ backoff: RedisBackoff) {
        initial = max(1_000_000, backoff.initial.redisNanoseconds)
        maximum = max(initial, backoff.maximum.redisNanoseconds)
        current = initial
    }

    /// The next wait in nanoseconds (jittered), then doubles the base.
    mutating func next() -> UInt64 {
        let base = current
        current = min(maximum, current &* 2)
        return base / 2 + UInt64.random(in: 0...(base / 2))
    }

    mutating func reset() { current = initial }
}

private final class ThreadBody {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Starts a joinable pthread running `body`.
func redisSpawnThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { argument in
        let body = Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue()
        body.run()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return thread
}

func redisErrnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

/// A FIFO of at most `capacity` elements in a ring that grows on demand.
struct RedisRing<Element> {
    let capacity: Int
    private var storage: [Element?] = []
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var isEmpty: Bool { count == 0 }
    var isFull: Bool { count == capacity }

    /// Appends; the caller makes room first (`isFull` -> `removeFirst`).
    mutating func append(_ element: Element) {
        precondition(count < capacity)
        if count == storage.count { grow() }
        storage[(head + count) % storage.count] = element
        count += 1
    }

    /// The element `offset` places from the front (`offset < count`).
    subscript(offset: Int) -> Element {
        precondition(offset >= 0 && offset < count)
        return storage[(head + offset) % storage.count]!
    }

    @discardableResult
    mutating func removeFirst() -> Element {
        precondition(count > 0)
        let element = storage[head].take()!
        head = (head + 1) % storage.count
        count -= 1
        return element
    }

    /// Puts `element` back in front; false (and not stored) when full.
    mutating func prepend(_ element: Element) -> Bool {
        if count == capacity { return false }
        if count == storage.count { grow() }
        head = (head - 1 + storage.count) % storage.count
        storage[head] = element
        count += 1
        return true
    }

    private mutating func grow() {
        let size = min(capacity, max(16, storage.count * 2))
        var larger = [Element?](repeating: nil, count: size)
        for i in 0..<count { larger[i] = storage[(head + i) % storage.count].take() }
        storage = larger
        head = 0
    }
}

/// Builds RESP commands into one reusable buffer (no per-message allocation once warm).
struct RESPWriter {
    var bytes: [UInt8] = []

    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    mutating func command(_ arguments: [String]) {
        header(UInt8(ascii: "*"), arguments.count)
        for argument in arguments { bulk(argument) }
    }

    mutating func publish(channel: String, message: [UInt8]) {
        bytes.append(contentsOf: "*3\r\n$7\r\nPUBLISH\r\n".utf8)
        bulk(channel)
        header(UInt8(ascii: "$"), message.count)
        bytes.append(contentsOf: message)
        crlf()
    }

    private mutating func bulk(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            header(UInt8(ascii: "$"), utf8.count)
            bytes.append(contentsOf: utf8)
        }
        crlf()
    }

    private mutating func header(_ kind: UInt8, _ value: Int) {
        bytes.append(kind)
        if value == 0 {
            bytes.append(UInt8(ascii: "0"))
        } else {
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                         UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            var n = value, length = 0
            withUnsafeMutableBytes(of: &digits) { buffer in
                while n > 0 {
                    buffer[length] = UInt8(ascii: "0") + UInt8(n % 10)
                    n /= 10
                    length += 1
                }
                for i in stride(from: length - 1, through: 0, by: -1) { bytes.append(buffer[i]) }
            }
        }
        crlf()
    }

    private mutating func crlf() {
        bytes.append(13)
        bytes.append(10)
    }
}
