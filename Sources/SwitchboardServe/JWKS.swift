import AsyncHTTPClient
import Switchboard
import Synchronization

/// The key set a `JWTVerifier` checks tokens with, replaced as a whole when the set is
/// fetched again: keys rotate without a restart, and a verification sees the old set or the new
/// one, never a mix.
public final class JWKSStore: Sendable {
    private let current = Mutex<JWKSet?>(nil)

    public init(_ set: JWKSet? = nil) { current.withLock { $0 = set } }

    public func replace(with set: JWKSet) { current.withLock { $0 = set } }

    /// The key ids of the set in force (empty before the first load).
    public var kids: [String?] { current.withLock { $0?.kids ?? [] } }

    /// Whether a set has been loaded (a loaded set may still be empty).
    public var isLoaded: Bool { current.withLock { $0 != nil } }

    func key(kid: String?, algorithm: JWTVerifier.Algorithm) -> Result<PublicKey, JWTError> {
        guard let set = current.withLock({ $0 }) else { return .failure(.unknownKey("the key set is not loaded yet")) }
        return set.key(kid: kid, algorithm: algorithm)
    }
}

/// Where a key set comes from: a file, or an HTTP(S) URL (`auth.jwt.jwks`).
public enum JWKSSource: Sendable, Equatable, CustomStringConvertible {
    case file(String)
    case url(String)

    /// A value starting with `http://` or `https://` is a URL, anything else a file path.
    public init(_ text: String) {
        let lowered = text.lowercased()
        self = lowered.hasPrefix("http://") || lowered.hasPrefix("https://") ? .url(text) : .file(text)
    }

    public var description: String {
        switch self {
        case .file(let path): path
        case .url(let url): url
        }
    }

    /// Largest key set accepted (a real one is a few KiB).
    static let maxBytes = 1 << 20

    /// Reads the set once. A file is read again each time, so a rotated file takes effect too.
    public func load(timeoutSeconds: Int64 = 10) async throws(JWTKeyError) -> JWKSet {
        switch self {
        case .file(let path):
            guard let bytes = readFile(path) else { throw JWTKeyError(message: "cannot read \(path) (\(lastErrorText()))") }
            return try JWKSet.parse(bytes)
        case .url(let url):
            let bytes: [UInt8]
            do {
                var request = HTTPClientRequest(url: url)
                request.headers.add(name: "Accept", value: "application/jwk-set+json, application/json")
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(timeoutSeconds))
                guard response.status.code == 200 else { throw JWTKeyError(message: "\(url) answered \(response.status.code)") }
                let body = try await response.body.collect(upTo: Self.maxBytes)
                bytes = Array(body.readableBytesView)
            } catch let error as JWTKeyError {
                throw error
            } catch {
                throw JWTKeyError(message: "\(url): \(error)")
            }
            return try JWKSet.parse(bytes)
        }
    }
}

/// Keeps a `JWKSStore` current: loads the source every `interval` and swaps the set in. A failed
/// load keeps the keys in force (an identity provider that is briefly down does not lock users
/// out) and is logged; the next interval tries again.
public final class JWKSRefresher: Sendable {
    public let source: JWKSSource
    public let store: JWKSStore
    public let intervalMilliseconds: Int64
    /// Fewest milliseconds between two loads for tokens with an unknown `kid`.
    public let unknownKeyMilliseconds: Int64
    private let task = Mutex<Task<Void, Never>?>(nil)
    /// When the last load for an unknown `kid` ran: `[0]` while no set was loaded yet, `[1]`
    /// once one was. Two clocks, so that a token which raced the first load (and loaded the set
    /// itself) does not hold back, for the whole interval, a key published just after.
    private let lastUnknownKeyLoad = Mutex<[ContinuousClock.Instant?]>([nil, nil])

    public init(source: JWKSSource, store: JWKSStore, intervalMilliseconds: Int64, unknownKeyMilliseconds: Int64 = 10_000) {
        self.source = source
        self.store = store
        self.intervalMilliseconds = intervalMilliseconds
        self.unknownKeyMilliseconds = unknownKeyMilliseconds
    }

    /// A token named a `kid` the set does not hold: perhaps a key published since the last load.
    /// Loads the set now, unless such a load ran within `unknownKeyMilliseconds` (so clients
    /// sending made-up kids cost the provider one request per that interval). True when a new
    /// set is in force.
    public func refreshForUnknownKey() async -> Bool {
        let now = ContinuousClock.now
        let clock = store.isLoaded ? 1 : 0
        let due = lastUnknownKeyLoad.withLock { last -> Bool in
            if let previous = last[clock], now - previous < .milliseconds(unknownKeyMilliseconds) { return false }
            last[clock] = now
            return true
        }
        guard due else { return false }
        do {
            try await refresh()
            return true
        } catch {
            return false
        }
    }

    /// Loads once and swaps the set in; throws (keeping the old set) when the load fails.
    public func refresh() async throws(JWTKeyError) {
        let set = try await source.load()
        store.replace(with: set)
    }

    /// Starts the periodic refresh (the first load at once, unless the store holds a set
    /// already); `log` gets one line per load that failed or skipped keys.
    public func start(log: @escaping @Sendable (String) -> Void) {
        let loadFirst = store.kids.isEmpty
        let started = Task { [self] in
            var first = loadFirst
            while !Task.isCancelled {
                if !first {
                    do { try await Task.sleep(for: .milliseconds(intervalMilliseconds)) } catch { return }
                }
                first = false
                do {
                    let set = try await source.load()
                    store.replace(with: set)
                    for line in set.skipped { log("jwks \(source): skipped \(line)") }
                } catch let error as JWTKeyError {
                    log("jwks \(source): \(error.message); keeping the keys in force")
                } catch {
                    log("jwks \(source): \(error); keeping the keys in force")
                }
            }
        }
        task.withLock { $0 = started }
    }

    public func stop() {
        task.withLock {
            $0?.cancel()
            $0 = nil
        }
    }
}
