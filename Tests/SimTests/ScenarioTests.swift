// Named worlds written by hand: each pins one promise of PROTOCOL.md under a fault, and the
// reference model checks everything else in the same run.
import Switchboard
import SwitchboardSim
import Testing

@Suite("Simulation scenarios")
struct ScenarioTests {
    /// A quiet world: generous timeouts, a fast network, clients that leave at the end.
    static func world(seed: UInt64, servers: Int = 1, duration: Int64 = 3000) -> SimConfig {
        var config = SimConfig(seed: seed)
        config.serverCount = servers
        config.duration = duration
        config.options.authTimeout = 2001
        config.network.latency = 1...3
        config.bus.delay = 1...5
        config.settle = 12000
        return config
    }

    static func client(_ server: Int, at time: Int64, _ actions: [(Int64, ClientAction)]) -> ClientPlan {
        var plan = ClientPlan(server: server, connectAt: time)
        plan.actions = actions.map { TimedAction(at: $0.0, $0.1) }
        return plan
    }

    static func ok(_ user: String?, latency: Int64 = 5) -> ClientAction {
        .authenticate(AuthScript(.ok(user: user), latency: latency))
    }

    static func check(_ report: SimReport) {
        #expect(report.passed, Comment(rawValue: report.failureText))
    }

    @Test("A hook's answer for a client that already left is dropped")
    func answerAfterTheClientLeft() async {
        var config = Self.world(seed: 101)
        config.hooks.latency = 300...300
        config.clients = [
            // authenticateFn answers at ~410; the client is gone at ~100 (reset) or ~150 (close).
            Self.client(0, at: 1, [(5, Self.ok("u0", latency: 400)), (100, .reset)]),
            Self.client(0, at: 1, [(5, Self.ok("u1", latency: 400)), (150, .close(1000))]),
            // validateRoomFn answers 300 ms after the join; the client resets 50 ms after it.
            Self.client(0, at: 1, [(5, Self.ok("u2")), (200, .join(["r1"])), (250, .reset)]),
            // Someone who stays sees every room message, and nothing of the others.
            Self.client(0, at: 1, [(5, Self.ok("u3")), (60, .join(["r1"])), (900, .app(.toRoom("r1"), pad: 0))]),
        ]
        let report = await Simulation.run(config)
        Self.check(report)
        #expect(report.stats.staleAnswers == 3, "stale answers: \(report.stats)")
        #expect(report.clients[0].sawConnected == false && report.clients[0].resetByClient)
        #expect(report.clients[1].sawConnected == false && report.clients[1].closeCode == .some(1000))
        #expect(report.clients[3].tagsRead == ["c3/1"])
        #expect(report.servers.allSatisfy { $0.kernelClients == 0 && $0.connections == 0 })
    }

    @Test("A Redis outage loses exactly the messages published during it")
    func busOutage() async {
        var config = Self.world(seed: 102, servers: 2, duration: 3500)
        config.bus.outages = [1000..<2000]
        config.clients = [
            // Sender on S0: broadcasts before, during and after the outage, and to a room.
            Self.client(0, at: 1, [(5, Self.ok("u0")),
                                   (501, .app(.broadcast, pad: 0)), (1501, .app(.broadcast, pad: 0)),
                                   (1601, .app(.toRoom("r2"), pad: 0)), (2501, .app(.broadcast, pad: 0))]),
            // A receiver on the other instance and one next to the sender.
            Self.client(1, at: 1, [(5, Self.ok("u1")), (50, .join(["r2"]))]),
            Self.client(0, at: 1, [(5, Self.ok("u2")), (50, .join(["r2"]))]),
        ]
        let report = await Simulation.run(config)
        Self.check(report)
        #expect(report.stats.busLost == 2, "lost: \(report.stats)")
        #expect(report.clients[1].tagsRead == ["c0/1", "c0/4"], "remote: \(report.clients[1].tagsRead)")
        #expect(report.clients[2].tagsRead == ["c0/1", "c0/2", "c0/3", "c0/4"], "local: \(report.clients[2].tagsRead)")
    }

    @Test("Bus messages that arrive together are one read: delivered in order, their fan-outs written together")
    func busMessagesReadTogether() async {
        var config = Self.world(seed: 108, servers: 2, duration: 3000)
        // One delay for every message: those published in one instant arrive in one.
        config.bus.delay = 5...5
        config.clients = [
            // Three broadcasts and a room message in one chunk: published in one event.
            Self.client(0, at: 1, [(5, Self.ok("u0")), (501, .app(.broadcast, pad: 0)), (501, .app(.broadcast, pad: 0)),
                                   (501, .app(.toRoom("r2"), pad: 0)), (501, .app(.broadcast, pad: 0))]),
            Self.client(1, at: 1, [(5, Self.ok("u1")), (50, .join(["r2"]))]),
            Self.client(1, at: 1, [(5, Self.ok("u2"))]),
        ]
        let report = await Simulation.run(config)
        Self.check(report)
        #expect(report.stats.busBatched >= 2, "no read carried several messages: \(report.stats)")
        #expect(report.clients[1].tagsRead == ["c0/1", "c0/2", "c0/3", "c0/4"], "member: \(report.clients[1].tagsRead)")
        #expect(report.clients[2].tagsRead == ["c0/1", "c0/2", "c0/4"], "not a member: \(report.clients[2].tagsRead)")
    }

