import Switchboard
import SwitchboardBus
import Synchronization

/// Counters of the serve command's own hooks (on top of the library's `ServerMetrics`).
public struct ServeCounters: Sendable, Equatable {
    public var authSucceeded = 0
    /// By `AuthFailure.label`.
    public var authFailed: [String: Int] = [:]
    public var rateLimited = 0
    public var roomsDenied = 0
    public var roomsOverLimit = 0
    /// By kind: `send`, `direct`, `broadcast`, `invalid`, `other`.
    public var customEvents: [String: Int] = [:]
    public var decryptFailures = 0
    /// `refresh` outcomes (a refused one keeps the client's current expiry).
    public var refreshSucceeded = 0
    public var refreshFailed = 0

    public init() {}

    public static let eventKinds = ["send", "direct", "broadcast", "invalid", "other"]
}

/// A thread-safe `ServeCounters`.
final class ServeStats: Sendable {
    private let counters = Mutex(ServeCounters())
    func update(_ change: (inout ServeCounters) -> Void) { counters.withLock { change(&$0) } }
    var snapshot: ServeCounters { counters.withLock { $0 } }
}

/// The Prometheus text exposition format, version 0.0.4.
public enum PrometheusText {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Close codes always listed (zeros included): every code of the spec's `close_codes`;
    /// others (a client's own code echoed) appear once seen.
    static let knownCloseCodes: [UInt16] = CloseCode.allCases.map(\.code).sorted()

    /// Hooks whose latency histogram is always listed (empty until the hook first answers).
    static let latencyHooks = ["authenticate", "handshake", "validateRoom", "refresh", "rpc", "publish", "clientConnected",
                               "clientDisconnected"]

    /// The exposition; `build` adds `switchboard_build_info` (a constant 1 whose labels say
    /// which build and spec the instance runs); `process` the standard `process_*` families.
    public static func render(server: ServerMetrics, serve: ServeCounters, redis: RedisBusStats?, build: BuildInfo? = nil,
                              process: ProcessMetrics? = nil) -> String {
        var out = Writer()
        if let process {
            out.family("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.")
            out.sample("process_cpu_seconds_total", [:], number(process.cpuSeconds))
            out.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", process.residentBytes)
            out.single("process_open_fds", "gauge", "Open file descriptors.", process.openFileDescriptors)
            out.family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.")
            out.sample("process_start_time_seconds", [:], number(process.startTimeSeconds))
        }
        if let build {
            out.family("switchboard_build_info", "gauge", "Always 1; the labels name the build (version, commit, swift, spec_digest).")
            out.sample("switchboard_build_info", build.labels, 1)
        }
        out.family("switchboard_clients", "gauge", "Clients by protocol state.")
        for state in ClientState.allCases where !state.isTerminal {
            out.sample("switchboard_clients", ["state": state.specName], server.clientsByState[state.specName] ?? 0)
        }
        out.singles(server, [
            ("switchboard_connections", "gauge", "Open TCP connections, upgraded or not.", \.connections),
            ("switchboard_connections_accepted_total", "counter", "TCP connections accepted.", \.connectionsAccepted),
            ("switchboard_upgrades_total", "counter", "Successful WebSocket upgrades.", \.upgrades),
            ("switchboard_messages_received_total", "counter", "WebSocket data messages received.", \.messagesIn),
            ("switchboard_messages_sent_total", "counter", "WebSocket messages written to clients.", \.messagesOut),
            ("switchboard_received_bytes_total", "counter", "Bytes read from connections.", \.bytesIn),
            ("switchboard_sent_bytes_total", "counter", "Bytes of messages written to clients.", \.bytesOut),
            ("switchboard_bus_published_total", "counter", "Envelopes this instance published on the bus.", \.published),
        ])

        out.family("switchboard_closes_total", "counter", "Close frames sent, by close code.")
        var codes = Dictionary(uniqueKeysWithValues: knownCloseCodes.map { ("\($0)", 0) })
        for (code, count) in server.closes { codes[closeLabel(code), default: 0] += count }
        for code in codes.keys.sorted() { out.sample("switchboard_closes_total", ["code": code], codes[code]!) }

        out.singles(server, [
            ("switchboard_hook_failures_total", "counter", "Hooks that threw (callbacks, messageHandler, transformer).", \.hookFailures),
            ("switchboard_backpressure_drops_total", "counter", "Messages dropped for a client over backpressureLimit.", \.backpressureDrops),
            ("switchboard_backpressured_clients", "gauge", "Connections marked backpressured now.", \.backpressuredClients),
            ("switchboard_idle_timeouts_total", "counter", "Connections dropped after idleTimeout without a frame.", \.idleTimeouts),
            ("switchboard_upgrade_timeouts_total", "counter", "Connections that did not finish the upgrade in time.", \.upgradeTimeouts),
            ("switchboard_rooms", "gauge", "Rooms with at least one local member.", \.rooms),
            ("switchboard_users", "gauge", "Distinct authenticated users on this instance.", \.users),
        ])

        out.family("switchboard_hook_duration_seconds", "histogram",
                   "Time from a hook's call to the loop taking its answer, by hook (async hooks only).")
        for hook in latencyHooks {
            histogram(&out, "switchboard_hook_duration_seconds", ["hook": hook], server.hookLatency[hook] ?? LatencyHistogram())
        }
        out.family("switchboard_fanout_duration_seconds", "histogram",
                   "Time from a delivery entering the gateway (library API off the loop, or the bus) to its frames queued for every local recipient.")
        histogram(&out, "switchboard_fanout_duration_seconds", [:], server.fanOutLatency)

        out.family("switchboard_auth_total", "counter", "authenticate outcomes.")
        out.sample("switchboard_auth_total", ["outcome": "ok"], serve.authSucceeded)
        for label in AuthFailure.labels { out.sample("switchboard_auth_total", ["outcome": label], serve.authFailed[label] ?? 0) }
        out.family("switchboard_token_refresh_total", "counter", "refresh outcomes (a refused one keeps the current expiry).")
        out.sample("switchboard_token_refresh_total", ["outcome": "ok"], serve.refreshSucceeded)
        out.sample("switchboard_token_refresh_total", ["outcome": "refused"], serve.refreshFailed)
        out.single("switchboard_rate_limited_total", "counter", "Custom events dropped by abuse.messages_per_second.", serve.rateLimited)
        out.family("switchboard_room_joins_refused_total", "counter", "Requested rooms not joined, by reason.")
        out.sample("switchboard_room_joins_refused_total", ["reason": "policy"], serve.roomsDenied)
        out.sample("switchboard_room_joins_refused_total", ["reason": "limit"], serve.roomsOverLimit)
        out.family("switchboard_custom_events_total", "counter", "Custom events handled, by kind.")
        for kind in ServeCounters.eventKinds {
            out.sample("switchboard_custom_events_total", ["kind": kind], serve.customEvents[kind] ?? 0)
        }
        out.single("switchboard_decrypt_failures_total", "counter", "Inbound encrypted messages that did not decrypt.", serve.decryptFailures)

        if let redis {
            out.singles(redis, [
                ("switchboard_redis_connected", "gauge", "1 while every Redis subscription is confirmed.", { $0.connected ? 1 : 0 }),
                ("switchboard_redis_reconnects_total", "counter", "Redis subscriptions restored after a lost connection.", \.reconnects),
                ("switchboard_redis_published_total", "counter", "Messages Redis accepted.", \.published),
                ("switchboard_redis_dropped_total", "counter", "Messages lost (buffer full or PUBLISH rejected).", \.dropped),
                ("switchboard_redis_received_total", "counter", "Messages received from Redis.", \.received),
                ("switchboard_redis_buffered", "gauge", "Messages waiting to be published.", \.buffered),
            ])
        }
        return out.text
    }

