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
        guard let socket = sockets[id], socket.loop == driver else { return }
        if socket.closeRequested {
            record("\(name(driver)) wrote \(bytes.count) bytes to #\(id) after closing it")
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
        guard let socket = sockets[id], socket.loop == driver, !socket.destroyed else { return }
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

    /// One loop stopped accepting (its engine began shutting down); the server's bus link goes
    /// once every loop has.
    func stopAccepting(_ driver: Int) {
        guard drivers[driver].accepting else { return }
        drivers[driver].accepting = false
        guard driverServer.indices.contains(driver) else { return }  // a standalone driver
        let server = driverServer[driver]
        if serverDrivers[server].allSatisfy({ !drivers[$0].accepting }) { busDetached[server] = true }
        model.shutdownBegan(loop: driver)
    }

    /// `Driver.execute`: from a hook's Task (after its latency), from the loop (now), from
    /// another loop or an application thread (the target's mailbox), or from another thread
    /// (collected; the sim thread takes it at its next synchronisation point).
    func execute(driver: Int, _ work: @escaping @Sendable () -> Void) {
        if runningHook, let context = spawnContext {
            let latency = context.latency ?? 1
            push(.work(driver: driver, body: work, tag: context.answer.map(WorkTag.hookAnswer)),
                 at: SimWorld.odd(now + max(1, latency)), lane: SimWorld.workLane(driver))
            spawnContext?.answer = nil
            return
        }
        if isSimThread {
            if answering { return work() }
            // One loop alone, and every loop's start-up (`Server.bind` starts each engine before
            // the world runs): now, in the loop's own queue.
            if !isSharded(driver: driver) || active == nil && now == 0 && !running {
                push(.work(driver: driver, body: work, tag: currentBus.map(WorkTag.bus)), at: now, lane: SimWorld.workLane(driver))
            } else if active == driver {
                // The loop's own `execute`: later in this turn. After a hand-off or an app post
                // it is the flush that writes their frames.
                let tag: WorkTag? = switch processing {
                case .handOff?, .appPost?: .flush
                default: nil
                }
                push(.work(driver: driver, body: work, tag: tag), at: now, lane: SimWorld.workLane(driver))
            } else {
                post(work, to: driver)
            }
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
        var low = bits.1
        if let id = clients[k].conn, let socket = sockets[id], isSharded(driver: socket.loop) {
            // A loop of several writes its index into the id's last 10 bits (`IDGenerator`).
            low = (low & ~UInt64(1023)) | UInt64(socket.loop - serverDrivers[socket.server][0])
        }
        let drawn = (bits.0, low)
        var replay = IDGenerator { drawn }
        model.assigned(id: replay.uuid(), to: k)
    }

    /// Work for a loop of a sharded server from elsewhere: from another of its loops (a
    /// hand-off: `ShardSet` posts nothing else between loops here), from the bus reader, or
    /// from an application thread. Performed after a seeded delay, in the order posted.
    func post(_ work: @escaping @Sendable () -> Void, to driver: Int) {
        var tag = currentBus.map(WorkTag.bus) ?? currentAppPost.map(WorkTag.appPost)
        if let from = active, from != SimWorld.offLoops, driverServer[from] == driverServer[driver] {
            handOffsPosted += 1
            tag = .handOff(from: from)
            model.handOffPosted(from: from, to: driver)
            // Seeded faults (`SimConfig.Faults`), which the model must notice.
            switch handOffsPosted {
            case config.faults.dropHandOff:
                trace.append("\(now) \(name(from)) hand-off to \(name(driver)) DROPPED (fault)")
                return
            case config.faults.duplicateHandOff:
                trace.append("\(now) \(name(from)) hand-off to \(name(driver)) DUPLICATED (fault)")
                push(.work(driver: driver, body: work, tag: tag), at: SimWorld.odd(now), lane: SimWorld.mailboxLane(driver))
            case config.faults.delayHandOff:
                trace.append("\(now) \(name(from)) hand-off to \(name(driver)) HELD BACK (fault)")
                heldBack[driver] = (work, tag)
                return
            default:
                break
            }
        }
        let time = SimWorld.odd(max(now + mailboxRNG.int64(config.handOffDelay), lastMailbox[driver]))
        lastMailbox[driver] = time
        push(.work(driver: driver, body: work, tag: tag), at: time, lane: SimWorld.mailboxLane(driver))
        if case .handOff? = tag, let held = heldBack.removeValue(forKey: driver) {
            push(.work(driver: driver, body: held.body, tag: held.tag), at: time, lane: SimWorld.mailboxLane(driver))
        }
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
