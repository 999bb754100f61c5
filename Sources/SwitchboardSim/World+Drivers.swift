import Dispatch
import Switchboard
import SwitchboardBus
import SwitchboardCodec
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What the servers' drivers ask of the world (called by SimDriver on the sim thread), and the
/// simulated bus between servers.
extension SimWorld {
    func serverWrite(_ driver: Int, _ id: ConnectionID, _ bytes: SharedBytes) {
        guard let socket = sockets[id], socket.server == driver else { return }
        if socket.closeRequested {
            record("S\(driver) wrote \(bytes.count) bytes to #\(id) after closing it")
            return
        }
        guard !socket.destroyed else { return }
        socket.out.append(bytes.bytes)
        writesThisEvent.append((id, bytes.count))
        stats.bytesWritten += bytes.count
        var events: [FrameReader.Event] = []
        socket.serverOut.feed(bytes.bytes, into: &events)
        for event in events { model.serverWrote(client: socket.client, event) }
        socket.maxBuffered = max(socket.maxBuffered, socket.out.count)
        if socket.out.count > config.options.backpressureLimit { model.overLimit(client: socket.client) }
        scheduleDrain(socket)
    }

    func serverClose(_ driver: Int, _ id: ConnectionID, flushFirst: Bool) {
        guard let socket = sockets[id], socket.server == driver, !socket.destroyed else { return }
        socket.closeRequested = true
        if !flushFirst {
            model.serverAborted(client: socket.client, why: drivers[driver].accepting ? .abort : .shutdown)
            destroy(socket, resetClient: true)
            return
        }
        guard !socket.closing else { return }
        socket.closing = true
        push(.linger(id), at: now + config.network.linger, lane: SimWorld.connectionLane(id))
        scheduleDrain(socket)
    }

    func stopAccepting(_ driver: Int) {
        guard drivers[driver].accepting else { return }
        drivers[driver].accepting = false
        busDetached[driver] = true
        model.shutdownBegan(server: driver)
    }

    /// `Driver.execute`: from a hook's Task (after its latency), from the loop (now), or from
    /// another thread (collected; the sim thread takes it at its next synchronisation point).
    func execute(driver: Int, _ work: @escaping @Sendable () -> Void) {
        if runningHook, let context = spawnContext {
            let latency = context.latency ?? 1
            push(.work(driver: driver, body: work, tag: context.answer.map(WorkTag.hookAnswer)),
                 at: SimWorld.odd(now + max(1, latency)), lane: SimWorld.workLane(driver))
            spawnContext?.answer = nil
            return
        }
        if isSimThread {
            push(.work(driver: driver, body: work, tag: currentBus.map(WorkTag.bus)), at: now, lane: SimWorld.workLane(driver))
            return
        }
        foreign.withLock { $0.append((driver, work)) }
        foreignSignal.signal()
    }

    /// `Driver.spawn`: runs the hook's Task to completion before going on, on this thread (the
    /// Task prefers `hookExecutor`, whose jobs run here), so no other thread takes part. Its
    /// answer comes back through `execute` with the latency the hook chose.
    func spawn(driver: Int, _ operation: @escaping @Sendable () async -> Void) {
        precondition(isSimThread && !runningHook, "spawn off the sim loop")
        spawnContext = SpawnContext(driver: driver)
        runningHook = true
        let finished = Locked(false)
        Task(executorPreference: hookExecutor) {
            await operation()
            finished.withLock { $0 = true }
        }
        if !hookExecutor.run(until: { finished.withLock { $0 } }) {
            record("a hook did not finish within 60 real seconds (it must not wait on the simulation)")
            aborted = true
        }
        runningHook = false
        spawnContext = nil
        stats.spawns += 1
    }

    /// A server drew random bits for an id; while it reads a client's upgrade they name that
    /// client, so the model knows every client's id, also of one that never authenticates.
    func idDrawn(_ bits: (UInt64, UInt64)) {
        guard let k = readingFor else { return }
        var replay = IDGenerator { bits }
        model.assigned(id: replay.uuid(), to: k)
    }

    // MARK: - Bus

    /// `first` and the messages of its link due at the same instant: one read of the
    /// subscription, handed over as one batch, as a Redis subscriber hands over what one read
    /// brought (the kernel then writes their fan-outs together).
    func busRead(_ first: BusDelivery) -> [BusDelivery] {
        var batch = [first]
        let lane = SimWorld.busLane(first.from, first.to)
        while let next = queue.next, next.key.time == now, next.key.lane == lane,
              case .bus(let delivery) = next.payload {
            _ = queue.pop()
            batch.append(delivery)
        }
        if batch.count > 1 { stats.busBatched += batch.count }
        return batch
    }

    func busPublish(from server: Int, channel: String, message: [UInt8]) {
        busSerial += 1
        let serial = busSerial
        let lost = config.bus.isDown(at: now)
        model.published(server: server, serial: serial, channel: channel, message: message, lost: lost)
        stats.published += 1
        guard !lost else {
            stats.busLost += 1
            trace.append("\(now) bus m\(serial) S\(server) \(channel) LOST (outage)")
            return
        }
        for to in 0..<config.serverCount where !busDetached[to] {
            let link = server * config.serverCount + to
            let time = SimWorld.odd(max(now + busRNG[link].int64(config.bus.delay), lastBus[link]))
            lastBus[link] = time
            push(.bus(BusDelivery(serial: serial, from: server, to: to, channel: channel, message: message)),
                 at: time, lane: SimWorld.busLane(server, to))
        }
    }
}
