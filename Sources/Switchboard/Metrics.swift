/// A snapshot of the server's counters (for `/metrics`, logs and tests).
public struct ServerMetrics: Sendable, Equatable {
    /// Kernel clients by state (`UNAUTHORIZED`, `AUTHENTICATING`, `AUTHENTICATED`, ...).
    public var clientsByState: [String: Int] = [:]
    /// Open TCP connections, upgraded or not.
    public var connections = 0
    public var connectionsAccepted = 0
    public var upgrades = 0
    public var messagesIn = 0
    public var messagesOut = 0
    public var bytesIn = 0
    public var bytesOut = 0
    public var published = 0
    public var backpressureDrops = 0
    public var backpressuredClients = 0
    public var hookFailures = 0
    public var idleTimeouts = 0
    public var upgradeTimeouts = 0
    /// Connections closed at accept by maxConnectionsPerIP.
    public var rejectedConnections = 0
    /// Payloads compressed for permessage-deflate (once per payload, not per recipient).
    public var compressedPayloads = 0
    /// Close frames sent, by code.
    public var closes: [UInt16: Int] = [:]
    public var rooms = 0
    public var users = 0
    /// Hook latencies by hook: `authenticate`, `handshake`, `validateRoom`, `clientConnected`,
    /// `clientDisconnected` (present once the hook has answered at least once).
    public var hookLatency: [String: LatencyHistogram] = [:]
    /// Deliveries from the bus and from the `Server.send...` API (but `sendToClient`, which
    /// is not a fan-out): from the moment they entered the gateway to the moment their frames
    /// were queued for every local recipient (`LatencyHistogram.fanOutBounds`). Off the loop
    /// that includes the wait for the loop. Made by a hook while a step's effects are performed,
    /// the frames join that step's batch, written right after it (see `Engine`).
    public var fanOutLatency = LatencyHistogram(bounds: LatencyHistogram.fanOutBounds)

    public init() {}
}

extension Engine {
    func metrics() -> ServerMetrics {
        var snapshot = ServerMetrics()
        for handle in kernel.clientHandles {
            guard let state = kernel.client(handle)?.state else { continue }
            snapshot.clientsByState[state.specName, default: 0] += 1
        }
        // The counters `Stats` keeps under the same name are copied as they are.
        let counters: [(WritableKeyPath<ServerMetrics, Int>, KeyPath<Stats, Int>)] = [
            (\.connectionsAccepted, \.connectionsAccepted), (\.upgrades, \.upgrades),
            (\.messagesIn, \.messagesIn), (\.messagesOut, \.messagesOut), (\.bytesIn, \.bytesIn), (\.bytesOut, \.bytesOut),
            (\.published, \.published), (\.backpressureDrops, \.backpressureDrops), (\.hookFailures, \.hookFailures),
            (\.idleTimeouts, \.idleTimeouts), (\.upgradeTimeouts, \.upgradeTimeouts),
            (\.rejectedConnections, \.rejectedConnections), (\.compressedPayloads, \.compressedPayloads),
        ]
        for (field, counter) in counters { snapshot[keyPath: field] = stats[keyPath: counter] }
        snapshot.connections = connectionCount
        snapshot.backpressuredClients = backpressuredCount
        snapshot.closes = stats.closes
        snapshot.rooms = kernel.roomNames.count
        snapshot.users = kernel.userIDs.count
        snapshot.hookLatency = stats.hookLatencyByName
        snapshot.fanOutLatency = stats.fanOutLatency
        return snapshot
    }
}
