import Foundation
import Switchboard
import TestSupport
import Synchronization
import Testing
@testable import SwitchboardServe
#if canImport(Glibc)
import Glibc
#endif

/// The internal listener, the drain before shutdown, and the fan-out histogram.
@Suite(.serialized) struct InternalListenerTests {
    @Test func metricsMoveToTheInternalListener() async throws {
        let running = try RunningApp("internal:\n  port: 0\n")
        defer { Task { await running.stop() } }
        let internalPort = try #require(running.app.internalPort)
        #expect(internalPort != running.port)

        let metrics = try http(port: internalPort, path: "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"] == PrometheusText.contentType)
        #expect(try Exposition(metrics.body).types["switchboard_build_info"] == "gauge")
        for path in ["/livez", "/readyz", "/healthz"] {
            #expect(try http(port: internalPort, path: path).body == "ok\n")
        }
        #expect(try http("POST", port: internalPort, path: "/readyz").status == 405)
        #expect(try http(port: internalPort, path: "/ws").status == 404)
        #expect(try http(port: internalPort, path: "/").status == 404)  // no demo page here

        // internal.public defaults to health: the probes stay on the public port, /metrics leaves it.
        #expect(try http(port: running.port, path: "/metrics").status == 404)
        #expect(try http(port: running.port, path: "/readyz").body == "ok\n")
        #expect(try http(port: running.port, path: "/").status == 200)
    }

    @Test(arguments: [("all", [200, 200]), ("none", [404, 404])])
    func internalPublicSaysWhatStaysOnThePublicPort(setting: String, statuses: [Int]) async throws {
        let running = try RunningApp("internal:\n  port: 0\n  public: \(setting)\n")
        defer { Task { await running.stop() } }
        #expect(try [http(port: running.port, path: "/metrics").status, http(port: running.port, path: "/readyz").status]
                == statuses)
        #expect(try http(port: #require(running.app.internalPort), path: "/metrics").status == 200)
    }

    @Test func theInternalPortIsSetFromTheEnvironmentToo() throws {
        let config = try ConfigLoader.load(path: nil, environment: [
            "SWITCHBOARD_INTERNAL_PORT": "9090", "SWITCHBOARD_INTERNAL_HOST": "0.0.0.0",
            "SWITCHBOARD_INTERNAL_PUBLIC": "none", "SWITCHBOARD_SHUTDOWN_DRAIN_DELAY": "15s",
        ])
        #expect(config.internalListener == InternalListenerConfig(host: "0.0.0.0", port: 9090, publicEndpoints: .none))
        #expect(config.drainDelay == 15_000)
        #expect(ServeConfig().internalListener.port == nil && ServeConfig().drainDelay == 0)
        do {
            _ = try ConfigLoader.load(path: nil, environment: ["SWITCHBOARD_INTERNAL_PORT": "8080"])
            Issue.record("the public port accepted as the internal one")
        } catch {
            #expect(error.errors.map(\.description) == [
                "environment variable SWITCHBOARD_INTERNAL_PORT: internal.port: is listen.port (8080) too; the internal listener needs a port of its own",
            ])
        }
    }

    /// The router seam: a request with a body, split across writes, reaches a route whole; a
    /// body over the limit is refused before any route runs; nobody's path is a 404.
    @Test func theRouterGetsWholeRequestsWithTheirBodies() throws {
        let router = HTTPRouter(routes: [
            { call in call.path == "/echo" ? HTTPAnswerBody(text: "\(call.method) \(call.target) \(call.header("X-Test") ?? "-") "
                + String(decoding: call.body, as: UTF8.self)) : nil },
        ])
        let listener = try InternalListener(router: router)
        let port = try listener.start(host: "127.0.0.1", port: 0)
        defer { listener.stop() }

        let connection = try TCPConnection(port: UInt16(port))
        try connection.write(Array("POST /echo?x=1 HTTP/1.1\r\nHost: a\r\nX-Test: yes\r\nContent-Length: 11\r\n\r\nhello".utf8))
        try connection.write(Array(" world".utf8))
        var reply: [UInt8] = []
        while try connection.read(into: &reply, deadline: deadline(after: 5), what: "the answer") > 0 {}
        let text = String(decoding: reply, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.hasSuffix("\r\n\r\nPOST /echo?x=1 yes hello world"))

        let tooLarge = try rawHTTP(port: UInt16(port), request: "POST /echo HTTP/1.1\r\nContent-Length: \(InternalListener.maxBody + 1)\r\n\r\n")
        #expect(tooLarge.status == 413)
        #expect(try rawHTTP(port: UInt16(port), request: "GET /other HTTP/1.1\r\n\r\n").status == 404)
        // HEAD: the headers of the GET (the length of "HEAD /echo - " too), no body.
        let head = try TCPConnection(port: UInt16(port))
        try head.write(Array("HEAD /echo HTTP/1.1\r\n\r\n".utf8))
        var headReply: [UInt8] = []
        while try head.read(into: &headReply, deadline: deadline(after: 5), what: "the answer") > 0 {}
        let headText = String(decoding: headReply, as: UTF8.self)
        #expect(headText.hasPrefix("HTTP/1.1 200 OK\r\n") && headText.contains("\r\nContent-Length: 13\r\n"))
        #expect(headText.hasSuffix("\r\n\r\n"))
    }

    /// Body checks run on the head, in order, before any body byte is read: the first decision
    /// wins (a refusal is answered at once, a limit replaces the listener's own), and a request
    /// no check decides keeps the listener's limits.
    @Test func bodyChecksDecideFromTheHead() throws {
        var router = HTTPRouter(routes: [{ call in HTTPAnswerBody(text: "\(call.body.count)") }])
        router.bodyChecks = [
            { call, length, chunked in
                call.path == "/refuse" ? .refuse(HTTPAnswerBody(status: 401, reason: "Unauthorized", text: "\(length) \(chunked)")) : nil
            },
            { call, _, _ in call.path.hasPrefix("/big") || call.path == "/refuse" ? .read(limit: 2 * InternalListener.maxBody) : nil },
        ]
        let listener = try InternalListener(router: router)
        let port = UInt16(try listener.start(host: "127.0.0.1", port: 0))
        defer { listener.stop() }

        // Never read: the answer comes though the body is never sent.
        let refused = try rawHTTP(port: port, request: "POST /refuse HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", timeout: 5)
        #expect(refused.status == 401 && refused.body == "99999999 false")
        let chunked = try rawHTTP(port: port, request: "POST /refuse HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", timeout: 5)
        #expect(chunked.body == "0 true")
        // A larger limit for its paths only; chunked is still 411 where no check refuses it.
        let size = InternalListener.maxBody + 10
        let body = [UInt8](repeating: 0x61, count: size)
        let big = try rawHTTP(port: port, bytes: Array("POST /big HTTP/1.1\r\nContent-Length: \(size)\r\n\r\n".utf8) + body, timeout: 5)
        #expect(big.status == 200 && big.body == "\(size)")
        #expect(try rawHTTP(port: port, request: "POST /other HTTP/1.1\r\nContent-Length: \(size)\r\n\r\n", timeout: 5).status == 413)
        #expect(try rawHTTP(port: port, request: "POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", timeout: 5).status == 411)
    }

    /// SIGTERM's path with `shutdown.drain_delay`: at once the public port refuses new
    /// connections and /readyz (on the internal listener) answers 503, while an established
    /// client is served as before; after the delay it is closed with 1001.
    @Test func aDrainKeepsServingEstablishedClients() async throws {
        let running = try RunningApp("internal:\n  port: 0\nshutdown:\n  drain_delay: 3s\n")
        let internalPort = try #require(running.app.internalPort)
        // Client reads block: off the pool, whose threads the app's relay tasks need.
        let alice = try await newsReader(running).value

        let finished = Flag()
        let shutdown = Task {
            await running.app.shutdown()
            finished.value.store(true, ordering: .releasing)
        }
        #expect(try await eventually { try http(port: internalPort, path: "/readyz").status == 503 })
        #expect(try http(port: internalPort, path: "/readyz").body == "shutting down\n")
        #expect(try http(port: internalPort, path: "/livez").status == 200)
        #expect(try await eventually { (try? TCPConnection(port: UInt16(running.port))) == nil })

        // Still served during the drain: its own message to the room comes back.
        let heard = try await offThePool { [alice = Handed(alice)] in
            try alice.value.send("send", ["room": "news", "event": "during-drain", "data": 1])
            return try alice.value.receive(event: "during-drain") != nil
        }
        #expect(heard)
        let finishedEarly = finished.value.load(ordering: .acquiring)
        #expect(!finishedEarly)

        await shutdown.value
        let closed = try await offThePool { [alice = Handed(alice)] in try alice.value.nextMessage() == nil }
        #expect(closed)
        #expect(alice.closeCode == 1001)
        await running.stop()
    }

    /// Deliveries made through the library from another thread are timed into
    /// `switchboard_fanout_duration_seconds`.
    @Test func fanOutLatencyIsAHistogramOnMetrics() async throws {
        let running = try RunningApp()
        defer { Task { await running.stop() } }
        let alice = try await newsReader(running)
        let before = try Exposition(try http(port: running.port, path: "/metrics").body)
        let countBefore = before.samples["switchboard_fanout_duration_seconds_count"] ?? -1
        #expect(before.types["switchboard_fanout_duration_seconds"] == "histogram")
        let received = try await offThePool {
            try (0..<5).map { index in
                try running.app.server.sendToRoom("news", event: "headline", data: .number(JSONNumber(index)))
                return try alice.value.receive(event: "headline")
            }
        }
        #expect(received == (0..<5).map { .number(JSONNumber($0)) })
        let after = try Exposition(try http(port: running.port, path: "/metrics").body)
        let count = try #require(after.samples["switchboard_fanout_duration_seconds_count"])
        #expect(count >= countBefore + 5)
        #expect(after.samples["switchboard_fanout_duration_seconds_bucket{le=\"+Inf\"}"] == count)
        #expect((after.samples["switchboard_fanout_duration_seconds_sum"] ?? 0) > 0)
        let smallest = try #require(after.samples["switchboard_fanout_duration_seconds_bucket{le=\"0.0001\"}"])
        #expect(smallest <= count)
    }

    /// Alice, logged in and in room `news` (her reads block: made off the concurrency pool).
    private func newsReader(_ running: RunningApp) async throws -> Handed<WSClient> {
        try await offThePool {
            let (alice, _) = try running.login("alice-token")
            try running.join(alice, "news")
            return Handed(alice)
        }
    }

    static let redisServer = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A message from the bus (`switchboard emit` through Redis) is timed too.
    @Test(.enabled(if: redisServer != nil, "redis-server is not installed"))
    func busDeliveriesAreTimed() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let running = try RunningApp(environment: ["SWITCHBOARD_REDIS_URL": redis.url])
        defer { Task { await running.stop() } }
        let alice = try await newsReader(running)
        let before = try Exposition(try http(port: running.port, path: "/metrics").body)
        let arguments = ["--redis", redis.url, "--type", "room", "--target", "news", "--event", "headline", "--data", "7"]
        #expect(EmitCommand.main(arguments, context: CLIContext(environment: [:], out: { _ in })) == 0)
        #expect(try await offThePool { try alice.value.receive(event: "headline") } == 7)
        let after = try Exposition(try http(port: running.port, path: "/metrics").body)
        let counted = { (metrics: Exposition) in metrics.samples["switchboard_fanout_duration_seconds_count"] ?? -1 }
        #expect(counted(after) >= counted(before) + 1)
    }
}

private final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}

/// A value handed to one thread at a time (a test client moving to `offThePool` and back).
private final class Handed<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
