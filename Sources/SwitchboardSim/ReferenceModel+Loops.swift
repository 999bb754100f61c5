import Switchboard

/// What one application delivery does on each loop of a server (`ServerOptions.loops`), and
/// the hand-offs between loops.
///
/// A server with several loops must look like one with one loop, but a loop other than the
/// caller's does its part later, in a turn of its own: the model keeps each such part until
/// that loop performs it, and predicts its recipients from the members the loop has then.
/// Hand-offs from one loop to another are performed in the order posted, each batch whole
/// and once; a loss, a duplicate, a reordering or a delivery to a non-member shows as a
/// missing or an unexpected message, and a part never performed is reported at the end.
extension ReferenceModel {
    /// One loop's part of a delivery: its recipients among that loop's clients, and the bus
    /// publish if this loop makes it (the server's first loop alone publishes).
    struct LoopItem {
        enum Reach {
            case everyone(exclude: [String])
            case room(String, exclude: [String])
            case user(String)
            case client(String)
            /// `send` to a destination as the protocol gives it: a client of this loop if one
            /// is live by that id (a client envelope), else a room (a room envelope); decided
            /// when the loop performs it.
            case clientOrRoom(String)
            case nobody
        }
        var reach: Reach
        var tag: Tag
        var event: String
        var publish: Publish?
    }

    /// A delivery the application asks of a server (`Server`'s API).
    enum RoutedCall {
        case toClient(String)
        case toUser(String)
        case toRoom(String, exclude: [String])
        case broadcast(exclude: [String])
        case publish(type: String, target: String?, exclude: [String])
        /// `send(destination?, topic, data)`: PROTOCOL.md 7.
        case send(String?)
    }

    /// Each loop's part of `call` on server `s` (by the loop's index in the server), as the
    /// protocol gives it for one loop and the library's routing splits it for several
    /// (`ShardRouting`): a client's loop is written in its id, so `send` to an id naming
    /// another loop than the first goes to that loop and the first publishes a client envelope,
    /// whether or not the client is still there (with one loop, or an id naming the first, a
    /// destination that is no live client here is a room).
    func parts(of call: RoutedCall, server s: Int, tag: Tag, event: String) -> [Int: LoopItem] {
        let count = serverLoops[s].count
        func item(_ reach: LoopItem.Reach, _ publish: Publish? = nil) -> LoopItem {
            LoopItem(reach: reach, tag: tag, event: event, publish: publish)
        }
        func publish(_ type: String, _ target: String?, _ exclude: [String]) -> Publish {
            let channel = switch type {
            case "broadcast": "ws:broadcast"
            default: "ws:\(type):\(target ?? "")"
            }
            return Publish(server: s, channel: channel, type: type, target: target, event: event, tag: tag, exclude: exclude)
        }
        func everywhere(_ reach: LoopItem.Reach, first: Publish?) -> [Int: LoopItem] {
            Dictionary(uniqueKeysWithValues: (0..<count).map { ($0, item(reach, $0 == 0 ? first : nil)) })
        }
        switch call {
        case .toClient(let id):
            if count == 1 { return [0: item(.client(id))] }
            guard let owner = Self.shard(of: id, loops: count) else { return [:] }
            return [owner: item(.client(id))]
        case .toUser(let user):
            return everywhere(.user(user), first: nil)
        case .toRoom(let room, let exclude):
            return everywhere(.room(room, exclude: exclude), first: nil)
        case .broadcast(let exclude):
            return everywhere(.everyone(exclude: exclude), first: nil)
        case .publish(let type, let target, let exclude):
            return [0: item(.nobody, publish(type, target, exclude))]
        case .send(nil):
            return everywhere(.everyone(exclude: []), first: publish("broadcast", nil, []))
        case .send(let destination?):
            let owner = count == 1 ? 0 : Self.shard(of: destination, loops: count)
            switch owner {
            case nil:
                return everywhere(.room(destination, exclude: []), first: publish("room", destination, []))
            case 0?:
                return [0: item(.clientOrRoom(destination), publish("room", destination, []))]
            case let owner?:
                return [owner: item(.client(destination)), 0: item(.nobody, publish("client", destination, []))]
            }
        }
    }

    /// `call` made on loop `origin` (performed there now, handed to the others) or, with
    /// `origin` nil, off the loops (each part posted to its loop as `post`).
    func route(_ call: RoutedCall, server s: Int, origin: Int?, post: Int = -1, tag: Tag, event: String) {
        for (index, item) in parts(of: call, server: s, tag: tag, event: event).sorted(by: { $0.key < $1.key }) {
            let loop = serverLoops[s][index]
            if let origin {
                if loop == origin { perform(item, on: loop) } else { unposted[origin][loop].append(item) }
            } else {
                appPosts[post, default: [:]][loop] = item
            }
        }
    }

