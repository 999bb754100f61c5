/// One shard's part of the server's metrics, and how the parts add up.
struct ShardMetrics: Sendable {
    var metrics: ServerMetrics
    /// Names, not counts: a room or a user may have clients on several loops.
    var rooms: Set<String>
    var users: Set<String>

    init(_ engine: Engine) {
        metrics = engine.metrics()
        rooms = Set(engine.kernel.roomNames)
        users = Set(engine.kernel.userIDs)
    }

    /// The server's metrics from every shard's part (the first is the first shard's).
    static func combined(_ parts: [ShardMetrics]) -> ServerMetrics {
        var total = parts[0].metrics
        var rooms = parts[0].rooms
        var users = parts[0].users
        for part in parts.dropFirst() {
            let other = part.metrics
            for (state, count) in other.clientsByState { total.clientsByState[state, default: 0] += count }
            let counters: [WritableKeyPath<ServerMetrics, Int>] = [
                \.connections, \.connectionsAccepted, \.upgrades, \.messagesIn, \.messagesOut, \.bytesIn,
                \.bytesOut, \.backpressureDrops, \.backpressuredClients, \.hookFailures, \.idleTimeouts,
                \.upgradeTimeouts, \.rejectedConnections, \.compressedPayloads, \.published,
            ]
            for counter in counters { total[keyPath: counter] += other[keyPath: counter] }
            // `published`: an application's publish is the first shard's alone (`ShardBus`); a
            // client's is counted by the shard of the client.
            for (code, count) in other.closes { total.closes[code, default: 0] += count }
            for (hook, histogram) in other.hookLatency {
                if total.hookLatency[hook] == nil {
                    total.hookLatency[hook] = histogram
                } else {
                    total.hookLatency[hook]!.add(histogram)
                }
            }
            total.fanOutLatency.add(other.fanOutLatency)
            rooms.formUnion(part.rooms)
            users.formUnion(part.users)
        }
        total.rooms = rooms.count
        total.users = users.count
        return total
    }
}
