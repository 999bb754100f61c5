import SwitchboardKernel

/// What of one application delivery each loop performs, so that together they do what one
/// loop would, with one publish on the bus (by the first loop, which alone has the real bus:
/// one publisher's envelopes leave in the order made).
///
/// A client's loop is written in its id (`IDGenerator.shard(of:)`), so a delivery to one
/// client goes to that loop alone, and the first loop can name the envelope of `send` to a
/// client on another loop without asking it.
struct ShardRouting {
    let count: Int
    let serverID: String

    /// The part of `delivery` for loop `index`; nil: nothing for that loop.
    func part(of delivery: Delivery, forShard index: Int) -> Delivery? {
        switch delivery {
        case .toClient(let id, _, _):
            return owner(of: id) == index ? delivery : nil
        case .toUser, .toRoom, .broadcast:
            return delivery
        case .publish:
            return index == 0 ? delivery : nil
        case .send(let destination, let topic, let data):
            guard let destination else {
                // Everyone: each loop delivers to its clients; the first also publishes.
                return index == 0 ? delivery : .broadcast(event: topic, data: data, exclude: [])
            }
            guard let owner = owner(of: destination) else {
                // Not a client id: a room, on every loop; the first also publishes.
                return index == 0 ? delivery : .toRoom(room: destination, event: topic, data: data, exclude: [])
            }
            // A client: its loop delivers, the first loop publishes the client envelope.
            if index == owner { return index == 0 ? delivery : .toClient(id: destination, event: topic, data: data) }
            guard index == 0 else { return nil }
            return .publish(BusEnvelope(serverID: serverID, kind: .client, target: destination, event: topic, data: data))
        }
    }

    /// The loop of a client id; nil when the id cannot be one of this server's.
    @inline(__always)
    func owner(of id: String) -> Int? {
        guard let shard = IDGenerator.shard(of: id), shard < count else { return nil }
        return shard
    }
}
