import CHiredis

/// One-shot publishing (the `emit` command): connect, `PUBLISH` once, disconnect.
public enum RedisPublisher {
    /// Publishes `message` on `channel` and returns how many subscribers Redis delivered it to.
    /// Nodes are tried in order until one connects; each attempt (connect, AUTH/SELECT, PUBLISH)
    /// is bounded by `timeout`, so the call never hangs. Errors read
    /// "cannot connect to Redis at host:port: reason" or name the command Redis rejected.
    public static func publish(url: RedisURL, channel: String, message: [UInt8],
                               timeout: Duration = .seconds(5)) throws(BusError) -> Int {
        var failures: [String] = []
        for node in url.nodes {
            let deadline = redisNow() + timeout.redisNanoseconds
            let connection: RedisConnection
            do throws(RedisIOError) {
                connection = try RedisConnection.connect(node, of: url, deadline: deadline, wakeFD: -1)
            } catch {
                failures.append("\(node): \(error)")
                continue
            }
            var writer = RESPWriter()
            writer.publish(channel: channel, message: message)
            let reply: UnsafeMutablePointer<redisReply>
            do throws(RedisIOError) {
                try connection.write(writer.bytes, deadline: deadline)
                reply = try connection.reply(deadline: deadline)
            } catch {
                throw BusError("PUBLISH to Redis at \(node) failed: \(error)")
            }
            defer { freeReplyObject(reply) }
            switch reply.pointee.type {
            case REDIS_REPLY_INTEGER:
                return Int(reply.pointee.integer)
            case REDIS_REPLY_ERROR:
                throw BusError("Redis at \(node) rejected PUBLISH: \(RedisConnection.text(reply))")
            default:
                throw BusError("unexpected reply to PUBLISH from Redis at \(node): \(RedisConnection.text(reply))")
            }
        }
        throw BusError("cannot connect to Redis at " + failures.joined(separator: "; "))
    }
}
