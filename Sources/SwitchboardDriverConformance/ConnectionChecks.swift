import Foundation
import Switchboard

/// The checks on connections: their events, writes, closes, backpressure and flow control.
extension DriverConformance {
    func checkConnectionLifecycle() throws {
        let running = try started()
        let recorder = running.recorder
        // 1. The peer closes.
        let a = try TCPPeer(port: running.port)
        try a.write(Array("hello".utf8))
        try recorder.wait("bytes from the first peer") { events in
            guard let id = EventRecorder.opened(in: events).first else { return false }
            return EventRecorder.bytes(of: id, in: events) == Array("hello".utf8)
        }
        a.close()
        try recorder.wait("connectionClosed after the peer closed") { $0.contains { if case .closed = $0 { true } else { false } } }
        // 2. Closed inside connectionOpened (the engine does this at its connection limits).
        try running.onLoop { recorder.onOpened = { recorder.close($0, flushFirst: false) } }
        let b = try TCPPeer(port: running.port)
        if !b.endsWithin(seconds: 5) { throw ConformanceFailure("a connection closed inside connectionOpened did not end") }
        try recorder.wait("connectionClosed for a connection closed inside connectionOpened") { closedCount($0) == 2 }
        // 3. Closed inside bytesReceived; the peer's later bytes are not reported.
        try running.onLoop {
            recorder.onOpened = nil
            recorder.onBytes = { id, bytes in if bytes.contains(UInt8(ascii: "!")) { recorder.close(id, flushFirst: true) } }
        }
        let c = try TCPPeer(port: running.port)
        try c.write(Array("bye!".utf8))
        if !c.endsWithin(seconds: lingerBound + 5) { throw ConformanceFailure("a connection closed inside bytesReceived did not end") }
        try? c.write(Array("ignored".utf8))
        c.close()
        try recorder.wait("connectionClosed for a connection closed inside bytesReceived") { closedCount($0) == 3 }
        try running.stop()
        let events = recorder.recorded
        if EventRecorder.opened(in: events).count != 3 || closedCount(events) != 3 {
            throw ConformanceFailure("expected 3 opens and 3 closes, got \(EventRecorder.summary(events))")
        }
    }

    func checkOrderingAndFlush() throws {
        let running = try started()
        let recorder = running.recorder
        let driver = running.driver
        try running.onLoop {
            recorder.onBytes = { id, _ in
                driver.write(id, SharedBytes(Array("1".utf8)))
                Array("2".utf8).withUnsafeBytes { driver.write(id, copying: $0) }
                _ = Array("3".utf8).withUnsafeBytes { driver.write(id, copying: $0, ifBufferedAtMost: 1 << 20) }
                _ = Array("4".utf8).withUnsafeBytes { first in
                    Array("5".utf8).withUnsafeBytes { driver.write(id, copying: first, $0, ifBufferedAtMost: 1 << 20) }
                }
                _ = driver.write(id, SharedBytes(Array("6".utf8)), ifBufferedAtMost: 1 << 20)
            }
            recorder.onTimer = { token in driver.write(ConnectionID(token - 1000), SharedBytes(Array("8".utf8))) }
        }
        let peer = try TCPPeer(port: running.port)
        try peer.write([0])
        let fromCallback = try peer.read(exactly: 6, what: "six writes made inside bytesReceived")
        if fromCallback != Array("123456".utf8) {
            throw ConformanceFailure("writes inside one callback arrived as \(String(decoding: fromCallback, as: UTF8.self)), not 123456")
        }
        let id = EventRecorder.opened(in: recorder.recorded)[0]
        try running.onLoop { driver.write(id, SharedBytes(Array("7".utf8))) }
        if try peer.read(exactly: 1, what: "a write made by execute work") != Array("7".utf8) {
            throw ConformanceFailure("a write made by execute work did not arrive")
        }
        // The timer's token carries the connection (tokens below 16 are the engine's).
        try running.onLoop { recorder.schedule(1000 + id, at: driver.now.monotonic) }
        if try peer.read(exactly: 1, what: "a write made by timerFired") != Array("8".utf8) {
            throw ConformanceFailure("a write made by timerFired did not arrive")
        }
        try running.stop()
    }

