import Switchboard

extension SimConfig {
    /// Rooms the simulated clients use: plain, denied by the app's validateRoomFn, and names the
    /// protocol's filter drops before the hook sees them.
    static let roomPool = ["r0", "r1", "r2", "r3", "deny-a", "ws:reserved", "", String(repeating: "x", count: 257)]
    static let userPool = (0..<8).map { "u\($0)" }

    /// A whole world drawn from `seed`: counts, timeouts, latencies, fault rates ("swarm testing":
    /// every seed also draws how hostile its world is), then every client's plan.
    ///
    /// Each server's event loops are drawn from `loops` with a generator of their own, so a
    /// seed draws the same world whatever the range, but for its loops. `maxClients`,
    /// `maxDuration` and `fanOut` (about how many broadcast deliveries a run makes) cut a world
    /// small, its clients' plans drawn for the cut, for suites that run many seeds.
    public static func swarm(seed: UInt64, loops: ClosedRange<Int> = 1...3, maxClients: Int = .max,
                             maxDuration: Int64 = .max, fanOut: Double = 6000) -> SimConfig {
        var r = SimRandom(seed: seed, domain: 1)
        var config = SimConfig(seed: seed)
        config.serverCount = [1, 2, 2, 3, 3][r.int(0...4)]
        var loopRNG = SimRandom(seed: seed, domain: 13)
        config.loops = (0..<config.serverCount).map { _ in loopRNG.int(loops) }
        config.handOffDelay = 0...loopRNG.int64(0...8)
        let drawnCount = switch r.weighted([0.3, 0.45, 0.25]) {
        case 0: r.int(1...10)
        case 1: r.int(11...60)
        default: r.int(61...200)
        }
        let clientCount = min(drawnCount, maxClients)
        config.duration = min(r.int64(2000...9000), maxDuration)

        var options = ServerOptions()
        options.authTimeout = r.int64(200...2500)
        options.heartbeatInterval = r.int64(100...1500)
        options.heartbeatTimeout = clientCount > 50 ? r.int64(2500...8000) : r.int64(300...6000)
        options.idleTimeout = r.chance(0.5) ? r.int64(1500...6000) : 60000
        options.sendPings = r.chance(0.85)
        options.upgradeTimeout = r.int64(500...4000)
        options.backpressureLimit = r.chance(0.5) ? 1 << 20 : r.int(2048...65536)
        options.closeOnBackpressureLimit = r.chance(0.35)
        options.requireEncryption = r.chance(0.2)
        options.maxPayloadLength = r.chance(0.7) ? 131_072 : r.int(2048...16384)
        options.shutdownBatchSize = r.chance(0.6) ? 500 : r.int(1...20)
        options.shutdownGrace = r.int64(1000...4000)
        switch r.weighted([0.7, 0.15, 0.15]) {
        case 0: break
        case 1: options.defaultRooms = ["lobby"]
        default: options.defaultRooms = []
        }
        config.options = options

        config.hooks.validateRoomConfigured = r.chance(0.85)
        config.hooks.handshakeConfigured = r.chance(0.85)
        config.hooks.validateThrowRate = r.chance(0.5) ? 0 : r.unit() * 0.3
        config.hooks.callbackThrowRate = r.chance(0.5) ? 0 : r.unit() * 0.3
        config.hooks.latency = 1...r.int64(1...200)

        config.network.latency = 1...r.int64(1...40)
        config.network.splitChance = r.unit() * 0.6
        config.network.tick = r.int64(1...5)
        config.network.drainPerTick = r.chance(0.3) ? 512...4096 : 8192...65536
        config.network.window = r.chance(0.3) ? 2048...16384 : 32768...262_144

        config.bus.delay = 1...r.int64(1...60)
        if r.chance(0.4) {
            for _ in 0..<r.int(1...3) {
                let start = r.int64(0...config.duration)
                config.bus.outages.append(start..<(start + r.int64(50...max(60, config.duration / 3))))
            }
        }

        var rates = BehaviourRates()
        rates.noAuth = r.unit() * 0.1
        rates.reject = r.unit() * 0.2
        rates.falseValue = r.unit() * 0.08
        rates.fail = r.unit() * 0.12
        rates.handshakeReject = r.unit() * 0.15
        rates.handshakeFail = r.unit() * 0.1
        rates.latencyMode = r.weighted([0.4, 0.4, 0.2])
        rates.noise = r.unit() * 0.5
        rates.stall = r.chance(0.5) ? 0 : r.unit() * 0.3
        rates.violation = r.chance(0.7) ? 0 : r.unit() * 0.06
        rates.badUpgrade = r.chance(0.7) ? 0 : r.unit() * 0.08
        rates.lazy = r.unit() * 0.4
        rates.leaveEarly = r.unit() * 0.6
        rates.binary = r.chance(0.5) ? 0 : r.unit() * 0.3
        rates.fragment = r.chance(0.5) ? 0 : r.unit() * 0.3
        rates.padMax = [0, 64, 512, 4096][r.weighted([0.3, 0.3, 0.25, 0.15])]
        // One world in six is a slow-consumer world: small buffers, stalls and big messages.
        if r.chance(0.16) {
            config.options.backpressureLimit = r.int(2048...16384)
            config.options.closeOnBackpressureLimit = r.chance(0.5)
            config.network.window = 2048...8192
            config.network.drainPerTick = 512...2048
            rates.stall = 0.3 + r.unit() * 0.4
            rates.padMax = r.chance(0.5) ? 512 : 2048
        }
        rates.actions = clientCount > 100 ? r.int(0...6) : (clientCount > 30 ? r.int(2...12) : r.int(4...30))
        // Fan-out budget: about this many broadcast deliveries per run.
        rates.broadcastsPerClient = fanOut / Double(clientCount * clientCount)
        rates.clientCount = clientCount

        for index in 0..<clientCount {
            config.clients.append(drawClient(index, seed: seed, config: config, rates: rates))
        }

        if config.serverCount > 1, r.chance(0.2) {
            let at = r.int64(config.duration * 3 / 10...config.duration * 9 / 10) | 1
            config.actions.append(WorldAction(at: at, .shutdown(server: r.int(0...(config.serverCount - 1)))))
        }
        for _ in 0..<r.int(0...6) {
            let at = r.int64(1...config.duration) | 1
            let call: AppCall = switch r.int(0...6) {
            case 0: .broadcast(exclude: r.int(0...3))
            case 1: .toRoom(r.pick(["r0", "r1", "ws-default"]), exclude: r.int(0...2))
            case 2: .toUser(r.pick(userPool))
            case 3: .toClient(r.int(0...(clientCount - 1)))
            case 4: .send(destination: r.chance(0.5) ? nil : r.pick(["r0", "r2"]))
            case 5: .publishBroadcast(exclude: r.int(0...3))
            default: .publishRoom(r.pick(["r1", "r3"]), exclude: r.int(0...2))
            }
            config.actions.append(WorldAction(at: at, .app(server: r.int(0...(config.serverCount - 1)), call)))
        }
        config.ending = r.chance(0.3) ? .shutdown : .clientsLeave
        config.normalize()
        config.settle = config.defaultSettle(maxHookLatency: 4 * config.options.authTimeout + 200)
        return config
    }

