import Switchboard

/// The model's timers, fired lazily in time order: the authentication deadlines it predicts
/// and each server's heartbeat sweep.
extension ReferenceModel {
    /// Fires every model timer and heartbeat sweep due at or before now.
    func advance() {
        let t = now
        while true {
            var sweepServer = -1
            var sweepTime = Int64.max
            for s in nextSweep.indices where !serverDown[s] && nextSweep[s] < sweepTime {
                sweepTime = nextSweep[s]
                sweepServer = s
            }
            let timerTime = timers.nextDeadline() ?? .max
            guard min(sweepTime, timerTime) <= t else { return }
            if timerTime <= sweepTime {
                dueTimers.removeAll(keepingCapacity: true)
                timers.collectDue(now: timerTime, into: &dueTimers)
                for entry in dueTimers where timers.claim(entry) { fire(entry) }
            } else {
                nextSweep[sweepServer] += config.options.heartbeatInterval
                sweep(sweepServer, at: sweepTime)
            }
        }
    }

    func fire(_ entry: TimerHeap.Entry) {
        let (client, kind) = ClientTimer.decode(entry.token)
        let c = clients[client]
        switch kind {
        case .auth:
            guard c.phase == .unauthorized, c.authDeadline == entry.deadline else { return }
        case .inProgress:
            guard c.phase == .authenticating || c.phase == .handshaking, c.inProgressDeadline == entry.deadline else { return }
        }
        closeClient(client, [(4001, "Authentication timeout")], at: entry.deadline)
    }

    func sweep(_ s: Int, at time: Int64) {
        for k in authenticated[s].sorted() where time - clients[k].lastActivity > config.options.heartbeatTimeout {
            closeClient(k, [(4002, "Heartbeat timeout")], at: time)
        }
    }
}