    /// `item` done on `loop` now: its recipients are the loop's clients of this moment.
    func perform(_ item: LoopItem, on loop: Int) {
        switch item.reach {
        case .everyone(let exclude):
            for r in authenticated[loop] where !excluded(r, exclude) { expect(r, item.tag, item.event) }
        case .room(let room, let exclude):
            for r in roomMembers(loop, room) where !excluded(r, exclude) { expect(r, item.tag, item.event) }
        case .user(let user):
            for r in userMembers(loop, user) { expect(r, item.tag, item.event) }
        case .client(let id):
            if let r = idIndex[id], clients[r].loop == loop, clients[r].phase == .authenticated { expect(r, item.tag, item.event) }
        case .clientOrRoom(let id):
            guard var publish = item.publish else { break }
            if let r = idIndex[id], clients[r].loop == loop, clients[r].isLive {
                if clients[r].phase == .authenticated { expect(r, item.tag, item.event) }
                (publish.type, publish.channel) = ("client", "ws:client:\(id)")
            } else {
                for r in roomMembers(loop, id) { expect(r, item.tag, item.event) }
            }
            return expectPublish(publish)
        case .nobody:
            break
        }
        if let publish = item.publish { expectPublish(publish) }
    }

    // MARK: - Hand-offs

    /// Loop `from` posted loop `to` what it handed over since its last post: one batch.
    func handOffPosted(from: Int, to: Int) {
        let batch = unposted[from][to]
        unposted[from][to] = []
        if batch.isEmpty { problem("\(loopName(from)) handed \(loopName(to)) work the model did not predict") }
        posted[from][to].append(batch)
    }

    /// Loop `to` performs the oldest batch `from` posted it.
    func handOffPerformed(from: Int, to: Int) {
        advance()
        guard !posted[from][to].isEmpty else {
            problem("\(loopName(to)) performed a hand-off from \(loopName(from)) that was never posted (or twice)")
            return
        }
        holding = to
        for item in posted[from][to].removeFirst() { perform(item, on: to) }
    }

    /// Loop `loop` performs its part of application call `post`, made off the loops.
    func appPostPerformed(_ post: Int, loop: Int) {
        advance()
        guard let item = appPosts[post]?.removeValue(forKey: loop) else {
            problem("\(loopName(loop)) performed a part of app call a\(post) it has none of (or twice)")
            return
        }
        holding = loop
        perform(item, on: loop)
    }

    /// The loop wrote what its hand-offs and app posts since its last flush made.
    func flushed(loop: Int) {
        touched += held[loop]
        held[loop] = []
    }

    /// At the end: every hand-off and app post performed, every flush made.
    func finishLoops() {
        for from in unposted.indices {
            for to in unposted[from].indices {
                if !unposted[from][to].isEmpty {
                    problem("\(loopName(from)) never handed \(loopName(to)) \(unposted[from][to].map(\.tag))")
                }
                for batch in posted[from][to] {
                    problem("\(loopName(to)) never performed the hand-off from \(loopName(from)) of \(batch.map(\.tag))")
                }
            }
        }
        for (post, parts) in appPosts.sorted(by: { $0.key < $1.key }) where !parts.isEmpty {
            problem("app call a\(post) never performed on \(parts.keys.sorted().map(loopName))")
        }
        for (loop, waiting) in held.enumerated() where !waiting.isEmpty {
            problem("\(loopName(loop)) never flushed what it performed for c\(waiting.sorted())")
        }
    }

    func loopName(_ loop: Int) -> String { world?.name(loop) ?? "loop \(loop)" }

    /// The loop an id names when a server runs `loops` of them: the low 10 bits of an id shaped
    /// as the server writes them (36 characters, lowercase hex in its last 12), if below
    /// `loops`; nil for anything else (PROTOCOL.md leaves ids opaque; this is the library's
    /// documented routing, `IDGenerator.shard(of:)`).
    static func shard(of id: String, loops: Int) -> Int? {
        let bytes = Array(id.utf8)
        guard bytes.count == 36, bytes[8] == UInt8(ascii: "-"), bytes[23] == UInt8(ascii: "-") else { return nil }
        var value = 0
        for byte in bytes[33...] {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | Int(byte - UInt8(ascii: "a") + 10)
            default: return nil
            }
        }
        let shard = value & 1023
        return shard < loops ? shard : nil
    }
}
