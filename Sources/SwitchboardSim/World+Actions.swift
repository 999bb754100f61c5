import Dispatch
import Switchboard

/// What the world does on its own schedule (a server's shutdown, the end of the run) and the
/// bridge that lets the sim thread wait for an async library call.
extension SimWorld {

    func performWorldAction(_ action: WorldAction) -> String {
        switch action.kind {
        case .shutdown(let server):
            beginShutdown(server)
            return "S\(server) shutdown requested"
        case .app(let server, let call):
            return appCall(server: server, call)
        }
    }

    func end() -> String {
        switch config.ending {
        case .clientsLeave:
            for client in clients where !client.done {
                push(.clientFinal(client: client.index), at: now + worldRNG.int64(0...20), lane: SimWorld.clientLane(client.index))
            }
            return "end: clients leave"
        case .shutdown:
            for server in 0..<config.serverCount { beginShutdown(server) }
            return "end: every server shuts down"
        }
    }

    /// `Server.shutdown()` in a Task whose jobs this thread runs: it posts its work to the loop
    /// (at the current virtual time) and waits; when the loop finishes it resumes, after that
    /// event, and closes the bus and stops the driver.
    func beginShutdown(_ server: Int) {
        guard !shutdownRequested[server] else { return }
        shutdownRequested[server] = true
        let instance = servers[server]
        let returned = shutdownReturned
        Task(executorPreference: hookExecutor) {
            await instance.shutdown()
            returned.withLock { $0[server] = true }
        }
        hookExecutor.runPending()
    }

    /// Runs an async call against the servers (e.g. `Server.query`) on this thread; work it
    /// posts from elsewhere is taken from `foreign`. Only at quiet points: it does not step time.
    func bridge<T: Sendable>(_ operation: @escaping @Sendable () async -> T) -> T? {
        let box = Locked<T?>(nil)
        let signal = foreignSignal
        Task(executorPreference: hookExecutor) {
            let value = await operation()
            box.withLock { $0 = value }
            signal.signal()
        }
        while true {
            hookExecutor.runPending()
            if let value = box.withLock({ $0 }) { return value }
            let works = foreign.withLock { list -> [(driver: Int, work: @Sendable () -> Void)] in
                defer { list.removeAll() }
                return list
            }
            for (_, work) in works { work() }
            if !works.isEmpty { continue }
            if foreignSignal.wait(timeout: .now() + .seconds(60)) == .timedOut {
                record("a query never finished")
                return nil
            }
        }
    }

    /// Whether every requested `Server.shutdown()` returned.
    func shutdownTasksReturned() -> Bool {
        let pending = shutdownReturned.withLock { returned in
            returned.indices.filter { shutdownRequested[$0] && !returned[$0] }
        }
        if !pending.isEmpty { record("Server.shutdown() of \(pending.map { "S\($0)" }.joined(separator: ",")) never returned") }
        return pending.isEmpty
    }

    /// Whether the client's connection has more unsent bytes than backpressureLimit.
    func isOverLimit(client k: Int) -> Bool {
        guard let id = clients[k].conn, let socket = sockets[id], !socket.destroyed else { return false }
        return socket.out.count > config.options.backpressureLimit
    }
}
