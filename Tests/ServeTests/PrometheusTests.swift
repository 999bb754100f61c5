import Glibc
@testable import Switchboard
import SwitchboardBus
import TestSupport
import Testing
@testable import SwitchboardServe

/// A parsed exposition: samples keyed by `name{sorted labels}`, and each family's type.
struct Exposition {
    var samples: [String: Double] = [:]
    var types: [String: String] = [:]
    var helps: [String: String] = [:]

    /// Parses Prometheus text format 0.0.4, checking its rules as it goes.
    init(_ text: String) throws {
        guard text.hasSuffix("\n") else { throw TestFailure("the exposition must end with a newline") }
        func validName(_ name: some StringProtocol) -> Bool {
            guard let first = name.first, first.isLetter || first == "_" || first == ":" else { return false }
            return name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" || $0 == ":" }
        }
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ", maxSplits: 3)
                guard parts.count == 4, validName(parts[2]) else { throw TestFailure("bad comment: \(line)") }
                let name = String(parts[2])
                if parts[1] == "HELP" {
                    guard helps[name] == nil, types[name] == nil else { throw TestFailure("HELP after TYPE or twice: \(name)") }
                    helps[name] = String(parts[3])
                } else {
                    guard types[name] == nil, ["counter", "gauge", "histogram"].contains(parts[3]) else { throw TestFailure("bad TYPE: \(line)") }
                    types[name] = String(parts[3])
                }
                continue
            }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw TestFailure("bad sample: \(line)")
            }
            let series = line[..<space]
            let name = series.prefix { $0 != "{" }
            // A histogram's samples carry a suffix on the family's name.
            var family = String(name)
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                let base = String(name.dropLast(suffix.count))
                if types[base] == "histogram" { family = base }
            }
            guard validName(name), let type = types[family], helps[family] != nil else {
                throw TestFailure("sample before its HELP/TYPE: \(line)")
            }
            if type == "counter" && !name.hasSuffix("_total") { throw TestFailure("counter without _total: \(name)") }
            var key = String(name)
            if series.count > name.count {
                guard series.hasSuffix("}") else { throw TestFailure("bad labels: \(line)") }
                let body = series.dropFirst(name.count + 1).dropLast()
                var labels: [String] = []
                for pair in body.split(separator: ",") {
                    guard let equals = pair.firstIndex(of: "="), validName(pair[..<equals]),
                          pair[pair.index(after: equals)...].hasPrefix("\""), pair.hasSuffix("\"") else {
                        throw TestFailure("bad label: \(pair)")
                    }
                    labels.append(String(pair))
                }
                key += "{" + labels.sorted().joined(separator: ",") + "}"
            }
            guard samples[key] == nil else { throw TestFailure("duplicate series: \(key)") }
            samples[key] = value
        }
    }
}

@Suite struct PrometheusTests {
    private func metrics() -> ServerMetrics {
        var metrics = ServerMetrics()
        metrics.clientsByState = ["authenticated": 7, "unauthorized": 2]
        metrics.connections = 10
        metrics.connectionsAccepted = 40
        metrics.upgrades = 30
        metrics.messagesIn = 100
        metrics.messagesOut = 250
        metrics.bytesIn = 9000
        metrics.bytesOut = 12000
        metrics.published = 5
        metrics.backpressureDrops = 3
        metrics.backpressuredClients = 1
        metrics.hookFailures = 2
        metrics.closes = [4003: 4, 1001: 6, 1234: 1, 7: 2]
        metrics.rooms = 12
        metrics.users = 6
        return metrics
    }

    @Test func parsesBackWithTheSameValues() throws {
        var serve = ServeCounters()
        serve.authSucceeded = 9
        serve.authFailed = ["jwt_expired": 2, "unknown_token": 1]
        serve.rateLimited = 4
        serve.roomsDenied = 5
        serve.customEvents = ["send": 8]
        let text = PrometheusText.render(server: metrics(), serve: serve, redis: nil)
        let parsed = try Exposition(text)
        #expect(parsed.samples["switchboard_clients{state=\"authenticated\"}"] == 7)
        #expect(parsed.samples["switchboard_clients{state=\"unauthorized\"}"] == 2)
        #expect(parsed.samples["switchboard_clients{state=\"authenticating\"}"] == 0)
        #expect(parsed.samples["switchboard_clients{state=\"handshaking\"}"] == 0)
        #expect(parsed.samples["switchboard_connections"] == 10)
        #expect(parsed.samples["switchboard_messages_received_total"] == 100)
        #expect(parsed.samples["switchboard_messages_sent_total"] == 250)
        #expect(parsed.samples["switchboard_sent_bytes_total"] == 12000)
        #expect(parsed.samples["switchboard_backpressure_drops_total"] == 3)
        #expect(parsed.samples["switchboard_backpressured_clients"] == 1)
        #expect(parsed.samples["switchboard_hook_failures_total"] == 2)
        #expect(parsed.samples["switchboard_closes_total{code=\"4003\"}"] == 4)
        #expect(parsed.samples["switchboard_closes_total{code=\"1001\"}"] == 6)
        #expect(parsed.samples["switchboard_closes_total{code=\"4001\"}"] == 0)
        #expect(parsed.samples["switchboard_closes_total{code=\"other\"}"] == 3)
        #expect(parsed.samples["switchboard_closes_total{code=\"1234\"}"] == nil)
        #expect(parsed.samples["switchboard_auth_total{outcome=\"ok\"}"] == 9)
        #expect(parsed.samples["switchboard_auth_total{outcome=\"jwt_expired\"}"] == 2)
        #expect(parsed.samples["switchboard_auth_total{outcome=\"jwt_signature\"}"] == 0)
        #expect(parsed.samples["switchboard_rate_limited_total"] == 4)
        #expect(parsed.samples["switchboard_room_joins_refused_total{reason=\"policy\"}"] == 5)
        #expect(parsed.samples["switchboard_custom_events_total{kind=\"send\"}"] == 8)
        #expect(parsed.types["switchboard_clients"] == "gauge")
        #expect(parsed.types["switchboard_closes_total"] == "counter")
        #expect(!text.contains("redis"))
    }

