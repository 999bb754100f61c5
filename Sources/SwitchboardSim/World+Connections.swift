import Dispatch
import Switchboard
import SwitchboardBus
import SwitchboardCodec
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One virtual TCP connection: the server's send buffer drained at a seeded rate into a
/// window the client reads (or, stalled, does not), and the client's bytes in chunks.
final class Socket {
    let id: ConnectionID
    let server: Int
    /// The driver (a loop of `server`) that accepted it.
    let loop: Int
    let client: Int
    var rng: SimRandom
    let window: Int
    let drainPerTick: Int

    /// The server's send buffer: `bufferedAmount`.
    var out = ByteQueue()
    var inFlight = 0
    var drainScheduled = false
    var backlogged = false
    /// The engine called `close(flushFirst: true)`.
    var closing = false
    /// The engine called `close` at all (writes after it are a bug).
    var closeRequested = false
    /// Gone at the server: the engine was (or is about to be) told `connectionClosed`.
    var destroyed = false
    var notified = false
    var eofSent = false
    var lastToClient: Int64 = 0
    var lastToServer: Int64 = 0
    /// Client-to-server byte offsets: sent, arrived, and where each sent item ends.
    var sentBytes = 0
    var arrivedBytes = 0
    var items: [(end: Int, item: SentItem)] = []
    var itemHead = 0
    /// The server's output, decoded where it is written.
    var serverOut = FrameReader()
    var maxBuffered = 0

    init(id: ConnectionID, server: Int, loop: Int, client: Int, rng: SimRandom, network: NetworkSettings) {
        self.id = id
        self.server = server
        self.loop = loop
        self.client = client
        var rng = rng
        self.window = rng.int(network.window)
        self.drainPerTick = rng.int(network.drainPerTick)
        self.rng = rng
    }

    var bufferedAmount: Int { destroyed ? 0 : out.count }
}

/// The simulated network: connecting, bytes travelling in chunks both ways, draining, and
/// sockets going away.
extension SimWorld {
    func connect(_ k: Int) -> String {
        let client = clients[k]
        let s = client.plan.server
        // SO_REUSEPORT: the kernel picks one of the listening loops, here by the seed.
        let listening = serverDrivers[s].filter { drivers[$0].accepting }
        guard !listening.isEmpty else {
            client.refused = true
            client.done = true
            model.refused(client: k)
            return "c\(k) refused by S\(s)"
        }
        var pick = SimRandom(seed: config.seed, domain: 12, index: UInt64(k))
        var loop = listening.count == 1 ? listening[0] : listening[pick.int(0...(listening.count - 1))]
        if let pinned = client.plan.loop, serverDrivers[s].indices.contains(pinned), listening.contains(serverDrivers[s][pinned]) {
            loop = serverDrivers[s][pinned]
        }
        let id = nextConnection
        nextConnection += 1
        let socket = Socket(id: id, server: s, loop: loop, client: k, rng: SimRandom(seed: config.seed, domain: 6, index: id),
                            network: config.network)
        sockets[id] = socket
        client.conn = id
        model.accepted(client: k, connection: id, loop: loop)
        active = loop
        drivers[loop].events?.connectionOpened(id, peer: "sim-client-\(k)")
        client.opened(world: self)
        return "c\(k) connect \(name(loop)) #\(id)"
    }

    /// Bytes a client writes: split at seeded points, each chunk arriving after a latency,
    /// in order. `item` ends where these bytes end.
    func clientWrite(_ socket: Socket, _ bytes: [UInt8], item: SentItem?) {
        guard !bytes.isEmpty else { return }
        socket.sentBytes += bytes.count
        if let item { socket.items.append((socket.sentBytes, item)) }
        var cuts: [Int] = []
        if bytes.count > 1, socket.rng.chance(config.network.splitChance) {
            for _ in 0..<socket.rng.int(1...3) { cuts.append(socket.rng.int(1...(bytes.count - 1))) }
            cuts.sort()
        }
        var start = 0
        for cut in cuts + [bytes.count] where cut > start {
            let chunk = Array(bytes[start..<cut])
            start = cut
            let time = SimWorld.odd(max(now + socket.rng.int64(config.network.latency), socket.lastToServer))
            socket.lastToServer = time
            push(.toServer(socket.id, chunk), at: time, lane: SimWorld.connectionLane(socket.id))
        }
    }

    /// The client's FIN (after it saw EOF) or RST, behind its bytes.
    func clientFinish(_ socket: Socket) {
        let time = SimWorld.odd(max(now + socket.rng.int64(config.network.latency), socket.lastToServer))
        socket.lastToServer = time
        push(.finToServer(socket.id), at: time, lane: SimWorld.connectionLane(socket.id))
    }