    @Test("A stalled client is closed with 1008 under closeOnBackpressureLimit; the others keep receiving")
    func stalledClientClosedOnBackpressure() async {
        var config = Self.world(seed: 103, duration: 3000)
        config.options.backpressureLimit = 4096
        config.options.closeOnBackpressureLimit = true
        config.network.window = 2048...2048
        config.network.drainPerTick = 1024...1024
        var sends: [(Int64, ClientAction)] = [(5, Self.ok("u0"))]
        for step in 0..<60 { sends.append((301 + 20 * Int64(step), .app(.broadcast, pad: 800))) }
        config.clients = [
            Self.client(0, at: 1, sends),
            // Stops reading at 200 for 1.2 s: shorter than the close linger, so it reads the 1008.
            Self.client(0, at: 1, [(5, Self.ok("u1")), (200, .stall(1200))]),
            Self.client(0, at: 1, [(5, Self.ok("u2"))]),
        ]
        let report = await Simulation.run(config)
        Self.check(report)
        let stalled = report.clients[1]
        #expect(stalled.closeCode == .some(1008) && stalled.closeReason == "Backpressure limit exceeded",
                "stalled client: \(String(describing: stalled.closeCode)) \(stalled.closeReason ?? "")")
        #expect(stalled.wentOverLimit)
        #expect(stalled.tagsRead.count < 60)
        #expect(report.clients[2].tagsRead.count == 60, "the reader got \(report.clients[2].tagsRead.count) of 60")
        #expect(report.clients[0].tagsRead.count == 60, "the sender got \(report.clients[0].tagsRead.count) of 60")
    }

    @Test("Shutdown while clients authenticate: 1001 for every client, 503 mid-upgrade, refusal after")
    func shutdownMidAuthentication() async {
        var config = Self.world(seed: 104, servers: 2, duration: 2000)
        config.actions = [WorldAction(at: 301, .shutdown(server: 0))]
        var slowUpgrade = ClientPlan(server: 0, connectAt: 101)
        slowUpgrade.upgrade = .slow
        config.clients = [
            Self.client(0, at: 1, [(201, Self.ok("u0", latency: 500))]),  // answer due at ~700
            Self.client(0, at: 1, [(5, Self.ok("u1"))]),                   // authenticated
            Self.client(0, at: 1, []),                                      // never authenticates
            slowUpgrade,                                                    // upgrade half sent
            Self.client(0, at: 501, [(510, Self.ok("u4"))]),               // after the shutdown
            Self.client(1, at: 1, [(5, Self.ok("u5")), (601, .app(.broadcast, pad: 0))]),  // the other instance
        ]
        let report = await Simulation.run(config)
        Self.check(report)
        for index in 0...2 {
            #expect(report.clients[index].closeCode == .some(1001), "c\(index): \(String(describing: report.clients[index].closeCode))")
        }
        #expect(report.clients[0].sawConnected == false)
        #expect(report.clients[1].sawConnected == true)
        #expect(report.clients[3].httpStatus == 503)
        #expect(report.clients[4].refused)
        #expect(report.stats.staleAnswers >= 1)
        #expect(report.clients[5].tagsRead == ["c5/1"])
    }

    /// Regression, found by the model: the kernel's lastActivity moves only when a message is
    /// complete, so a client whose frames keep coming (a message sent in slow fragments) is
    /// closed with 4002 although PROTOCOL.md 1 says every frame counts as activity.
    @Test("Frames of a fragmented message count as activity (no 4002 while they keep coming)")
    func slowFragmentsAreActivity() async {
        var config = Self.world(seed: 105, duration: 3500)
        config.options.heartbeatInterval = 200
        config.options.heartbeatTimeout = 1000
        config.clients = [
            Self.client(0, at: 1, [(5, Self.ok("u0")),
                                   (501, .fragment(#"{"event":"heart"#, last: false)),
                                   (1301, .fragment("be", last: false)),
                                   (2101, .fragment(#"at"}"#, last: true)),
                                   (2901, .heartbeat)]),
        ]
        let report = await Simulation.run(config)
        Self.check(report)
        #expect(report.clients[0].closeCode == .some(1000), "closed with \(String(describing: report.clients[0].closeCode))")
    }

    /// Regression (found by the seed sweep): c31 sends a fragmented message whose first frame
    /// arrives at 3227; the sweep at 3240 closed it with 4002 before fragments counted as activity.
    @Test("Seed 2431: 4002 right after a message's first fragment arrived")
    func seed2431() async {
        let report = await Simulation.run(seed: 2431)
        #expect(report.passed, Comment(rawValue: report.failureText))
    }

    @Test("The same seed replays the same run")
    func replayIsDeterministic() async {
        let first = await Simulation.run(seed: 19)
        let second = await Simulation.run(seed: 19)
        #expect(first.traceLines > 1000)
        #expect(first.traceHash == second.traceHash)
        #expect(first.traceLines == second.traceLines)
        #expect(first.problems == second.problems)
        let other = await Simulation.run(seed: 20)
        #expect(other.traceHash != first.traceHash)
    }
}
