import Foundation
import Glibc
import SwitchboardDriverSupport
import SwitchboardPOSIX
import Testing

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite("EventLoop")
struct EventLoopTests {
    @Test("accept, echo, peer close: closed(.peerClosed) exactly once, ids never reused")
    func acceptEchoClose() throws {
        let server = try LoopServer()
        let fd = Client.connect(port: server.port)
        try #require(fd >= 0)
        let id = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(fd)))
        let peer = try #require(server.recorder.with { $0.accepted.first?.peer })
        #expect(peer.family == .ipv4 && peer.host == "127.0.0.1" && peer.port == Client.localPort(fd))

        #expect(Client.send(fd, bytes("hello")))
        #expect(Client.receive(fd, count: 5) == bytes("hello"))
        #expect(server.onLoop { $0.connectionCount } == 1)

        Glibc.close(fd)
        #expect(server.recorder.wait { !$0.closes(of: id).isEmpty })
        _ = server.onLoop { _ in }  // one more turn: a duplicate close would show up here
        #expect(server.recorder.with { $0.closes(of: id) } == [.peerClosed])
        #expect(server.onLoop { $0.connectionCount } == 0)
        #expect(server.onLoop { $0.bufferedAmount(id) } == 0)

        // The slot is reused, the id is not.
        let again = Client.connect(port: server.port)
        try #require(again >= 0)
        let second = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(again)))
        #expect(second != id)
        #expect(Client.send(again, bytes("x")))
        #expect(Client.receive(again, count: 1) == bytes("x"))
        Glibc.close(again)
        #expect(server.recorder.wait { $0.closes(of: second) == [.peerClosed] })

        let events = server.recorder.with { $0 }
        #expect(events.drained.isEmpty)  // never backlogged, so never drained
        #expect(!events.reentered && !events.notOnLoopThread)
        #expect(server.shutdown())
    }

    @Test("close(flushFirst: true) writes everything queued, sends FIN, then closes on the peer's FIN")
    func flushFirstClose() throws {
        let server = try LoopServer(onInput: .record)
        let fd = Client.connect(port: server.port)
        try #require(fd >= 0)
        let id = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(fd)))
        let payload = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        server.writeThenCloseFlushing(payload, to: id)
        let (received, eof) = Client.receiveToEnd(fd)
        #expect(eof)
        LoopServer.expectFlushedBeforeClose(received, payload)
        Glibc.close(fd)
        #expect(server.recorder.wait { !$0.closes(of: id).isEmpty })
        #expect(server.recorder.with { $0.closes(of: id) } == [.closedLocally])
        #expect(server.shutdown())
    }

    @Test("close(flushFirst: true) gives up after the linger deadline if the peer never closes")
    func lingerDeadline() throws {
        let server = try LoopServer(onInput: .record, lingerMilliseconds: 50)
        let fd = Client.connect(port: server.port)
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        let id = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(fd)))
        let closedAt = try #require(server.onLoop { loop -> Instant in
            loop.close(id, flushFirst: true)
            return loop.now
        })
        #expect(server.recorder.wait { !$0.closes(of: id).isEmpty })
        let after = try #require(server.onLoop { $0.now })
        #expect(after - closedAt >= 50)
        #expect(server.recorder.with { $0.closes(of: id) } == [.closedLocally])
        #expect(Client.receiveToEnd(fd).eof)
        #expect(server.shutdown())
    }

    @Test("close inside bytesReceived is delivered after the callback, once, without RST")
    func closeInsideCallback() throws {
        let server = try LoopServer(onInput: .closeImmediately)
        let fd = Client.connect(port: server.port)
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        let id = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(fd)))
        #expect(Client.send(fd, bytes("bye")))
        #expect(server.recorder.wait { !$0.closes(of: id).isEmpty })
        _ = server.onLoop { _ in }
        let events = server.recorder.with { $0 }
        #expect(events.closes(of: id) == [.closedLocally])
        #expect(!events.reentered)
        var byte: UInt8 = 0
        #expect(recv(fd, &byte, 1, 0) == 0)  // orderly FIN, not ECONNRESET
        #expect(server.shutdown())
    }

    @Test("a peer reset is reported as .reset")
    func peerReset() throws {
        let server = try LoopServer()
        let fd = Client.connect(port: server.port)
        try #require(fd >= 0)
        let id = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(fd)))
        var abortive = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, socklen_t(MemoryLayout<linger>.size))
        Glibc.close(fd)
        #expect(server.recorder.wait { !$0.closes(of: id).isEmpty })
        #expect(server.recorder.with { $0.closes(of: id) } == [.reset])
        #expect(server.shutdown())
    }

    @Test("1,000 concurrent connections echo, then one SharedBytes fans out to all")
    func thousandConnections() throws {
        let server = try LoopServer()
        let count = 1000
        var fds: [Int32] = []
        for _ in 0..<count {
            let fd = Client.connect(port: server.port)
            try #require(fd >= 0, "connect failed: errno \(-fd)")
            fds.append(fd)
        }
        defer { for fd in fds { Glibc.close(fd) } }
        #expect(server.recorder.wait { $0.accepted.count == count })
        #expect(server.onLoop { $0.connectionCount } == count)

        for (i, fd) in fds.enumerated() { #expect(Client.send(fd, bytes("message \(i);"))) }
        var mismatches = 0
        for (i, fd) in fds.enumerated() where Client.receive(fd, count: bytes("message \(i);").count) != bytes("message \(i);") {
            mismatches += 1
        }
        #expect(mismatches == 0)

        let broadcast = bytes("broadcast to everyone")
        let ids = server.broadcastToAll(broadcast)
        #expect(Set(ids).count == count)
        #expect(fds.filter { Client.receive($0, count: broadcast.count) != broadcast }.isEmpty)

        for fd in fds { Glibc.close(fd) }
        fds = []
        server.expectAllClosedByPeers(ids)
    }

    @Test("a client that never reads: bufferedAmount grows, others are served, drained fires after it reads")
    func backpressure() throws {
        let server = try LoopServer()
        let slow = Client.connect(port: server.port)
        let fast = Client.connect(port: server.port)
        try #require(slow >= 0 && fast >= 0)
        defer { Glibc.close(slow); Glibc.close(fast) }
        let slowID = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(slow)))
        _ = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(fast)))

        let chunkSize = 1 << 20
        let chunk = SharedBytes((0..<chunkSize).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        let batches = 64
        let first = try server.queue(chunk, times: batches, for: slowID)
        let second = try server.queue(chunk, times: batches, for: slowID)
        #expect(first > 16 << 20, "bufferedAmount after 64 MiB: \(first)")
        #expect(second > first + (16 << 20), "bufferedAmount after 128 MiB: \(second)")

        #expect(Client.send(fast, bytes("ping")))
        #expect(Client.receive(fast, count: 4) == bytes("ping"))
        #expect(server.recorder.with { $0.drained.isEmpty })

        let total = 2 * batches * chunkSize
        var buffer = [UInt8](repeating: 0, count: 1 << 18)
        var offset = 0
        var corrupt = false
        while offset < total {
            let n = buffer.withUnsafeMutableBytes { recv(slow, $0.baseAddress!, $0.count, 0) }
            guard n > 0 else { break }
            for i in 0..<n where buffer[i] != UInt8(truncatingIfNeeded: ((offset + i) % chunkSize) &* 31 &+ 7) {
                corrupt = true
                break
            }
            offset += n
        }
        #expect(offset == total)
        #expect(!corrupt)
        server.expectDrainedOnce(slowID)
        #expect(server.shutdown())
    }

    @Test("timers fire in deadline order, replace by token, cancel")
    func timers() throws {
        let server = try LoopServer()
        let base = try #require(server.onLoop { $0.now })
        let deadlines: [UInt64: Int64] = [1: 60, 2: 20, 3: 40, 5: 50, 6: 90]
        _ = server.onLoop { loop in
            loop.schedule(1, at: base + 60)
            loop.schedule(2, at: base + 20)
            loop.schedule(3, at: base + 40)
            loop.schedule(4, at: base + 30)
            loop.cancel(4)
            loop.schedule(5, at: base + 10)
            loop.schedule(5, at: base + 50)  // replaces the 10 ms deadline
            loop.schedule(7, at: base + 45)
            loop.cancel(7)
            loop.schedule(6, at: base + 90)  // fires last: anything cancelled would be seen before it
        }
        #expect(server.recorder.wait { $0.fired.count >= 5 })
        _ = server.onLoop { _ in }
        let fired = server.recorder.with { $0.fired }
        #expect(fired.map(\.token) == [2, 3, 5, 1, 6])
        for (token, at) in fired {
            #expect(at >= base + deadlines[token]!, "token \(token) fired at \(at - base) ms")
        }
        #expect(server.shutdown())
    }

    @Test("post from other threads wakes an idle loop and runs on the loop thread")
    func postFromOtherThreads() throws {
        let server = try LoopServer()
        let loopThread = try #require(server.onLoop { _ in pthread_self() })
        final class Tally: @unchecked Sendable {
            let condition = NSCondition()
            var ran = 0
            var offThread = 0
        }
        let tally = Tally()
        let threads = 4, perThread = 500
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<perThread {
                server.loop.post {
                    let onLoop = pthread_equal(pthread_self(), loopThread) != 0
                    tally.condition.lock()
                    tally.ran += 1
                    if !onLoop { tally.offThread += 1 }
                    tally.condition.broadcast()
                    tally.condition.unlock()
                }
            }
        }
        tally.condition.lock()
        let deadline = Date(timeIntervalSinceNow: failureTimeout)
        while tally.ran < threads * perThread, tally.condition.wait(until: deadline) {}
        let (ran, offThread) = (tally.ran, tally.offThread)
        tally.condition.unlock()
        #expect(ran == threads * perThread)
        #expect(offThread == 0)
        #expect(server.shutdown())
    }

    @Test("runSoon runs later in the same turn, in order, including work it queues itself")
    func runSoonOrder() throws {
        final class Log: @unchecked Sendable { var lines: [String] = [] }
        let server = try LoopServer()
        let log = Log()
        let inCaller = try #require(server.onLoop { loop -> [String] in
            loop.runSoon {
                log.lines.append("first")
                loop.runSoon { log.lines.append("queued by first") }
            }
            loop.runSoon { log.lines.append("second") }
            log.lines.append("caller")
            return log.lines
        })
        #expect(inCaller == ["caller"])  // nothing ran inside the caller
        let after = try #require(server.onLoop { _ in log.lines })
        #expect(after == ["caller", "first", "second", "queued by first"])
        #expect(server.shutdown())
    }

    @Test("tasks preferring a LoopExecutor run on the loop thread, before and after an await")
    func loopExecutorTasks() async throws {
        let server = try LoopServer()
        let loopThread = try #require(server.onLoop { _ in pthread_self() })
        let executor = LoopExecutor(loop: server.loop)
        // Started off the loop (posted) ...
        let offLoop = await Task(executorPreference: executor) { () -> [Bool] in
            let before = pthread_equal(pthread_self(), loopThread) != 0
            try? await Task.sleep(nanoseconds: 1_000_000)
            let after = pthread_equal(pthread_self(), loopThread) != 0
            return [before, after]
        }.value
        #expect(offLoop == [true, true])
        // ... and from the loop itself (queued with runSoon).
        let fromLoop = await withCheckedContinuation { (done: CheckedContinuation<[Bool], Never>) in
            server.loop.post {
                Task(executorPreference: executor) {
                    let first = pthread_equal(pthread_self(), loopThread) != 0
                    await Task.yield()
                    let second = pthread_equal(pthread_self(), loopThread) != 0
                    done.resume(returning: [first, second])
                }
            }
        }
        #expect(fromLoop == [true, true])
        #expect(server.shutdown())
    }

    @Test("listen on port 0 returns the bound port, IPv4 and IPv6")
    func listenPortZero() throws {
        let server = try LoopServer()
        #expect(server.port > 0)
        let (listener, v6Port) = try server.loop.listen(host: "::1", port: 0)
        #expect(listener.rawValue == 1)
        #expect(v6Port > 0)
        let fd = Client.connect(port: v6Port, host: "::1")
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        #expect(server.recorder.wait { $0.acceptedID(peerPort: Client.localPort(fd)) != nil })
        let peer = try #require(server.recorder.with { $0.accepted.first?.peer })
        #expect(peer.family == .ipv6 && peer.host == "::1")
        #expect(peer.description == "[::1]:\(Client.localPort(fd))")
        #expect(peer == PeerAddress(host: "::1", port: Client.localPort(fd)))
        #expect(PeerAddress(host: "10.1.2.3", port: 80)?.description == "10.1.2.3:80")
        #expect(PeerAddress(host: "example.org", port: 80) == nil)
        #expect(Client.send(fd, bytes("six")))
        #expect(Client.receive(fd, count: 3) == bytes("six"))
        #expect(server.shutdown())
    }

    @Test("listen on a used port fails with an error naming the address; bad literals too")
    func listenErrors() throws {
        let server = try LoopServer()
        let other = try EventLoop()
        do {
            _ = try other.listen(host: "127.0.0.1", port: server.port)
            Issue.record("second listen on \(server.port) succeeded")
        } catch {
            #expect(error.address == "127.0.0.1:\(server.port)")
            #expect(error.operation == "bind")
            #expect(error.code == EADDRINUSE)
            #expect(error.description.contains("127.0.0.1:\(server.port)"))
            #expect(error.description.contains("Address already in use"))
        }
        do {
            _ = try other.listen(host: "not-an-address", port: 0)
            Issue.record("listen on a hostname literal succeeded")
        } catch {
            #expect(error.operation == "parse address" && error.address == "not-an-address:0")
        }
        #expect(server.shutdown())
    }

    @Test("stopAccepting refuses new connections and keeps open ones")
    func stopAccepting() throws {
        let server = try LoopServer()
        let fd = Client.connect(port: server.port)
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        #expect(server.recorder.wait { $0.accepted.count == 1 })
        _ = server.onLoop { $0.stopAccepting() }
        #expect(Client.connect(port: server.port) == -ECONNREFUSED)
        #expect(Client.send(fd, bytes("still")))
        #expect(Client.receive(fd, count: 5) == bytes("still"))
        #expect(server.shutdown())
    }

    @Test("pauseReading holds input in the kernel until resumed")
    func pauseReading() throws {
        let server = try LoopServer(onInput: .record)
        let fd = Client.connect(port: server.port)
        try #require(fd >= 0)
        let id = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(fd)))
        _ = server.onLoop { $0.pauseReading(id, true) }
        #expect(Client.send(fd, bytes("held")))
        _ = server.onLoop { _ in }  // a full turn in which a readable, unpaused socket would be read
        _ = server.onLoop { _ in }
        #expect(server.recorder.with { $0.received[id] } == nil)
        Glibc.close(fd)  // FIN while paused: seen only after resuming, after the data
        _ = server.onLoop { $0.pauseReading(id, false) }
        #expect(server.recorder.wait { !$0.closes(of: id).isEmpty })
        let events = server.recorder.with { $0 }
        #expect(events.received[id] == bytes("held"))
        #expect(events.closes(of: id) == [.peerClosed])
        #expect(server.shutdown())
    }

    @Test("stop() ends run(), also when called before run()")
    func stopEndsRun() throws {
        let loop = try EventLoop()
        let finished = DispatchSemaphore(value: 0)
        let ran = DispatchSemaphore(value: 0)
        Thread { loop.run(); finished.signal() }.start()
        loop.post { ran.signal() }
        #expect(ran.wait(timeout: .now() + failureTimeout) == .success)
        loop.stop()
        #expect(finished.wait(timeout: .now() + failureTimeout) == .success)

        let early = try EventLoop()
        early.stop()
        let earlyFinished = DispatchSemaphore(value: 0)
        Thread { early.run(); earlyFinished.signal() }.start()
        #expect(earlyFinished.wait(timeout: .now() + failureTimeout) == .success)
    }

    @Test("onSignal runs the handler on the loop through a signalfd")
    func signals() throws {
        let server = try LoopServer(beforeRun: { loop in
            loop.onSignal([SIGUSR2]) {
                (loop.handler as? Recorder)?.with { $0.signals.append(SIGUSR2) }
            }
        })
        let loopThread = try #require(server.onLoop { _ in pthread_self() })
        #expect(pthread_kill(loopThread, SIGUSR2) == 0)
        #expect(server.recorder.wait { $0.signals == [SIGUSR2] })
        #expect(server.shutdown())
    }
}