    /// A float as Prometheus reads it: integral values without a fraction (`le="1"`).
    /// One histogram's `_bucket`, `_sum` and `_count` samples.
    private static func histogram(_ out: inout Writer, _ name: String, _ labels: [String: String],
                                  _ histogram: LatencyHistogram) {
        let buckets = histogram.cumulative
        for (index, bound) in histogram.bounds.enumerated() {
            out.sample(name + "_bucket", labels.merging(["le": number(bound)]) { $1 }, "\(buckets[index])")
        }
        out.sample(name + "_bucket", labels.merging(["le": "+Inf"]) { $1 }, "\(histogram.count)")
        out.sample(name + "_sum", labels, number(histogram.sum))
        out.sample(name + "_count", labels, "\(histogram.count)")
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value))" : "\(value)"
    }

    /// Codes outside the registered ranges share one label, so the label set stays bounded.
    static func closeLabel(_ code: UInt16) -> String {
        (1000...1015).contains(code) || (3000...4999).contains(code) ? "\(code)" : "other"
    }

    private struct Writer {
        var text = ""

        mutating func family(_ name: String, _ type: String, _ help: String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }

        mutating func sample(_ name: String, _ labels: [String: String], _ value: Int) {
            sample(name, labels, "\(value)")
        }

        mutating func sample(_ name: String, _ labels: [String: String], _ value: String) {
            text += name
            if !labels.isEmpty {
                text += "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\(escape($0.value))\"" }.joined(separator: ",") + "}"
            }
            text += " \(value)\n"
        }

        mutating func single(_ name: String, _ type: String, _ help: String, _ value: Int) {
            family(name, type, help)
            sample(name, [:], value)
        }

        /// One `single` family per row, in order, each value read off `snapshot`.
        mutating func singles<Snapshot>(_ snapshot: Snapshot,
                                        _ rows: [(name: String, type: String, help: String, value: (Snapshot) -> Int)]) {
            for row in rows { single(row.name, row.type, row.help, row.value(snapshot)) }
        }

        private func escape(_ value: String) -> String {
            var out = ""
            for character in value {
                switch character {
                case "\\": out += "\\\\"
                case "\"": out += "\\\""
                case "\n": out += "\\n"
                default: out.append(character)
                }
            }
            return out
        }
    }
}
