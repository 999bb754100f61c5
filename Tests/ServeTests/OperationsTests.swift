import TestSupport
import Foundation
import Switchboard
import Testing
@testable import SwitchboardServe

/// What an operator's probes and scrapers see of `switchboard serve`.
@Suite(.serialized) struct OperationsTests {
    /// Redis down: not ready (out of the load balancer) but live (no restart); back when it returns.
    @Test
    func readyzFollowsRedisAndLivezStays() async throws {
        let redis = try RedisServer()
        let running = try RunningApp(environment: ["SWITCHBOARD_REDIS_URL": redis.url])
        defer { Task { await running.stop() } }
        #expect(try http(port: running.port, path: "/readyz").status == 200)
        #expect(try http(port: running.port, path: "/livez").status == 200)

        redis.stop()
        #expect(try await eventually { try http(port: running.port, path: "/readyz").status == 503 })
        let down = try http(port: running.port, path: "/readyz")
        #expect(down.status == 503 && down.body == "redis not connected\n")
        let live = try http(port: running.port, path: "/livez")
        #expect(live.status == 200 && live.body == "ok\n")
        #expect(try http(port: running.port, path: "/healthz").status == 503)

        try redis.start()
        #expect(try await eventually { try http(port: running.port, path: "/readyz").status == 200 })
        #expect(try http(port: running.port, path: "/livez").status == 200)
    }

    /// `emit` reports Redis's PUBLISH reply: the gateway's subscription received it.
    @Test
    func emitReportsItsSubscribers() async throws {
        let redis = try RedisServer()
        let arguments = ["emit", "--type", "broadcast", "--event", "e", "--data", "1"]
        let alone = try await switchboard(arguments, environment: ["SWITCHBOARD_REDIS_URL": redis.url])
        #expect(alone.status == 0 && alone.out == "ws:broadcast: received by 0 Redis subscribers\n")

        let running = try RunningApp(environment: ["SWITCHBOARD_REDIS_URL": redis.url])
        defer { Task { await running.stop() } }
        let heard = try await switchboard(arguments, environment: ["SWITCHBOARD_REDIS_URL": redis.url])
        #expect(heard.status == 0 && heard.out == "ws:broadcast: received by 1 Redis subscriber\n")
    }

    @Test func livezAndReadyzAnswerWithoutRedis() async throws {
        let running = try RunningApp()
        #expect(try http(port: running.port, path: "/livez").body == "ok\n")
        #expect(try http(port: running.port, path: "/readyz").body == "ok\n")
        #expect(try http("POST", port: running.port, path: "/readyz").status == 405)
        await running.stop()
        #expect(running.app.healthy.ok == false)
    }

    @Test func theDemoPageCanBeSwitchedOff() async throws {
        let off = try RunningApp("http:\n  demo_page: false\n")
        #expect(try http(port: off.port, path: "/").status == 404)
        #expect(try http(port: off.port, path: "/index.html").status == 404)
        #expect(try http(port: off.port, path: "/livez").status == 200)
        await off.stop()
        let on = try RunningApp()
        #expect(try http(port: on.port, path: "/").status == 200)
        await on.stop()
        // The production example keeps it off.
        let production = try ConfigLoader.load(path: repoRoot + "/config/production.yaml", environment: [:])
        #expect(production.demoPage == false)
        #expect(try ConfigLoader.load(path: nil, environment: ["SWITCHBOARD_HTTP_DEMO_PAGE": "false"]).demoPage == false)
    }

    @Test func metricsExportTheBuild() async throws {
        let running = try RunningApp()
        defer { Task { await running.stop() } }
        let metrics = try Exposition(try http(port: running.port, path: "/metrics").body)
        let build = running.app.build
        let series = "switchboard_build_info{commit=\"\(build.commit ?? "unknown")\",spec_digest=\"\(TransitionTable.specDigest)\","
            + "swift=\"\(build.swiftVersion)\",version=\"\(build.version)\"}"
        #expect(metrics.samples[series] == 1)
        #expect(metrics.types["switchboard_build_info"] == "gauge")
    }
}