    /// A chunk at the server: fed to the engine in pieces that end where the client's items
    /// end, so the model hears of each item right before the server processes it.
    func arriveAtServer(_ id: ConnectionID, _ chunk: [UInt8]) -> String {
        guard let socket = sockets[id] else { return "#\(id) >srv (unknown)" }
        guard !socket.destroyed else { return "#\(id) >srv \(chunk.count)B dropped" }
        model.chunkArrived(client: socket.client)
        var cursor = 0
        var labels: [String] = []
        while cursor < chunk.count, !socket.destroyed {
            var end = chunk.count
            var completed: SentItem?
            if socket.itemHead < socket.items.count {
                let itemEnd = socket.items[socket.itemHead].end - socket.arrivedBytes
                if itemEnd <= chunk.count - cursor {
                    end = cursor + itemEnd
                    completed = socket.items[socket.itemHead].item
                    socket.itemHead += 1
                }
            }
            if let completed {
                labels.append(completed.label)
                model.itemArrived(client: socket.client, completed)
                // An upgrade cannot close the connection, so the item behind it may share the
                // read (a client that pipelines): the engine handles both in one call.
                if case .upgrade(.normal) = completed, socket.itemHead < socket.items.count,
                   socket.items[socket.itemHead].end - socket.arrivedBytes <= chunk.count - cursor {
                    end = cursor + socket.items[socket.itemHead].end - socket.arrivedBytes
                    let next = socket.items[socket.itemHead].item
                    socket.itemHead += 1
                    labels.append(next.label)
                    model.itemArrived(client: socket.client, next)
                }
            }
            let piece = chunk[cursor..<end]
            socket.arrivedBytes += piece.count
            cursor = end
            readingFor = socket.client
            piece.withUnsafeBytes { drivers[socket.loop].events?.bytesReceived(id, $0) }
            readingFor = nil
        }
        if socket.itemHead > 256 {
            socket.items.removeFirst(socket.itemHead)
            socket.itemHead = 0
        }
        return "\(name(socket.loop)) #\(id) <c\(socket.client) \(chunk.count)B \(labels.joined(separator: " "))"
    }

    /// Gone at the server: queued output dropped, the engine told once (after this event).
    func destroy(_ socket: Socket, resetClient: Bool = false) {
        guard !socket.destroyed else { return }
        socket.destroyed = true
        socket.out.removeAll()
        if resetClient {
            let time = max(now + socket.rng.int64(config.network.latency), socket.lastToClient)
            push(.resetToClient(socket.id), at: time, lane: SimWorld.connectionLane(socket.id))
        }
        push(.notifyClosed(socket.id), at: now, lane: SimWorld.connectionLane(socket.id))
    }

    func scheduleDrain(_ socket: Socket) {
        guard !socket.drainScheduled, !socket.destroyed else { return }
        socket.drainScheduled = true
        push(.drain(socket.id), at: now, lane: SimWorld.connectionLane(socket.id))
    }

    func drain(_ id: ConnectionID) -> String {
        guard let socket = sockets[id] else { return "#\(id) drain (gone)" }
        socket.drainScheduled = false
        guard !socket.destroyed else { return "#\(id) drain (destroyed)" }
        let client = clients[socket.client]
        let room = socket.window - socket.inFlight - client.unreadBytes
        let n = min(socket.out.count, socket.drainPerTick, max(0, room))
        if n > 0 {
            let bytes = socket.out.take(n)
            socket.inFlight += n
            let time = max(now + socket.rng.int64(config.network.latency), socket.lastToClient)
            socket.lastToClient = time
            push(.toClient(id, bytes), at: time, lane: SimWorld.connectionLane(id))
        }
        if !socket.out.isEmpty {
            socket.backlogged = true
            if n > 0 {
                socket.drainScheduled = true
                push(.drain(id), at: now + config.network.tick, lane: SimWorld.connectionLane(id))
            }
            // A full window waits for the client to read (`clientConsumed`).
        } else {
            if socket.backlogged {
                socket.backlogged = false
                if !socket.closing { push(.notifyDrained(id), at: now, lane: SimWorld.connectionLane(id)) }
            }
            if socket.closing, !socket.eofSent {
                socket.eofSent = true
                push(.eofToClient(id), at: max(now, socket.lastToClient), lane: SimWorld.connectionLane(id))
            }
        }
        return "#\(id) drain \(n)B left \(socket.out.count)B"
    }

    /// The client read what it had: the window opened.
    func clientConsumed(_ socket: Socket) {
        if !socket.out.isEmpty || (socket.closing && !socket.eofSent) { scheduleDrain(socket) }
    }
}
