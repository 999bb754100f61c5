/// The guards the spec leaves to Swift (see Generated/Guards.swift for the ones it computes
/// from settings and configured hooks, and for which inputs each one is evaluated).
extension Kernel: GuardComputing {
    // Each is inlined into the generated `guards` (no copy of the context per guard).
    @inline(__always)
    func attemptCurrent(_ record: ClientRecord, _ context: Context, now: Now) -> Bool {
        context.attempt != nil && context.attempt == record.attempt
    }

    @inline(__always)
    func timerCurrent(_ record: ClientRecord, _ context: Context, now: Now) -> Bool {
        guard let timer = context.timer else { return false }
        return record.timers[timer.kind] == timer.generation
    }

    @inline(__always)
    func hasRooms(_ record: ClientRecord, _ context: Context, now: Now) -> Bool { !context.rooms.isEmpty }

    @inline(__always)
    func refreshCurrent(_ record: ClientRecord, _ context: Context, now: Now) -> Bool {
        context.attempt != nil && context.attempt == record.refreshAttempt
    }

    @inline(__always)
    func refreshSameUser(_ record: ClientRecord, _ context: Context, now: Now) -> Bool {
        guard let identity = context.identity else { return false }
        return identity.userID == record.userID
    }

    @inline(__always)
    func presenceEnabled(_ record: ClientRecord, _ context: Context, now: Now) -> Bool { !presencePatterns.isEmpty }

    @inline(__always)
    func roomHasPresence(_ record: ClientRecord, _ context: Context, now: Now) -> Bool {
        context.room.map(presencePatterns.matches) ?? false
    }

    @inline(__always)
    func historyEnabled(_ record: ClientRecord, _ context: Context, now: Now) -> Bool { !historyPatterns.isEmpty }

    @inline(__always)
    func roomHasHistory(_ record: ClientRecord, _ context: Context, now: Now) -> Bool {
        context.room.map(hasHistory) ?? false
    }

    @inline(__always)
    func inRoom(_ record: ClientRecord, _ context: Context, now: Now) -> Bool {
        context.room.map(record.rooms.contains) ?? false
    }

    @inline(__always)
    func heartbeatOverdue(_ record: ClientRecord, _ context: Context, now: Now) -> Bool {
        now.monotonic - record.lastActivity > settings.heartbeatTimeout
    }
}
