/// A min-heap of events ordered by (time, lane, sequence).
///
/// A lane is the entity an event belongs to (a connection, a client, a driver's timers, a bus
/// link). Within a lane, events at one time keep their insertion order; across lanes the lane
/// number decides. The server iterates some dictionaries (idle sweep, shutdown), so the order in
/// which it touches *different* connections is not stable between processes; keying by lane
/// makes the run independent of it.
struct EventQueue<Payload> {
    struct Key: Comparable {
        var time: Int64
        var lane: UInt64
        var sequence: UInt64
        static func < (a: Key, b: Key) -> Bool {
            if a.time != b.time { return a.time < b.time }
            if a.lane != b.lane { return a.lane < b.lane }
            return a.sequence < b.sequence
        }
    }

    private var keys: [Key] = []
    private var payloads: [Payload] = []
    private var sequence: UInt64 = 0

    var count: Int { keys.count }
    var isEmpty: Bool { keys.isEmpty }
    var nextTime: Int64? { keys.first?.time }
    /// The event `pop()` would return, left in the queue.
    var next: (key: Key, payload: Payload)? { keys.isEmpty ? nil : (keys[0], payloads[0]) }

    mutating func push(_ payload: Payload, at time: Int64, lane: UInt64) {
        sequence += 1
        keys.append(Key(time: time, lane: lane, sequence: sequence))
        payloads.append(payload)
        var child = keys.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard keys[child] < keys[parent] else { break }
            keys.swapAt(child, parent)
            payloads.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (Key, Payload)? {
        guard !keys.isEmpty else { return nil }
        let top = (keys[0], payloads[0])
        let lastKey = keys.removeLast()
        let lastPayload = payloads.removeLast()
        if !keys.isEmpty {
            keys[0] = lastKey
            payloads[0] = lastPayload
            var parent = 0
            while true {
                let left = parent * 2 + 1
                guard left < keys.count else { break }
                var smallest = left
                if left + 1 < keys.count, keys[left + 1] < keys[left] { smallest = left + 1 }
                guard keys[smallest] < keys[parent] else { break }
                keys.swapAt(smallest, parent)
                payloads.swapAt(smallest, parent)
                parent = smallest
            }
        }
        return top
    }
}

/// The run's trace: every line, and a hash of them all (equal for two runs of one seed).
struct Trace {
    private(set) var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    private(set) var all: [String] = []

    var lines: Int { all.count }

    mutating func append(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            for byte in bytes {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            }
        }
        hash = (hash ^ 0x0A) &* 0x0000_0100_0000_01B3
        all.append(line)
    }
}

/// A FIFO of bytes with a moving head; compacted now and then.
struct ByteQueue {
    private var storage: [UInt8] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { head == storage.count }

    mutating func append(_ bytes: [UInt8]) { storage.append(contentsOf: bytes) }

    mutating func take(_ n: Int) -> [UInt8] {
        let end = head + min(n, count)
        let out = Array(storage[head..<end])
        head = end
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 65536, head * 2 > storage.count {
            storage.removeSubrange(0..<head)
            head = 0
        }
        return out
    }

    mutating func removeAll() {
        storage.removeAll()
        head = 0
    }
}