    /// Enough virtual time after `duration` for every timer, hook, linger and grace to run out.
    public func defaultSettle(maxHookLatency: Int64) -> Int64 {
        let sweep = max(options.heartbeatInterval, max(250, min(options.idleTimeout / 4, options.upgradeTimeout / 2)))
        let stall = clients.flatMap(\.actions).reduce(Int64(0)) { longest, timed in
            if case .stall(let length) = timed.action { return max(longest, length) }
            return longest
        }
        return 3 * options.authTimeout + 2 * maxHookLatency + options.upgradeTimeout + 2 * sweep
            + network.linger + options.shutdownGrace + stall + 2 * network.latency.upperBound + 3000
    }

    struct BehaviourRates {
        var noAuth = 0.0, reject = 0.0, falseValue = 0.0, fail = 0.0
        var handshakeReject = 0.0, handshakeFail = 0.0
        var latencyMode = 0
        var noise = 0.0, stall = 0.0, violation = 0.0, badUpgrade = 0.0, lazy = 0.0, leaveEarly = 0.0
        var binary = 0.0, fragment = 0.0
        var padMax = 0
        var actions = 0
        var broadcastsPerClient = 0.0
        var clientCount = 1
    }

    static func drawClient(_ index: Int, seed: UInt64, config: SimConfig, rates: BehaviourRates) -> ClientPlan {
        var r = SimRandom(seed: seed, domain: 2, index: UInt64(index))
        let options = config.options
        var plan = ClientPlan(server: r.int(0...(config.serverCount - 1)), connectAt: r.int64(0...(config.duration * 6 / 10)))
        plan.binaryChance = rates.binary
        plan.fragmentChance = rates.fragment
        plan.pipelines = r.chance(0.25)
        if r.chance(rates.badUpgrade) {
            plan.upgrade = r.pick([.slow, .badVersion, .badKey, .plainHTTP])
            return plan
        }
        var t = plan.connectAt + r.int64(0...30)
        func add(_ action: ClientAction) { plan.actions.append(TimedAction(at: t, action)) }
        if r.chance(rates.noise) {
            for _ in 0..<r.int(1...2) {
                t += r.int64(0...20)
                add(r.pick([.invalidJSON, .custom("hello"), .join(["r1"]), .heartbeat, .noEvent("null"),
                            .noEvent(#"{"event":""}"#), .noEvent("[1]"), .leave(["r1"]), .app(.echo, pad: 0)]))
            }
        }
        let latency: (inout SimRandom) -> Int64 = { r in
            switch rates.latencyMode {
            case 0: r.int64(1...20)
            case 1: r.int64(1...options.authTimeout)
            default: r.chance(0.12) ? r.int64(options.authTimeout...(4 * options.authTimeout)) : r.int64(1...50)
            }
        }
        var connectedBy = t
        if !r.chance(rates.noAuth) {
            t += r.int64(0...20)
            let roll = r.unit()
            let outcome: AuthScript.Outcome =
                if roll < rates.reject { .reject }
                else if roll < rates.reject + rates.falseValue { .falseValue }
                else if roll < rates.reject + rates.falseValue + rates.fail { .fail }
                else { .ok(user: r.chance(0.2) ? nil : r.pick(userPool)) }
            var script = AuthScript(outcome, latency: latency(&r))
            let hsRoll = r.unit()
            script.handshake = hsRoll < rates.handshakeReject ? .reject : (hsRoll < rates.handshakeReject + rates.handshakeFail ? .fail : .ok)
            script.handshakeLatency = latency(&r)
            add(.authenticate(script))
            if r.chance(0.1) {
                t += r.int64(0...5)
                add(r.pick([.app(.echo, pad: 0), .authenticate(AuthScript(.ok(user: "u0"))), .join(["r0"]), .heartbeat]))
            }
            connectedBy = t + script.latency + script.handshakeLatency + 2 * config.network.latency.upperBound + 2
        }
        let leavesEarly = r.chance(rates.leaveEarly)
        let endAt = leavesEarly ? r.int64(connectedBy...max(connectedBy, config.duration)) : config.duration
        var lastAt = endAt
        let window = connectedBy...max(connectedBy, endAt)

        // Heartbeats: diligent clients stay well inside heartbeatTimeout, lazy ones send none.
        if !r.chance(rates.lazy) {
            let period = max(40, options.heartbeatTimeout * Int64(r.int(45...65)) / 100)
            var beat = connectedBy + period
            while beat < endAt {
                plan.actions.append(TimedAction(at: beat, .heartbeat))
                beat += period
            }
        }
        var broadcasts = Int(rates.broadcastsPerClient)
        if r.chance(rates.broadcastsPerClient - Double(broadcasts)) { broadcasts += 1 }
        for _ in 0..<broadcasts {
            plan.actions.append(TimedAction(at: r.int64(window), .app(.broadcast, pad: r.int(0...rates.padMax))))
        }
        let rooms = roomPool
        for _ in 0..<rates.actions {
            let at = r.int64(window)
            let pad = r.int(0...rates.padMax)
            let action: ClientAction = switch r.weighted([8, 3, 6, 8, 5, 5, 2, 2, 2, 3, 1, 1, 1, Double(rates.stall * 20)]) {
            case 0: .join((0..<r.int(1...3)).map { _ in r.pick(rooms) })
            case 1: .leave((0..<r.int(1...2)).map { _ in r.pick(rooms + ["ws-default", "lobby", "$self"]) })
            case 2: .app(.echo, pad: pad)
            case 3: .app(.toRoom(r.pick(["r0", "r1", "r2", "deny-a", "ws-default"])), pad: pad)
            case 4: .app(.toUser(r.pick(userPool)), pad: pad)
            case 5: .app(.toClient(r.chance(0.9) ? r.int(0...(rates.clientCount - 1)) : nil), pad: pad)
            case 6: .invalidJSON
            case 7: .noEvent(r.pick(["5", #"{"event":5}"#, "{}"]))
            case 8: .custom(r.pick(["disconnect", "encrypted", "noop"]))
            case 9: .ping
            case 10: .authenticate(AuthScript(.ok(user: "u1")))
            case 11: .joinMalformed
            case 12: .heartbeat
            default: .stall(r.int64(50...min(20000, options.idleTimeout * 13 / 10)))
            }
            plan.actions.append(TimedAction(at: at, action))
        }
        if r.chance(rates.stall) {
            plan.actions.append(TimedAction(at: r.int64(window), .stall(r.int64(50...min(20000, options.idleTimeout * 13 / 10)))))
        }
        if r.chance(rates.violation) {
            let kind: Violation = r.pick(options.maxPayloadLength < 131_072 ? [.unmasked, .reservedOpcode, .invalidUTF8, .tooBig]
                                                                             : [.unmasked, .reservedOpcode, .invalidUTF8])
            lastAt = r.int64(window)
            plan.actions.removeAll { $0.at >= lastAt }
            plan.actions.append(TimedAction(at: lastAt, .violation(kind)))
        }
        let final: ClientPlan.FinalAction = switch r.weighted([50, 10, 5, 20, 15]) {
        case 0: .close(1000)
        case 1: .close(nil)
        case 2: .close(4321)
        case 3: .reset
        default: .stay
        }
        if leavesEarly, lastAt == endAt {
            plan.actions.append(TimedAction(at: endAt, final == .reset ? .reset : .close(final == .stay ? 1000 : finalCode(final))))
        } else {
            plan.finalAction = final
        }
        plan.actions.sort { $0.at < $1.at }
        return plan
    }

    private static func finalCode(_ action: ClientPlan.FinalAction) -> UInt16? {
        if case .close(let code) = action { return code }
        return 1000
    }
}
