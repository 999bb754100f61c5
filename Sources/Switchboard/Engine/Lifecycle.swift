/// The transport's clock-driven work and the end of the server: pings and idle timeouts,
/// requests that do not finish their HTTP head in time, and graceful shutdown.
final class Lifecycle {
    /// Every period this type works with, read from the options in one place.
    struct Periods {
        /// A connection silent this long is closed; silent `idleTimeout / pingDivisor` earns a
        /// ping (`sendPings`).
        var idleTimeout: Int64
        var sendPings: Bool
        var pingDivisor: Int64 = ConnectionPolicy.pingDivisor
        /// The HTTP request head must be complete within this.
        var upgradeTimeout: Int64
        /// Shutdown closes at most this many clients per step ...
        var shutdownBatchSize: Int
        /// ... one step every `shutdownStep` ms while clients remain to be closed, then waits for the
        /// connections to go, checking every `shutdownWait` ms ...
        var shutdownStep: Int64 = ConnectionPolicy.shutdownBatchInterval
        var shutdownWait: Int64 = ConnectionPolicy.shutdownPollInterval
        /// ... for at most this long.
        var shutdownGrace: Int64

        /// All from the spec's `connection` section, with the values the options set.
        init(_ settings: KernelSettings) {
            idleTimeout = ConnectionPolicy.idleTimeout(settings)
            sendPings = ConnectionPolicy.sendsPings(settings)
            upgradeTimeout = ConnectionPolicy.upgradeTimeout(settings)
            shutdownBatchSize = ConnectionPolicy.shutdownBatchSize(settings)
            shutdownGrace = ConnectionPolicy.shutdownGrace(settings)
        }

        /// How often the sweep runs: often enough for both timeouts, at most 4 times a second.
        var sweep: Int64 { max(250, min(idleTimeout / 4, upgradeTimeout / 2)) }
    }

    private struct Shutdown {
        /// Clients waiting for their 1001, closed `shutdownBatchSize` at a time.
        var queue: [ConnectionID] = []
        var next = 0
        var deadline: Int64
        var done: @Sendable () -> Void
    }

    private let periods: Periods
    private let driver: any Driver
    private let links: LinkRegistry
    private let stats: Stats
    private let upgrade: Upgrade
    private let frames: FrameHandler
    private let hooks: HookScheduler
    /// Unchecked: read (`isShuttingDown`) for every connection opened and upgraded.
    @exclusivity(unchecked) private var shutdown: Shutdown?
    /// Where `.shutdown` goes (set once by the engine after it is built).
    unowned(unsafe) var engine: Engine?

    init(periods: Periods, driver: any Driver, links: LinkRegistry, stats: Stats, upgrade: Upgrade,
         frames: FrameHandler, hooks: HookScheduler) {
        self.periods = periods
        self.driver = driver
        self.links = links
        self.stats = stats
        self.upgrade = upgrade
        self.frames = frames
        self.hooks = hooks
    }

    var isShuttingDown: Bool { shutdown != nil }

    func started() { scheduleSweep() }

    /// Handles one of its own timers; false for any other token.
    func timerFired(_ token: UInt64) -> Bool {
        switch token {
        case Timers.idleSweep: sweep()
        case Timers.shutdown: shutdownStep()
        default: return false
        }
        return true
    }

    // MARK: - Idle connections (transport layer: ping, idleTimeout, slow upgrades)

    private func scheduleSweep() {
        driver.schedule(Timers.idleSweep, at: driver.now.monotonic + periods.sweep)
    }

    private func sweep() {
        let now = driver.now.monotonic
        var ping: SharedBytes?
        for link in links.all where !link.closing {
            let silent = now - link.lastReceive
            if !link.isUpgraded {
                if now - link.openedAt > periods.upgradeTimeout {
                    stats.upgradeTimeouts += 1
                    upgrade.answer(link, .spec(ConnectionPolicy.upgradeTimeoutAnswer))
                }
            } else if silent > periods.idleTimeout {
                stats.idleTimeouts += 1
                link.closing = true
                driver.close(link.id, flushFirst: false)
            } else if periods.sendPings, silent > periods.idleTimeout / periods.pingDivisor, !link.pingOutstanding {
                link.pingOutstanding = true
                if ping == nil { ping = FrameHandler.ping() }
                driver.write(link.id, ping!)
            }
        }
        scheduleSweep()
    }

    // MARK: - Graceful shutdown

    /// Stops accepting, closes every client with 1001 in batches, then waits (bounded) for the
    /// connections to go; `done` runs on the loop when all are gone or the grace ran out.
    func beginShutdown(done: @escaping @Sendable () -> Void) {
        guard shutdown == nil else { return }
        shutdown = Shutdown(deadline: driver.now.monotonic + periods.shutdownGrace, done: done)
        for step in ConnectionPolicy.shutdownOrder {  // the spec's `connection.shutdown_order`
            switch step {
            case .stopAccepting:
                driver.stopAccepting()
            case .shutDownClients:
                // The kernel closes its clients with 1001: those closes come back here (`closeLater`).
                engine!.input(.shutdown)
            case .answerPendingRequests:
                for link in links.all where !link.isClient && !link.closing {
                    if !link.isUpgraded {
                        upgrade.answer(link, .spec(ConnectionPolicy.shutdownPendingUpgradeAnswer))
                    } else {
                        shutdown!.queue.append(link.id)
                    }
                }
            }
        }
        shutdownStep()
    }

    /// A client the kernel closes for shutdown waits for its batch.
    func closeLater(_ link: Link) {
        shutdown?.queue.append(link.id)
    }

    private func shutdownStep() {
        guard var state = shutdown else { return }
        let end = min(state.queue.count, state.next + periods.shutdownBatchSize)
        while state.next < end {
            if let link = links[state.queue[state.next]] {
                frames.close(link, code: CloseCode.serverShutdown.code, reason: CloseCode.serverShutdown.reason)
            }
            state.next += 1
        }
        shutdown = state
        if (links.isEmpty && hooks.running == 0) || driver.now.monotonic >= state.deadline {
            finishShutdown()
        } else {
            let wait = state.next < state.queue.count ? periods.shutdownStep : periods.shutdownWait
            driver.schedule(Timers.shutdown, at: driver.now.monotonic + wait)
        }
    }

    /// A connection closed or a callback finished: shutdown may be complete.
    func connectionOrCallbackEnded() {
        if shutdown != nil, links.isEmpty, hooks.running == 0 { finishShutdown() }
    }

    private func finishShutdown() {
        guard let state = shutdown else { return }
        for link in links.all { driver.close(link.id, flushFirst: false) }
        driver.cancel(Timers.shutdown)
        driver.cancel(Timers.idleSweep)
        shutdown = Shutdown(queue: [], next: 0, deadline: state.deadline, done: {})
        state.done()
    }
}