    func checkWritesAfterClose() throws {
        let running = try started()
        let recorder = running.recorder
        let driver = running.driver
        let answers = UncheckedBox<[String]>([])
        try running.onLoop {
            recorder.onBytes = { id, _ in
                driver.write(id, SharedBytes(Array("A".utf8)))
                recorder.close(id, flushFirst: true)
                driver.write(id, SharedBytes(Array("B".utf8)))
                Array("C".utf8).withUnsafeBytes { driver.write(id, copying: $0) }
                let bounded = Array("D".utf8).withUnsafeBytes { driver.write(id, copying: $0, ifBufferedAtMost: 0) }
                if !bounded { answers.value.append("write(ifBufferedAtMost:) after close answered false") }
                recorder.close(id, flushFirst: true)  // a second close: ignored
            }
        }
        let peer = try TCPPeer(port: running.port)
        try peer.write([1])
        let received = try peer.readToEnd(timeout: lingerBound + 5, what: "A, then the end of the stream")
        if received != Array("A".utf8) {
            throw ConformanceFailure("after write A, close, writes B C D: the peer got \(String(decoding: received, as: UTF8.self)), not A")
        }
        try recorder.wait("connectionClosed") { closedCount($0) == 1 }
        // Unknown connections: ignored, no backpressure reported, nothing queued.
        let unknown: ConnectionID = 0xDEAD_BEEF_0000
        let unknownAnswers = try running.onLoop { () -> [String] in
            var problems: [String] = []
            driver.write(unknown, SharedBytes([1]))
            [1].withUnsafeBytes { driver.write(unknown, copying: $0) }
            if ![1].withUnsafeBytes({ driver.write(unknown, copying: $0, ifBufferedAtMost: 0) }) {
                problems.append("write(ifBufferedAtMost:) to an unknown connection answered false")
            }
            if driver.bufferedAmount(unknown) != 0 { problems.append("bufferedAmount of an unknown connection is not 0") }
            recorder.close(unknown, flushFirst: true)
            recorder.close(unknown, flushFirst: false)
            recorder.pauseReading(unknown)
            recorder.resumeReading(unknown)
            return problems
        }
        try running.stop()
        if let problem = (answers.value + unknownAnswers).first { throw ConformanceFailure(problem) }
    }

    func checkCloseAndLinger() throws {
        let running = try started()
        let recorder = running.recorder
        let driver = running.driver
        let size = 4 << 20
        try running.onLoop {
            recorder.onBytes = { id, bytes in
                if bytes.first == UInt8(ascii: "F") {
                    for offset in stride(from: 0, to: size, by: 65536) {
                        driver.write(id, SharedBytes(pattern(65536, from: offset)))
                    }
                    recorder.close(id, flushFirst: true)
                } else {
                    driver.write(id, SharedBytes(pattern(65536)))
                    recorder.close(id, flushFirst: false)
                }
            }
        }
        // flushFirst: everything, then the end of the stream; the peer never closes its side,
        // so the driver's linger must end the connection.
        let flushing = try TCPPeer(port: running.port)
        try flushing.write(Array("F".utf8))
        let start = Date()
        let received = try flushing.readToEnd(timeout: 20, what: "4 MiB, then the end of the stream")
        if received != pattern(size) {
            throw ConformanceFailure("close(flushFirst: true) delivered \(received.count) of \(size) bytes, or not in order")
        }
        try recorder.wait("connectionClosed within the linger bound", timeout: lingerBound + 5) { closedCount($0) == 1 }
        let lingered = Date().timeIntervalSince(start)
        if lingered > lingerBound + 2 {
            throw ConformanceFailure("close(flushFirst: true) took \(lingered) s, over the linger bound \(lingerBound) s")
        }
        // flushFirst: false: ends at once; what was queued may be dropped.
        let aborted = try TCPPeer(port: running.port)
        try aborted.write(Array("X".utf8))
        if !aborted.endsWithin(seconds: 5) { throw ConformanceFailure("close(flushFirst: false) did not end the connection") }
        try recorder.wait("connectionClosed after close(flushFirst: false)") { closedCount($0) == 2 }
        flushing.close()
        try running.stop()
    }

