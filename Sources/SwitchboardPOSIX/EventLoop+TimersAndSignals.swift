import Glibc
import SwitchboardDriverSupport

/// One-shot timers on the loop's clock, and signals read through a signalfd.
extension EventLoop {
    /// Arms a one-shot timer; scheduling an armed token replaces it. O(log n).
    public func schedule(_ token: UInt64, at deadline: Instant) {
        timers.schedule(token, at: deadline.milliseconds)
    }

    public func cancel(_ token: UInt64) {
        timers.cancel(token)
    }

    func fireTimers() {
        timers.collectDue(now: cachedNow.milliseconds, into: &dueTimers)
        var i = 0
        while i < dueTimers.count {
            let entry = dueTimers[i]
            i += 1
            if timers.claim(entry) {
                turnHandler?.timerFired(entry.token)
                deliverNotes()
            }
        }
        dueTimers.removeAll(keepingCapacity: true)
    }

    // MARK: - Signals

    /// Runs `handler` on the loop when one of `signals` arrives, through a signalfd. The
    /// signals are blocked in the calling thread; call this before starting other threads
    /// (they inherit the mask) so that no thread takes the default action instead.
    public func onSignal(_ signals: [Int32], _ handler: @escaping () -> Void) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals {
            sigaddset(&set, signal)
            sigaddset(&signalMask, signal)
            signalHandlers[signal, default: []].append(handler)
        }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        if signalFD < 0 {
            signalFD = sys.signalfd(-1, &signalMask, LinuxABI.nonblock | LinuxABI.cloexec)
            guard signalFD >= 0 else { fatalError("SwitchboardPOSIX: signalfd: \(errnoText(errno))") }
            control(LinuxABI.epollCtlAdd, signalFD, LinuxABI.epollIn, Self.tagSignal)
        } else {
            _ = sys.signalfd(signalFD, &signalMask, 0)
        }
    }

    func readSignals() {
        withUnsafeTemporaryAllocation(byteCount: LinuxABI.signalInfoSize * 8, alignment: 8) { buffer in
            while true {
                let n = Glibc.read(signalFD, buffer.baseAddress, buffer.count)
                guard n >= LinuxABI.signalInfoSize else { return }
                for offset in stride(from: 0, to: n, by: LinuxABI.signalInfoSize) {
                    let signal = Int32(buffer.load(fromByteOffset: offset, as: UInt32.self))
                    for handler in signalHandlers[signal] ?? [] { handler() }
                }
            }
        }
    }
}
