import SwitchboardDriverSupport
import CHiredis
import Glibc

/// The subscriber thread: subscribes, hands each read's messages over as one batch (this bus's
/// own echoes left out), PINGs an idle connection, and resubscribes after a loss.
extension RedisBusCore {
    func runSubscriber(_ receive: @escaping @Sendable ([BusMessage]) -> Void) {
        var backoff = BackoffState(options.backoff)
        var writer = RESPWriter()
        if !channels.isEmpty { writer.command(["SUBSCRIBE"] + channels) }
        if !patterns.isEmpty { writer.command(["PSUBSCRIBE"] + patterns) }
        let subscribeCommand = writer.bytes
        /// When the last confirmed subscription was lost; nil while subscribed or never subscribed.
        var lostAt: UInt64?
        while true {
            let connection: RedisConnection
            switch connectRound() {
            case .closed:
                return
            case .failed(let reason):
                if failFastIfNeverReady(reason) { return }
                if !backOff("subscriber", reason, &backoff) { return }
                continue
            case .connected(let opened):
                connection = opened
            }
            var wasSubscribed = false
            do throws(RedisIOError) {
                try serveSubscriptions(connection, command: subscribeCommand, receive: receive) {
                    wasSubscribed = true
                    backoff.reset()
                    self.markSubscribed(on: connection.node, lostAt: lostAt)
                    lostAt = nil
                }
            } catch {
                if error.kind == .woken { return }
                skip(connection.node)
                monitor.lock()
                subscribed = false
                node = nil
                generation += 1
                monitor.broadcast()
                monitor.unlock()
                if wasSubscribed { lostAt = redisNow() }
                let reason = "lost connection to Redis at \(connection.node): \(error)"
                if failFastIfNeverReady(reason) { return }
                if wasSubscribed {
                    log("redis subscriber: \(reason); reconnecting")
                } else if !backOff("subscriber", reason, &backoff) {
                    return
                }
            }
        }
    }

    /// Subscribes, then delivers messages until the connection fails (it always throws): those
    /// one read brought, as one batch once they are all parsed (before a failure too).
    private func serveSubscriptions(_ connection: RedisConnection, command: [UInt8],
                                    receive: @Sendable ([BusMessage]) -> Void,
                                    subscribedNow: () -> Void) throws(RedisIOError) {
        let expected = channels.count + patterns.count
        var confirmed = 0
        var awaitingSince = redisNow()
        var awaiting = true
        if expected == 0 {
            awaiting = false
            subscribedNow()
        } else {
            try connection.write(command, deadline: awaitingSince + commandTimeout)
        }
        var lastActivity = awaitingSince
        if options.dropsOwnEchoes {
            connection.consumeFront = { [unowned self] bytes in self.skipOwnEchoes(bytes) }
        }
        var batch: [BusMessage] = []
        defer { if !batch.isEmpty { receive(batch) } }
        while true {
            while let reply = try connection.bufferedReply() {
                defer { freeReplyObject(reply) }
                let r = reply.pointee
                if r.type == REDIS_REPLY_ARRAY, r.elements >= 2, let items = r.element, let kind = items[0] {
                    if r.elements == 3, RedisConnection.reply(kind, is: "message"), let channel = items[1], let payload = items[2] {
                        take(channel: channel, payload: payload, into: &batch)
                    } else if r.elements == 4, RedisConnection.reply(kind, is: "pmessage"), let channel = items[2], let payload = items[3] {
                        take(channel: channel, payload: payload, into: &batch)
                    } else if RedisConnection.reply(kind, is: "subscribe") || RedisConnection.reply(kind, is: "psubscribe") {
                        confirmed += 1
                        if confirmed == expected {
                            awaiting = false
                            subscribedNow()
                        }
                    } else if RedisConnection.reply(kind, is: "pong") {
                        if confirmed == expected { awaiting = false }
                    }
                } else if r.type == REDIS_REPLY_ERROR {
                    throw RedisIOError(kind: .rejected, description: "Redis replied \(RedisConnection.text(reply))")
                } else if r.type == REDIS_REPLY_STATUS, RedisConnection.reply(reply, is: "PONG") {
                    awaiting = false
                }
            }
            if !batch.isEmpty {
                receive(batch)
                batch = []
            }
            let deadline: UInt64
            if awaiting {
                deadline = awaitingSince + commandTimeout
            } else if let healthInterval {
                deadline = lastActivity + healthInterval
            } else {
                deadline = .max
            }
            if try connection.fill(deadline: deadline) {
                lastActivity = redisNow()
            } else if awaiting {
                let what = confirmed < expected ? "subscriptions were not confirmed" : "no reply to PING"
                throw RedisIOError(kind: .timeout, description: "\(what) within \(commandTimeout / 1_000_000) ms")
            } else {
                var ping = RESPWriter()
                ping.command(["PING"])
                awaitingSince = redisNow()
                awaiting = true
                try connection.write(ping.bytes, deadline: awaitingSince + commandTimeout)
            }
        }
    }

    /// Appends a message to the read's batch, unless it is one of this bus's own echoes.
    private func take(channel: UnsafeMutablePointer<redisReply>, payload: UnsafeMutablePointer<redisReply>,
                      into batch: inout [BusMessage]) {
        let body = UnsafeRawBufferPointer(start: payload.pointee.str, count: payload.pointee.len)
        let own = monitor.withLock {
            received += 1
            return options.dropsOwnEchoes && takeEcho(body)
        }
        if own { return }
        let name = String(decoding: UnsafeRawBufferPointer(start: channel.pointee.str, count: channel.pointee.len), as: UTF8.self)
        batch.append(BusMessage(channel: name, message: [UInt8](body)))
    }

    /// How many leading bytes of a read are this bus's own echoes, each checked in place and
    /// counted as received; one lock for the run. Stops at the first push that is not one (or
    /// is incomplete): it and everything after go through hiredis and `take`, in order.
    private func skipOwnEchoes(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        monitor.lock()
        defer { monitor.unlock() }
        while !unechoed.isEmpty, let push = RESPPush.parse(bytes, at: offset),
              takeEcho(UnsafeRawBufferPointer(rebasing: bytes[push.payload])) {
            received += 1
            offset = push.end
        }
        return offset
    }

    /// Whether `body` is one of the first messages in `unechoed` (which it and those before it
    /// then leave). Under `monitor`.
    private func takeEcho(_ body: UnsafeRawBufferPointer) -> Bool {
        for offset in 0..<min(unechoed.count, RedisBusCore.echoWindow) {
            let sent = unechoed[offset]
            guard sent.count == body.count,
                  sent.withUnsafeBytes({ $0.count == 0 || memcmp($0.baseAddress!, body.baseAddress!, $0.count) == 0 })
            else { continue }
            for _ in 0...offset { unechoed.removeFirst() }
            return true
        }
        return false
    }

    private func markSubscribed(on node: RedisURL.Node, lostAt: UInt64?) {
        monitor.lock()
        subscribed = true
        self.node = node
        subscribedEpoch += 1
        if lostAt != nil { reconnects += 1 }
        let ready = takeReadyIfComplete()
        monitor.broadcast()
        monitor.unlock()
        if let lostAt {
            log("redis: resubscribed after \((redisNow() - lostAt) / 1_000_000) ms outage (\(node))")
        }
        ready?(.success(()))
    }
}
