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

    public init() {}
}

extension Engine {
    func metrics() -> ServerMetrics {
        var snapshot = ServerMetrics()
        for handle in kernel.clientHandles {
            guard let state = kernel.client(handle)?.state else { continue }
            snapshot.clientsByState[state.specName, default: 0] += 1
        }
        snapshot.connections = connectionCount
        snapshot.connectionsAccepted = stats.connectionsAccepted
        snapshot.upgrades = stats.upgrades
        snapshot.messagesIn = stats.messagesIn
        snapshot.messagesOut = stats.messagesOut
        snapshot.bytesIn = stats.bytesIn
        snapshot.bytesOut = stats.bytesOut
        snapshot.published = stats.published
        snapshot.backpressureDrops = stats.backpressureDrops
        snapshot.backpressuredClients = backpressuredCount
        snapshot.hookFailures = stats.hookFailures
        snapshot.idleTimeouts = stats.idleTimeouts
        snapshot.upgradeTimeouts = stats.upgradeTimeouts
        snapshot.rejectedConnections = stats.rejectedConnections
        snapshot.compressedPayloads = stats.compressedPayloads
        snapshot.closes = stats.closes
        snapshot.rooms = kernel.roomNames.count
        snapshot.users = kernel.userIDs.count
        return snapshot
    }
}
