import SwitchboardDriverSupport
import CHiredis
import Glibc

/// The publisher thread: takes every message waiting in the buffer and sends them as one
/// pipelined write of `PUBLISH`es, then reads the replies; what a lost connection left
/// unanswered goes back to the front of the buffer.
extension RedisBusCore {
    func runPublisher() {
        var backoff = BackoffState(options.backoff)
        var writer = RESPWriter()
        var batch: [Pending] = []
        batch.reserveCapacity(Self.maxBatchCount)
        var connection: RedisConnection?
        var connectionGeneration = 0
        while true {
            if connection == nil {
                let (currentGeneration, epoch) = monitor.withLock { (generation, subscribedEpoch) }
                switch connectRound() {
                case .closed:
                    return
                case .failed(let reason):
                    if failFastIfNeverReady(reason) { return }
                    if !backOff("publisher", reason, &backoff, endEarly: { self.subscribedEpoch != epoch }) { return }
                    continue
                case .connected(let opened):
                    connection = opened
                    connectionGeneration = currentGeneration
                    backoff.reset()
                    let ready = monitor.withLock {
                        publisherUp = true
                        return takeReadyIfComplete()
                    }
                    ready?(.success(()))
                }
            }
            guard let current = connection else { continue }

            monitor.lock()
            while !closed && generation == connectionGeneration && (queue.isEmpty || !subscribed) {
                publisherWaiting = true
                monitor.wait()
            }
            publisherWaiting = false
            if closed {
                monitor.unlock()
                return
            }
            if generation != connectionGeneration {
                publisherUp = false
                monitor.unlock()
                connection = nil
                continue
            }
            if current.isStale() {
                publisherUp = false
                monitor.unlock()
                skip(current.node)
                connection = nil
                log("redis publisher: lost connection to Redis at \(current.node); reconnecting")
                continue
            }
            var bytes = 0
            while batch.count < Self.maxBatchCount && bytes < Self.maxBatchBytes && !queue.isEmpty {
                let next = queue.removeFirst()
                bytes += next.message.count + next.channel.utf8.count
                batch.append(next)
            }
            monitor.unlock()

            writer.reset()
            for pending in batch { writer.publish(channel: pending.channel, message: pending.message) }
            var answered = 0, rejected = 0
            var firstRejection = ""
            do throws(RedisIOError) {
                let deadline = redisNow() + commandTimeout
                try current.write(writer.bytes, deadline: deadline)
                while answered < batch.count {
                    let reply = try current.reply(deadline: deadline)
                    if reply.pointee.type == REDIS_REPLY_ERROR {
                        if rejected == 0 { firstRejection = RedisConnection.text(reply) }
                        rejected += 1
                    }
                    freeReplyObject(reply)
                    answered += 1
                }
                finishBatch(accepted: answered - rejected, rejected: rejected)
                if rejected > 0 { log("redis publisher: Redis rejected \(rejected) message(s): \(firstRejection)") }
            } catch {
                if error.kind == .woken { return }
                let kept = requeue(batch[answered...], accepted: answered - rejected, rejected: rejected)
                skip(current.node)
                connection = nil
                log("redis publisher: lost connection to Redis at \(current.node): \(error); \(kept) message(s) kept for retry")
            }
            batch.removeAll(keepingCapacity: true)
        }
    }

    private func finishBatch(accepted: Int, rejected: Int) {
        monitor.lock()
        published += accepted
        dropped += rejected
        batches += 1
        var drained: Int?
        if queue.isEmpty {
            drained = overflowDrops
            overflowDrops = nil
        }
        monitor.unlock()
        if let drained {
            log("redis: the publish buffer has drained; \(drained) message(s) were dropped while it was full")
        }
    }

    /// Puts unanswered messages back in front; those that no longer fit (the oldest) are dropped.
    private func requeue(_ unanswered: ArraySlice<Pending>, accepted: Int, rejected: Int) -> Int {
        monitor.withLock {
            published += accepted
            dropped += rejected
            publisherUp = false
            var kept = 0
            for pending in unanswered.reversed() {
                if queue.prepend(pending) {
                    kept += 1
                } else {
                    dropped += 1
                    overflowDrops = (overflowDrops ?? 0) + 1
                }
            }
            return kept
        }
    }
}
