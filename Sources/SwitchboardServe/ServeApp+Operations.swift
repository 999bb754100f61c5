import Switchboard
import SwitchboardPOSIX
import Synchronization

/// Shutting down with a drain, and reloading certificates and keys (SIGHUP).
extension ServeApp {
    /// Graceful shutdown. First the drain: the public port stops accepting and `/readyz` and
    /// `/healthz` answer 503 (on the internal listener, which keeps serving), while established
    /// clients are served as before for `shutdown.drain_delay`, so a load balancer takes the
    /// instance out before anyone is disconnected. Then every client is closed with 1001
    /// (bounded by `timers.shutdown_grace`) and the internal listener closes.
    ///
    /// A second call during the drain skips what is left of it (a second SIGTERM); every call
    /// returns once the server has stopped.
    public func shutdown() async {
        let first = !shuttingDown.exchange(true, ordering: .acquiringAndReleasing)
        if first {
            for driver in server.drivers { driver.execute { driver.stopAccepting() } }
            if config.drainDelay > 0 {
                log.info("draining: no new connections, /readyz answers 503; clients are closed in "
                         + ConfigRender.duration(config.drainDelay))
                await drainTimer.wait(milliseconds: config.drainDelay)
            }
        } else {
            drainTimer.cut()
        }
        authenticator.withLock { $0.jwks }?.stop()
        await server.shutdown()
        api?.stop()
        internalListener?.stop()
    }

    /// Reads the TLS certificate and key, the JWT key file and the tokens file again. New
    /// handshakes and new `authenticate` messages use what was read; established connections
    /// and authenticated clients are untouched. A file that cannot be used is logged and what
    /// was loaded before is kept. Returns the problems (empty: everything reloaded). SIGHUP
    /// runs it on the loop: a few file reads and key parses, once per signal.
    @discardableResult
    public func reload() -> [String] {
        var problems: [String] = []
        // Each loop's driver has a context of its own: every one reloads.
        let contexts = server.drivers.compactMap { ($0 as? POSIXDriver)?.tls }
        if let tls = contexts.first {
            do {
                for context in contexts { try context.reload() }
                log.info("reload: TLS certificate \(tls.certificateChainFile) loaded")
            } catch {
                problems.append("TLS: \(error) (the previous certificate stays in use)")
            }
        }
        if config.auth.isConfigured {
            do {
                var fresh = try Authenticator.make(config)
                authenticator.withLock { current in
                    // A key set (`auth.jwt.jwks`) keeps itself current every jwks_refresh: the
                    // running refresher and its verifier stay, a second one is not started.
                    if let jwks = current.jwks {
                        fresh.jwks = jwks
                        fresh.jwt = current.jwt
                    }
                    current = fresh
                }
                log.info("reload: authentication keys loaded")
            } catch {
                problems += error.errors.map { "\($0) (the previous keys stay in use)" }
            }
        }
        for problem in problems { log.error("reload: \(problem)") }
        return problems
    }
}

/// The drain's wait, which a second shutdown can cut short.
final class DrainTimer: Sendable {
    private let state = Mutex<(waiter: CheckedContinuation<Void, Never>?, cut: Bool)>((nil, false))

    /// Returns after `milliseconds`, or at once when `cut()` is called (before or during it).
    func wait(milliseconds: Int64) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.cut { return true }
                state.waiter = continuation
                return false
            }
            if resumeNow { return continuation.resume() }
            Task { [self] in
                try? await Task.sleep(for: .milliseconds(milliseconds))
                cut()
            }
        }
    }

    func cut() {
        let waiter = state.withLock { state in
            state.cut = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
