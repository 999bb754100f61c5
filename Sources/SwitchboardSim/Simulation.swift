import Switchboard
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs one simulated world and checks it against the reference model.
///
/// One `UInt64` seed draws the world (`SimConfig.swarm`): 1-3 `Server` instances of 1-3 event
/// loops each, every loop on a `SimDriver`, all sharing one virtual clock and event heap
/// (`SimWorld`; the library's own hand-off between a server's loops, its posts delayed by the
/// seed, connections spread over the loops as SO_REUSEPORT spreads them), a `SimBus` between them
/// (per-publisher FIFO delays, outages that lose what is published), 1-200 clients speaking
/// RFC 6455 bytes with seeded partial reads, slow readers, stalls, resets, protocol
/// violations, and the app's hooks with seeded answers, latencies and failures. The same seed
/// gives the same run, byte for byte (`SimReport.traceHash`).
///
/// The reference model (`ReferenceModel`) predicts from PROTOCOL.md, not from the kernel, every message,
/// error, `connected`, close frame, HTTP answer, hook call and bus publish; the run fails on
/// any difference, on frames a client reads that the server did not write (or in another
/// order), and on client records, connections or timers left at the end.
///
/// ```swift
/// let report = await Simulation.run(seed: 42)
/// if !report.passed { print(report.failureText) }   // starts with "make sim SEED=42"
/// ```
public enum Simulation {
    /// The world `SimConfig.swarm(seed:)` draws, run and checked.
    public static func run(seed: UInt64) async -> SimReport {
        await run(SimConfig.swarm(seed: seed))
    }

    /// Runs `config` on a thread of its own (hooks run in Tasks while it waits for them, so it
    /// must not occupy a thread of the cooperative pool).
    public static func run(_ config: SimConfig) async -> SimReport {
        await withCheckedContinuation { continuation in
            detachThread { continuation.resume(returning: runBlocking(config)) }
        }
    }

    /// Runs `config` on the calling thread, which must not belong to Swift's cooperative pool.
    public static func runBlocking(_ config: SimConfig) -> SimReport {
        let world = SimWorld(config: config)
        do {
            try world.start()
        } catch {
            world.record("the servers did not start: \(error)")
            return world.report()
        }
        world.run(until: world.config.duration + world.config.settle)
        return world.finish()
    }
}

/// What a run found.
public struct SimReport: Sendable, CustomStringConvertible {
    public let seed: UInt64
    /// FNV-1a over every trace line: equal for two runs of one seed.
    public let traceHash: UInt64
    public let traceLines: Int
    /// Broken promises, in the order found. Empty when the run passed.
    public let problems: [String]
    /// The events before the first problem (or the end of the run).
    public let traceTail: [String]
    /// Events of the client the first problem names (its connection's too).
    public let focus: [String]
    public let stats: SimStats
    public let clients: [ClientOutcome]
    public let servers: [ServerOutcome]
    /// The drawn world in one line.
    public let summary: String

    public var passed: Bool { problems.isEmpty }

    /// What a failing seed prints: how to replay it, what broke, and the last events.
    public var failureText: String {
        var lines = ["Simulation failed: make sim SEED=\(seed)", summary, "\(problems.count) problem(s):"]
        lines += problems.prefix(25).map { "  - \($0)" }
        if problems.count > 25 { lines.append("  ... and \(problems.count - 25) more") }
        lines.append("Last \(min(50, traceTail.count)) events before the first problem:")
        lines += traceTail.suffix(50).map { "  \($0)" }
        if !focus.isEmpty {
            lines.append("Events of the client it names (last \(focus.count)):")
            lines += focus.map { "  \($0)" }
        }
        return lines.joined(separator: "\n")
    }

    public var description: String {
        "seed \(seed): \(passed ? "ok" : "\(problems.count) problem(s)"), trace \(String(traceHash, radix: 16)) (\(traceLines) lines); \(stats)"
    }
}