    @Test func redisFamiliesWhenARedisBusIsUsed() throws {
        let redis = RedisBusStats(connected: true, reconnects: 2, published: 50, dropped: 1, received: 70, buffered: 3)
        let parsed = try Exposition(PrometheusText.render(server: ServerMetrics(), serve: ServeCounters(), redis: redis))
        #expect(parsed.samples["switchboard_redis_connected"] == 1)
        #expect(parsed.samples["switchboard_redis_reconnects_total"] == 2)
        #expect(parsed.samples["switchboard_redis_dropped_total"] == 1)
        #expect(parsed.samples["switchboard_redis_buffered"] == 3)
    }

    @Test func labelSetsStayBounded() throws {
        var wild = metrics()
        for code in UInt16(0)...UInt16(999) { wild.closes[code] = 1 }
        for code in UInt16(5000)...UInt16(6000) { wild.closes[code] = 1 }
        var serve = ServeCounters()
        serve.authFailed = ["made_up": 1]
        let parsed = try Exposition(PrometheusText.render(server: wild, serve: serve, redis: nil))
        let closeSeries = parsed.samples.keys.filter { $0.hasPrefix("switchboard_closes_total") }
        #expect(closeSeries.count == PrometheusText.knownCloseCodes.count + 1)
        // 1234, 0...999 (7 included) and 5000...6000 share "other".
        let other: Double = 1 + 1000 + 1001
        #expect(parsed.samples["switchboard_closes_total{code=\"other\"}"] == other)
        #expect(!parsed.samples.keys.contains { $0.contains("made_up") })
    }

    @Test func processMetricsArePlausible() throws {
        let process = try #require(ProcessMetrics.read())
        #expect(process.residentBytes > 1 << 20)
        #expect(process.openFileDescriptors >= 3)
        #expect(process.cpuSeconds > 0)
        let now = Double(time(nil))
        #expect(process.startTimeSeconds <= now + 1)
        #expect(process.startTimeSeconds > now - 86_400)

        let parsed = try Exposition(PrometheusText.render(server: ServerMetrics(), serve: ServeCounters(), redis: nil,
                                                          process: process))
        #expect(parsed.samples["process_resident_memory_bytes"] == Double(process.residentBytes))
        #expect(parsed.samples["process_open_fds"] == Double(process.openFileDescriptors))
        #expect(parsed.samples["process_cpu_seconds_total"] == process.cpuSeconds)
        #expect(parsed.samples["process_start_time_seconds"] == process.startTimeSeconds)
        #expect(parsed.types["process_cpu_seconds_total"] == "counter")
    }

    @Test func hookLatencyIsAPrometheusHistogram() throws {
        var server = ServerMetrics()
        var authenticate = LatencyHistogram()
        authenticate.record(seconds: 0.05)
        authenticate.record(seconds: 0.2)
        server.hookLatency["authenticate"] = authenticate
        let parsed = try Exposition(PrometheusText.render(server: server, serve: ServeCounters(), redis: nil))
        let name = "switchboard_hook_duration_seconds"
        #expect(parsed.types[name] == "histogram")
        #expect(parsed.samples["\(name)_bucket{hook=\"authenticate\",le=\"0.025\"}"] == 0)
        #expect(parsed.samples["\(name)_bucket{hook=\"authenticate\",le=\"0.05\"}"] == 1)
        #expect(parsed.samples["\(name)_bucket{hook=\"authenticate\",le=\"0.25\"}"] == 2)
        #expect(parsed.samples["\(name)_bucket{hook=\"authenticate\",le=\"1\"}"] == 2)
        #expect(parsed.samples["\(name)_bucket{hook=\"authenticate\",le=\"+Inf\"}"] == 2)
        #expect(parsed.samples["\(name)_count{hook=\"authenticate\"}"] == 2)
        #expect(abs(parsed.samples["\(name)_sum{hook=\"authenticate\"}"]! - 0.25) < 1e-9)
        // Hooks not yet called are listed with zeros.
        #expect(parsed.samples["\(name)_count{hook=\"validateRoom\"}"] == 0)
    }
}
