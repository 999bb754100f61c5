import Switchboard
import SwitchboardCodec
import SwitchboardDriverSupport

/// The reference model checking what the servers wrote, aborted and closed against what it
/// predicted.
extension ReferenceModel {
    func serverWrote(client k: Int, _ event: FrameReader.Event) {
        advance()
        switch event {
        case .http(let status, _):
            if let index = clients[k].expectHTTP.firstIndex(of: status) {
                clients[k].expectHTTP.remove(at: index)
            } else if status == 408, clients[k].phase == .accepted,
                      now - clients[k].acceptedAt > config.options.upgradeTimeout {
                clients[k].phase = .closed
            } else {
                problem("S\(clients[k].server) answered c\(k) HTTP \(status) (phase \(clients[k].phase), expected \(clients[k].expectHTTP))")
            }
            if status != 101 { clients[k].closing = true }
        case .text(let payload), .binary(let payload):
            wroteMessage(k, payload)
        case .close(let code, let reason):
            wroteClose(k, code, reason)
        case .pong:
            if clients[k].expectPongs > 0 { clients[k].expectPongs -= 1 } else { problem("S\(clients[k].server) sent c\(k) a pong it did not ask for") }
        case .ping:
            let silent = now - clients[k].lastReceive
            if !config.options.sendPings || silent <= config.options.idleTimeout / 2 {
                problem("S\(clients[k].server) pinged c\(k) after \(silent) ms of silence (sendPings \(config.options.sendPings), idleTimeout \(config.options.idleTimeout))")
            }
        case .malformed(let why):
            problem("S\(clients[k].server) wrote malformed bytes to c\(k): \(why)")
        }
    }

    func wroteMessage(_ k: Int, _ payload: [UInt8]) {
        guard let value = try? JSONValue.parse(payload), var event = value["event"]?.stringValue else {
            problem("S\(clients[k].server) wrote c\(k) a message that is no envelope: \(String(decoding: payload.prefix(100), as: UTF8.self))")
            return
        }
        var data = value["data"]
        var wrapped = false
        if event == "encrypted", let inner = data?["wrapped"], let innerEvent = inner["event"]?.stringValue {
            wrapped = true
            event = innerEvent
            data = inner["data"]
            if data == .null { data = nil }
        }
        let c = clients[k]
        switch event {
        case "connected":
            guard let expected = c.expectConnected else {
                problem("c\(k) got an unexpected `connected` (phase \(c.phase))")
                return
            }
            clients[k].expectConnected = nil
            if wrapped { problem("c\(k) got `connected` through the transformer") }
            guard let id = data?["id"]?.stringValue else {
                problem("c\(k) got `connected` without an id: \(value)")
                return
            }
            learnID(id, for: k)
            if data?["userId"]?.stringValue != expected.userID { problem("c\(k) `connected` userId \(data?["userId"].map { "\($0)" } ?? "absent"), expected \(expected.userID ?? "absent")") }
            let time = isoTime(unixMilliseconds: wallBase + now)
            if data?["time"]?.stringValue != time { problem("c\(k) `connected` time \(data?["time"].map { "\($0)" } ?? "absent"), expected \(time)") }
            if data?["serverPublicKey"]?.stringValue != expected.keys?.key || data?["salt"]?.stringValue != expected.keys?.salt {
                problem("c\(k) `connected` keys \(data.map { "\($0)" } ?? "nil"), expected \(expected.keys.map { "\($0)" } ?? "none")")
            }
        case "error":
            let message = data?["message"]?.stringValue ?? "?"
            guard let first = c.expectErrors.first else {
                problem("c\(k) got an unexpected error \"\(message)\" (phase \(c.phase))")
                return
            }
            if first != message { problem("c\(k) got error \"\(message)\", expected \"\(first)\"") }
            clients[k].expectErrors.removeFirst()
            if wrapped != (config.options.requireEncryption && c.encrypted) { problem("c\(k) error \(wrapped ? "" : "not ")wrapped (encrypted: \(c.encrypted))") }
        default:
            guard let tag = Tag(data) else {
                problem("c\(k) got an untagged `\(event)`: \(value)")
                return
            }
            guard let expected = clients[k].expectDeliveries.removeValue(forKey: tag) else {
                problem("c\(k) got `\(event)` \(tag) it should not get (phase \(c.phase), rooms \(c.rooms.sorted()))")
                return
            }
            world?.stats.deliveriesChecked += 1
            if expected.event != event { problem("c\(k) got \(tag) as `\(event)`, expected `\(expected.event)`") }
            if expected.wrapped != wrapped { problem("c\(k) got \(tag) \(wrapped ? "" : "not ")wrapped") }
        }
    }

    func wroteClose(_ k: Int, _ code: UInt16?, _ reason: String) {
        touch(k)
        var c = clients[k]
        c.closing = true
        defer { clients[k] = c }
        if let close = c.expectClose, close.matches(code, reason) {
            c.expectClose = nil
            return
        }
        if code == 1008, c.overLimitEvent == event || world?.isOverLimit(client: k) == true, c.isLive,
           config.options.closeOnBackpressureLimit {
            if reason != "Backpressure limit exceeded" { problem("c\(k) 1008 with reason \"\(reason)\"") }
            c.backpressureClosed = event
            clients[k] = c
            release(k)
            c = clients[k]
            return
        }
        let text = "\(code.map(String.init) ?? "no code") \"\(reason)\""
        problem("c\(k) got close \(text); expected \(c.expectClose?.text ?? "none") (phase \(c.phase)\(c.everOverLimit ? ", was over the limit" : ""))")
        c.expectClose = nil
        if c.isLive {
            clients[k] = c
            release(k)
            c = clients[k]
        }
    }

    enum AbortReason { case abort, shutdown, linger }

    /// The server dropped the connection without a close handshake.
    func serverAborted(client k: Int, why: AbortReason) {
        advance()
        touch(k)
        var c = clients[k]
        switch why {
        case .linger, .shutdown:
            break
        case .abort:
            if !c.closing, now - c.lastReceive <= config.options.idleTimeout {
                problem("S\(c.server) dropped c\(k) after \(now - c.lastReceive) ms of silence (idleTimeout \(config.options.idleTimeout), phase \(c.phase))")
            }
        }
        if let close = c.expectClose, close.at == now || close.batched {
            c.expectClose = nil  // a tie with the idle sweep, or the shutdown grace ran out
        }
        c.aborted = true
        c.closing = true
        clients[k] = c
        if clients[k].isLive || clients[k].phase == .accepted { release(k) }
    }

    /// The engine heard `connectionClosed`.
    func transportClosed(client k: Int) {
        advance()
        if clients[k].isLive || clients[k].phase == .accepted {
            touch(k)
            release(k)
        }
        // A shutdown close still queued for its batch can no longer be written.
        if clients[k].expectClose?.batched == true { clients[k].expectClose = nil }
    }

    func overLimit(client k: Int) {
        clients[k].overLimitEvent = event
        clients[k].everOverLimit = true
    }

    /// One loop stopped accepting: its engine began shutting down.
    func shutdownBegan(loop: Int) {
        advance()
        serverDown[loop] = true
        for k in clients.indices where clients[k].loop == loop {
            if clients[k].phase == .accepted {
                touch(k)
                clients[k].expectHTTP.append(503)
                release(k)
            } else if clients[k].isLive {
                closeClient(k, [(1001, "Server shutting down")], batched: true)
            }
        }
    }
}