    func checkBackpressure() throws {
        let running = try started()
        let recorder = running.recorder
        let driver = running.driver
        let limit = 256 * 1024
        // A refusal owes a drain even when the turn's flush empties the queue at once (a
        // reading peer, socket buffers with room).
        let reader = try TCPPeer(port: running.port)
        try recorder.wait("the first connection to open") { EventRecorder.opened(in: $0).count == 1 }
        let first = EventRecorder.opened(in: recorder.recorded)[0]
        let refused = try running.onLoop { () -> Bool in
            for offset in stride(from: 0, to: 2 * limit, by: 65536) {
                guard driver.write(first, SharedBytes(pattern(65536, from: offset)), ifBufferedAtMost: limit) else { return true }
            }
            return false
        }
        if !refused { throw ConformanceFailure("a write was not refused with more than its limit queued") }
        try recorder.wait("connectionDrained after a refusal whose queue the turn's flush emptied") { $0.contains(.drained(first)) }
        _ = try reader.read(exactly: limit + 65536, what: "the bytes queued before the refusal")

        // A stalled reader.
        let peer = try TCPPeer(port: running.port, receiveBuffer: 4096)
        try recorder.wait("the connection to open") { EventRecorder.opened(in: $0).count == 2 }
        let id = EventRecorder.opened(in: recorder.recorded)[1]
        let written = UncheckedBox(0)
        // Write until a bounded write is refused in a turn that starts with bytes still queued
        // (the peer does not read; the socket buffers fill first). A refusal must come with
        // more than `limit` bytes queued.
        var stalled = false
        for _ in 0..<2000 where !stalled {
            let (queuedAtStart, queuedAtRefusal) = try running.onLoop { () -> (Int, Int) in
                let queuedAtStart = driver.bufferedAmount(id)
                while driver.write(id, SharedBytes(pattern(65536, from: written.value)), ifBufferedAtMost: limit) {
                    written.value += 65536
                    if written.value > 256 << 20 { return (0, 0) }
                }
                return (queuedAtStart, driver.bufferedAmount(id))
            }
            if queuedAtRefusal <= limit {
                throw ConformanceFailure("a write bounded at \(limit) was refused with \(queuedAtRefusal) bytes queued")
            }
            stalled = queuedAtStart > 0
        }
        if !stalled { throw ConformanceFailure("bytes never stayed queued while the peer did not read") }
        let total = written.value
        let received = try peer.read(exactly: total, timeout: 60, what: "\(total) bytes written under backpressure")
        if received != pattern(total) { throw ConformanceFailure("bytes written under backpressure were lost or reordered") }
        try recorder.wait("connectionDrained once the peer read everything") { $0.contains(.drained(id)) }
        let after = try running.onLoop { driver.bufferedAmount(id) }
        if after != 0 { throw ConformanceFailure("bufferedAmount is \(after) after connectionDrained") }
        try running.stop()
    }

    func checkPauseAndResume() throws {
        let running = try started()
        let recorder = running.recorder
        try running.onLoop { recorder.onOpened = { recorder.pauseReading($0) } }
        let peer = try TCPPeer(port: running.port)
        try recorder.wait("the connection to open") { EventRecorder.opened(in: $0).count == 1 }
        let id = EventRecorder.opened(in: recorder.recorded)[0]
        try peer.write(Array("held".utf8))
        // Nothing announces that a paused driver read nothing: give it time to break the rule
        // (the recorder flags bytes reported while paused).
        Thread.sleep(forTimeInterval: 0.3)
        if !EventRecorder.bytes(of: id, in: recorder.recorded).isEmpty {
            throw ConformanceFailure("bytesReceived while reading was paused")
        }
        try running.onLoop { recorder.resumeReading(id) }
        try recorder.wait("the held bytes after resumeReading") { EventRecorder.bytes(of: id, in: $0) == Array("held".utf8) }
        try peer.write(Array(" and more".utf8))
        try recorder.wait("bytes after resuming") { EventRecorder.bytes(of: id, in: $0) == Array("held and more".utf8) }
        // A FIN behind held bytes: after the resume, the bytes, then the close.
        try running.onLoop { recorder.pauseReading(id) }
        try peer.write(Array(" and the end".utf8))
        peer.close()
        Thread.sleep(forTimeInterval: 0.2)
        if recorder.recorded.contains(.closed(id)) || EventRecorder.bytes(of: id, in: recorder.recorded).count > 13 {
            throw ConformanceFailure("a paused connection reported its peer's bytes or FIN before the resume")
        }
        try running.onLoop { recorder.resumeReading(id) }
        try recorder.wait("the bytes before the FIN, then connectionClosed") { $0.contains(.closed(id)) }
        if EventRecorder.bytes(of: id, in: recorder.recorded) != Array("held and more and the end".utf8) {
            throw ConformanceFailure("bytes sent before the FIN of a paused connection were lost")
        }
        try running.stop()
    }
}

func closedCount(_ events: [EventRecorder.Event]) -> Int {
    events.reduce(0) { if case .closed = $1 { $0 + 1 } else { $0 } }
}
