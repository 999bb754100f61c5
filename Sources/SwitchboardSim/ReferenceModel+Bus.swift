import Switchboard
import SwitchboardCodec
import SwitchboardDriverSupport

/// The reference model's bus and application calls: what each publish, bus message and API
/// call should deliver, and to whom.
extension ReferenceModel {
    func published(server s: Int, serial: Int, channel: String, message: [UInt8], lost: Bool) {
        guard let value = try? JSONValue.parse(message), let tag = Tag(value["data"]) else {
            problem("S\(s) published an envelope the model cannot read on \(channel): \(String(decoding: message.prefix(120), as: UTF8.self))")
            return
        }
        guard let index = pendingPublishes.firstIndex(where: { $0.server == s && $0.channel == channel && $0.tag == tag }) else {
            problem("S\(s) published \(tag) on \(channel) unexpectedly")
            return
        }
        let expected = pendingPublishes.remove(at: index)
        let exclude = value["exclude"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if value["serverId"]?.stringValue != serverIDs[s] || value["type"]?.stringValue != expected.type
            || value["target"]?.stringValue != expected.target || value["event"]?.stringValue != expected.event
            || exclude != expected.exclude {
            problem("S\(s) published \(String(decoding: message, as: UTF8.self)); expected type \(expected.type) target \(expected.target ?? "none") event \(expected.event) exclude \(expected.exclude)")
        }
        if !lost { publishes[serial] = expected }
    }

    func busArrived(_ delivery: BusDelivery) {
        advance()
        guard let publish = publishes[delivery.serial] else {
            problem("bus message m\(delivery.serial) arrived but was never published (or was lost)")
            return
        }
        let s = delivery.to
        guard s != publish.server, !serverDown[s] else { return }
        switch publish.type {
        case "broadcast":
            for r in authenticated[s] where !excluded(r, publish.exclude) { expect(r, publish.tag, publish.event) }
        case "room":
            for r in roomMembers(s, publish.target ?? "") where !excluded(r, publish.exclude) { expect(r, publish.tag, publish.event) }
        case "user":
            for r in userMembers(s, publish.target ?? "") { expect(r, publish.tag, publish.event) }
        default:
            if let r = idIndex[publish.target ?? ""], clients[r].server == s, clients[r].phase == .authenticated {
                expect(r, publish.tag, publish.event)
            }
        }
    }

    func excluded(_ k: Int, _ ids: [String]) -> Bool {
        guard let id = clients[k].id else { return false }
        return ids.contains(id)
    }

    func appCall(server s: Int, _ call: SimWorld.ResolvedCall, tag: Tag) {
        advance()
        guard world?.shutdownRequested[s] != true else {
            expectThrow = true
            return
        }
        expectThrow = false
        switch call {
        case .broadcast(let exclude):
            for r in authenticated[s] where !excluded(r, exclude) { expect(r, tag, "app") }
        case .toRoom(let room, let exclude):
            for r in roomMembers(s, room) where !excluded(r, exclude) { expect(r, tag, "app") }
        case .toUser(let user):
            for r in userMembers(s, user) { expect(r, tag, "app") }
        case .toClient(let id):
            if let r = idIndex[id], clients[r].server == s, clients[r].phase == .authenticated { expect(r, tag, "app") }
        case .send(let destination):
            send(server: s, destination: destination, event: "app", tag: tag)
        case .publishBroadcast(let exclude):
            expectPublish(Publish(server: s, channel: "ws:broadcast", type: "broadcast", target: nil, event: "app", tag: tag, exclude: exclude))
        case .publishRoom(let room, let exclude):
            expectPublish(Publish(server: s, channel: "ws:room:\(room)", type: "room", target: room, event: "app", tag: tag, exclude: exclude))
        }
    }

    func appCallReturned(server s: Int, threw: String?) {
        if expectThrow == true, threw != "WebSocket not initialized" {
            problem("S\(s) API call after shutdown: \(threw.map { "threw \($0)" } ?? "did not throw"), expected \"WebSocket not initialized\"")
        }
        if expectThrow == false, let threw { problem("S\(s) API call threw \(threw)") }
        expectThrow = nil
    }
}
