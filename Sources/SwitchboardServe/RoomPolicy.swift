import Switchboard
import Synchronization

/// Which requested rooms a client may join (the serve command's validateRoomFn).
public struct RoomPolicy: Sendable {
    public var config: RoomPolicyConfig
    /// Rooms every client holds without asking; they do not count against `maxPerClient`.
    public var defaultRooms: Set<String>

    public static let userRoomPrefix = "user:"

    public init(config: RoomPolicyConfig, defaultRooms: [String]) {
        self.config = config
        self.defaultRooms = Set(defaultRooms)
    }

    public struct Decision: Sendable, Equatable {
        /// Rooms to join (new ones only, in request order).
        public var allowed: [String] = []
        /// Refused by the policy.
        public var denied: [String] = []
        /// Allowed, but over `maxPerClient`.
        public var overLimit: [String] = []
    }

    /// Decides for `requested` (already through the kernel's name filter); `current` are the
    /// client's rooms now.
    public func decide(requested: [String], clientID: String, userID: String?, current: [String]) -> Decision {
        var decision = Decision()
        let held = Set(current)
        var counted = current.filter { $0 != clientID && !defaultRooms.contains($0) }.count
        var seen = Set<String>()
        for room in requested where seen.insert(room).inserted {
            guard permits(room, clientID: clientID, userID: userID) else {
                decision.denied.append(room)
                continue
            }
            if held.contains(room) { continue }
            if config.maxPerClient > 0, !defaultRooms.contains(room), counted >= config.maxPerClient {
                decision.overLimit.append(room)
                continue
            }
            if !defaultRooms.contains(room) { counted += 1 }
            decision.allowed.append(room)
        }
        return decision
    }

    /// The policy for one name: `user:` rooms belong to their user alone; another client's id
    /// (UUID-shaped names) is never joinable; otherwise the allow lists decide (empty lists allow all).
    public func permits(_ room: String, clientID: String, userID: String?) -> Bool {
        if config.userRooms, room.hasPrefix(Self.userRoomPrefix) {
            guard let userID else { return false }
            return room == Self.userRoomPrefix + userID
        }
        if room != clientID, Self.looksLikeClientID(room) { return false }
        if config.allowPrefixes.isEmpty && config.allowPatterns.isEmpty { return true }
        if config.allowPrefixes.contains(where: { room.hasPrefix($0) }) { return true }
        return config.allowPatterns.contains { globMatch($0, room) }
    }

    /// `8-4-4-4-12` hex digits, the shape of client ids.
    static func looksLikeClientID(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            if index == 8 || index == 13 || index == 18 || index == 23 {
                if byte != UInt8(ascii: "-") { return false }
            } else if !(byte >= 48 && byte <= 57 || byte >= 97 && byte <= 102 || byte >= 65 && byte <= 70) {
                return false
            }
        }
        return true
    }
}

/// Glob match over characters: `*` any run (also empty), `?` exactly one character.
public func globMatch(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern), t = Array(text)
    var pi = 0, ti = 0
    var star = -1, mark = 0
    while ti < t.count {
        if pi < p.count, p[pi] == "?" || (p[pi] != "*" && p[pi] == t[ti]) {
            pi += 1
            ti += 1
        } else if pi < p.count, p[pi] == "*" {
            star = pi
            mark = ti
            pi += 1
        } else if star >= 0 {
            pi = star + 1
            mark += 1
            ti = mark
        } else {
            return false
        }
    }
    while pi < p.count, p[pi] == "*" { pi += 1 }
    return pi == p.count
}

/// A token bucket per client for custom events: `rate` per second, up to `burst` at once.
public final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Int64
        var lastWarning: Int64?
    }

    public let rate: Double
    public let burst: Double
    private let buckets = Mutex<[String: Bucket]>([:])

    public init(perSecond rate: Int, burst: Int) {
        self.rate = Double(rate)
        self.burst = Double(max(1, burst == 0 ? rate : burst))
    }

    public enum Verdict: Equatable, Sendable {
        case allowed
        /// Dropped; `warn` is true at most once a second per client.
        case limited(warn: Bool)
    }

    /// Takes one token for `client` at `now` (milliseconds).
    public func take(_ client: String, now: Int64) -> Verdict {
        buckets.withLock { buckets in
            var bucket = buckets[client] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + Double(now - bucket.updated) * rate / 1000)
            bucket.updated = now
            let verdict: Verdict
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                verdict = .allowed
            } else {
                let warn = bucket.lastWarning.map { now - $0 >= 1000 } ?? true
                if warn { bucket.lastWarning = now }
                verdict = .limited(warn: warn)
            }
            buckets[client] = bucket
            return verdict
        }
    }

    public func forget(_ client: String) {
        _ = buckets.withLock { $0.removeValue(forKey: client) }
    }

    public var trackedClients: Int { buckets.withLock { $0.count } }
}