/// How one simulated client's connection ended, as the client saw it.
public struct ClientOutcome: Sendable {
    public let index: Int
    public let server: Int
    public let refused: Bool
    public let httpStatus: Int?
    /// The close frame it read: nil when none arrived.
    public let closeCode: UInt16??
    public let closeReason: String?
    public let sawConnected: Bool
    public let messagesRead: Int
    /// Tags (`sender/seq`) of the tagged messages it read, in order.
    public let tagsRead: [String]
    public let resetByServer: Bool
    public let resetByClient: Bool
    public let wentOverLimit: Bool
}

/// A server's state once its clients are gone.
public struct ServerOutcome: Sendable {
    public let index: Int
    public let kernelClients: Int
    public let connections: Int
    public let armedDriverTimers: Int
    public let backpressureDrops: Int
    public let hookFailures: Int
}

extension SimWorld {
    /// Starts the servers (time 0) and schedules the clients and world actions. Call `start`,
    /// `run(until:)` and `finish` on one thread that is not in Swift's cooperative pool.
    public func start() throws { try startServers() }

    /// The end-of-run checks, then a graceful shutdown of every server; the report.
    public func finish() -> SimReport {
        finishRun()
        return report()
    }

    /// The end-of-run checks: model, wire, kernel and driver leaks, then a graceful shutdown.
    func finishRun() {
        model.finish()
        for client in clients {
            if !client.done, !client.refused, client.plan.upgrade != .slow || client.httpStatus == nil {
                record("c\(client.index) is still open at the end (sent close: \(client.sentClose), close read: \(client.closeFrame != nil))")
            }
            guard let socket = client.socket(self) else { continue }
            let written = socket.serverOut.digests
            let read = client.reader.digests
            if read.count > written.count || Array(written.prefix(read.count)) != read {
                record("c\(client.index) read frames the server did not write in that order (\(read.count) read, \(written.count) written)")
            } else if client.gotEOF, read.count != written.count {
                record("c\(client.index) got a clean EOF but missed \(written.count - read.count) of \(written.count) frames")
            }
        }
        let allMetrics = servers.indices.map(metrics(ofServer:))
        for (index, server) in servers.enumerated() {
            guard let metrics = allMetrics[index] else { continue }
            let kernelClients = metrics.clientsByState.values.reduce(0, +)
            if kernelClients != 0 { record("S\(index) still has \(kernelClients) client records: \(metrics.clientsByState)") }
            if metrics.connections != 0 { record("S\(index) still has \(metrics.connections) connections") }
            if shutdownRequested[index] {
                for loop in serverDrivers[index] where !drivers[loop].armedTimers.isEmpty {
                    record("\(name(loop)) has timers armed after shutdown: \(drivers[loop].armedTimers)")
                }
                continue
            }
            let states = bridge { try? await server.queryEach { kernel in (kernel.clientCount, kernel.invariantViolations(), kernel.armedTimers) } }
            if let states = states.flatMap({ $0 }), states.count == serverDrivers[index].count {
                for (loop, (count, violations, timers)) in zip(serverDrivers[index], states) {
                    if count != 0 { record("\(name(loop)) kernel keeps \(count) clients") }
                    if !violations.isEmpty { record("\(name(loop)) kernel invariants: \(violations)") }
                    if timers.count != 1 || timers.first?.owner != .server(.heartbeatSweep) {
                        record("\(name(loop)) kernel timers armed: \(timers.map(\.description)) (expected only the sweep)")
                    }
                }
            } else {
                record("S\(index) could not be queried")
            }
            for loop in serverDrivers[index] where drivers[loop].armedTimers.count != 2 {
                record("\(name(loop)) driver timers armed: \(drivers[loop].armedTimers) (expected the idle sweep and the kernel sweep)")
            }
        }
        // Each message the model excused for backpressure is one the engine counted as dropped.
        let drops = allMetrics.compactMap { $0?.backpressureDrops }.reduce(0, +)
        if drops > stats.excusedLosses || drops < stats.excusedLosses - stats.excusedUncounted {
            let uncounted = stats.excusedUncounted > 0 ? " (\(stats.excusedUncounted) of them due after a 1008 close)" : ""
            record("the servers counted \(drops) backpressure drops; the model saw \(stats.excusedLosses) messages missing\(uncounted)")
        }
        serverOutcomes = servers.indices.map { index in
            let metrics = allMetrics[index]
            return ServerOutcome(index: index, kernelClients: metrics?.clientsByState.values.reduce(0, +) ?? -1,
                                 connections: metrics?.connections ?? -1,
                                 armedDriverTimers: serverDrivers[index].map { drivers[$0].armedTimers.count }.reduce(0, +),
                                 backpressureDrops: metrics?.backpressureDrops ?? 0, hookFailures: metrics?.hookFailures ?? 0)
        }
        // A last graceful shutdown of every server; each must return and leave nothing armed.
        for index in servers.indices where !shutdownRequested[index] { beginShutdown(index) }
        run(until: now + config.options.shutdownGrace + 100)
        if shutdownTasksReturned() {
            for index in servers.indices {
                if !buses[index].isClosed { record("S\(index): shutdown returned without closing the bus") }
                for loop in serverDrivers[index] {
                    if !drivers[loop].isStopped { record("\(name(loop)): shutdown returned without stopping the driver") }
                    if !drivers[loop].armedTimers.isEmpty { record("\(name(loop)) has timers armed after shutdown: \(drivers[loop].armedTimers)") }
                }
            }
        }
    }

