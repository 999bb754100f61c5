import Foundation
import Switchboard
import Synchronization

/// The checks of the loop: `execute`, timers, stopping (those need no connection), and
/// `stopAccepting` (which does).
extension DriverConformance {
    func checkExecuteQueues() throws {
        let driver = try makeDriver()
        let running = try RunningDriver(driver: driver, runLoop: false)
        let log = Mutex<[String]>([])
        driver.execute { log.withLock { $0.append("first, inLoop \(driver.inLoop)") } }
        driver.execute { log.withLock { $0.append("second, inLoop \(driver.inLoop)") } }
        if !log.withLock({ $0.isEmpty }) { throw ConformanceFailure("execute ran its work before run()") }
        if driver.inLoop { throw ConformanceFailure("inLoop is true on a thread that is not the loop") }
        running.startLoop()
        // From inside the loop: the inner work must run after the outer one returns.
        let inner = try running.onLoop { () -> Bool in
            let ranInside = Mutex(false)
            let returned = Mutex(false)
            driver.execute {
                ranInside.withLock { $0 = !returned.withLock { $0 } }
                log.withLock { $0.append("inner") }
            }
            returned.withLock { $0 = true }
            log.withLock { $0.append("outer") }
            return ranInside.withLock { $0 }
        }
        if inner { throw ConformanceFailure("execute called on the loop ran its work inside the call") }
        try running.onLoop { () }  // the inner work was queued before this one
        let order = log.withLock { $0 }
        let expected = ["first, inLoop true", "second, inLoop true", "outer", "inner"]
        if order != expected {
            throw ConformanceFailure("execute order: expected \(expected), got \(order)")
        }
        try running.stop()
    }

    func checkTimers() throws {
        let running = try started()
        let recorder = running.recorder
        let driver = running.driver
        try running.onLoop {
            let now = driver.now.monotonic
            recorder.schedule(100, at: now + 400)
            recorder.schedule(101, at: now + 60)
            recorder.schedule(100, at: now + 30)  // replaces: fires once, first
            recorder.schedule(102, at: now + 40)
            recorder.cancel(102)
            recorder.schedule(103, at: now + 60)  // same deadline as 101, scheduled after it
            recorder.schedule(104, at: now - 1000)  // already due
        }
        try recorder.wait("timers 104, 100, 101, 103 to fire") { events in
            events.filter { if case .timer = $0 { true } else { false } }.count >= 4
        }
        // A second firing of 100 (the replaced deadline) or any firing of 102 would be flagged
        // by the recorder (not armed); give them the time to happen.
        try running.onLoop { recorder.schedule(105, at: driver.now.monotonic + 450) }
        try recorder.wait("timer 105") { $0.contains(.timer(105)) }
        let fired = recorder.recorded.compactMap { if case .timer(let token) = $0 { token } else { nil } }
        if fired != [104, 100, 101, 103, 105] {
            throw ConformanceFailure("timers fired \(fired), expected [104, 100, 101, 103, 105]")
        }
        try running.stop()
        if let problem = recorder.problems.first { throw ConformanceFailure(problem) }
    }

    func checkStopFromAnotherThread() throws {
        // stop() before run(): run() returns at once.
        let early = try RunningDriver(driver: makeDriver(), runLoop: false)
        early.driver.stop()
        early.startLoop()
        try early.waitUntilStopped(timeout: 5)
        // stop() from another thread while the loop runs (and has run work: it is going).
        let running = try started()
        try running.onLoop { () }
        let driver = running.driver
        Thread.detachNewThread { driver.stop() }
        try running.waitUntilStopped(timeout: 5)
    }

    func checkStopAccepting() throws {
        let running = try started()
        let first = try TCPPeer(port: running.port)
        try running.recorder.wait("the first connection to open") { EventRecorder.opened(in: $0).count == 1 }
        let driver = running.driver
        let stopped = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            driver.stopAccepting()
            stopped.signal()
        }
        _ = stopped.wait(timeout: .now() + 5)
        // It takes effect soon: then connecting is refused (or ends at once), never opened.
        let end = Date(timeIntervalSinceNow: 5)
        var refused = false
        while !refused, Date() < end {
            if let peer = try? TCPPeer(port: running.port) {
                refused = peer.endsWithin(seconds: 0.2)
            } else {
                refused = true
            }
        }
        if !refused { throw ConformanceFailure("connections are still accepted 5 s after stopAccepting()") }
        let opened = EventRecorder.opened(in: running.recorder.recorded).count
        let late = try? TCPPeer(port: running.port)
        _ = late?.endsWithin(seconds: 0.2)
        if EventRecorder.opened(in: running.recorder.recorded).count != opened {
            throw ConformanceFailure("connectionOpened after stopAccepting() had taken effect")
        }
        // The open connection carries on.
        try first.write(Array("still here".utf8))
        try running.recorder.wait("bytes on the connection opened before stopAccepting") { events in
            EventRecorder.bytes(of: EventRecorder.opened(in: events)[0], in: events) == Array("still here".utf8)
        }
        Thread.detachNewThread { driver.stop() }
        try running.waitUntilStopped(timeout: 5)
    }
}
