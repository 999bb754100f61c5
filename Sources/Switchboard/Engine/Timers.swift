/// Driver timer tokens. The engine's own timers have fixed tokens below `firstKernelToken`;
/// each timer the kernel arms gets a fresh token, so a token that fires after its timer was
/// re-armed or cancelled finds nothing.
struct Timers {
    /// `Lifecycle`'s transport sweep (pings, idle and upgrade timeouts).
    static let idleSweep: UInt64 = 1
    /// `Lifecycle`'s shutdown batches.
    static let shutdown: UInt64 = 2
    static let firstKernelToken: UInt64 = 16

    private var tokens: [TimerID: UInt64] = [:]
    private var timers: [UInt64: TimerID] = [:]
    private var next = Timers.firstKernelToken

    /// A new token for a kernel timer (replacing any it had).
    mutating func arm(_ timer: TimerID) -> UInt64 {
        let token = next
        next += 1
        tokens[timer] = token
        timers[token] = timer
        return token
    }

    /// The token of a kernel timer being cancelled, if it is armed.
    mutating func cancel(_ timer: TimerID) -> UInt64? {
        guard let token = tokens.removeValue(forKey: timer) else { return nil }
        timers[token] = nil
        return token
    }

    /// The kernel timer a token fired for (forgotten: it fires once).
    mutating func fired(_ token: UInt64) -> TimerID? {
        guard let timer = timers.removeValue(forKey: token) else { return nil }
        tokens[timer] = nil
        return timer
    }
}