    /// A server's metrics over all its loops, read between events (also after its shutdown,
    /// when `metrics()` throws). With several loops `metricsOnLoop()` waits for the other
    /// loops' parts, which it posts to them: those are taken at once here (`answering`).
    func metrics(ofServer index: Int) -> ServerMetrics? {
        answering = true
        defer { answering = false }
        return servers[index].metricsOnLoop()
    }

    func report() -> SimReport {
        let options = config.options
        let outages = config.bus.outages.map { "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
        let loops = config.loops.contains { $0 > 1 } ? " (loops \(config.loops.map(String.init).joined(separator: "/")))" : ""
        let summary = "servers \(config.serverCount)\(loops), clients \(config.clients.count), duration \(config.duration) ms, "
            + "authTimeout \(options.authTimeout), heartbeat \(options.heartbeatInterval)/\(options.heartbeatTimeout), "
            + "idle \(options.idleTimeout)\(options.sendPings ? "" : " no pings"), backpressure \(options.backpressureLimit)"
            + "\(options.closeOnBackpressureLimit ? " close" : ""), encryption \(options.requireEncryption)"
            + "\(config.hooks.handshakeConfigured ? "" : " (no handshakeFn)"), validateRoomFn \(config.hooks.validateRoomConfigured), "
            + "bus delay \(config.bus.delay.upperBound)\(outages.isEmpty ? "" : " outages \(outages)"), ending \(config.ending)"
        let all = trace.all
        let cut = problems.isEmpty ? all.count : min(all.count, firstProblemLine + 1)
        var focus: [String] = []
        if let first = problems.first, let match = first.firstMatch(of: /\bc([0-9]+)\b/), let k = Int(match.1), clients.indices.contains(k) {
            var needles = [" c\(k) ", " c\(k):", ">c\(k) ", "<c\(k) ", " c\(k)/", "auth c\(k) ", "validate c\(k) ", "handshake c\(k) "]
            if let id = clients[k].conn { needles.append("#\(id) ") }
            focus = Array(all.filter { line in needles.contains { (line + " ").contains($0) } }.suffix(40))
        }
        return SimReport(
            seed: config.seed, traceHash: trace.hash, traceLines: trace.lines, problems: problems,
            traceTail: Array(all[max(0, cut - 50)..<cut]), focus: focus,
            stats: stats,
            clients: clients.map { client in
                ClientOutcome(index: client.index, server: client.plan.server, refused: client.refused,
                              httpStatus: client.httpStatus, closeCode: client.closeFrame.map { $0.code },
                              closeReason: client.closeFrame?.reason, sawConnected: client.sawConnected,
                              messagesRead: client.messagesRead, tagsRead: client.tagsRead,
                              resetByServer: client.resetByServer, resetByClient: client.resetByClient,
                              wentOverLimit: client.conn.flatMap { sockets[$0] }.map { $0.maxBuffered > options.backpressureLimit } ?? false)
            },
            servers: serverOutcomes, summary: summary)
    }
}
