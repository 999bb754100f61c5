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

    /// A bus message performed on one loop of its subscriber (each loop gets every message).
    func busArrived(_ delivery: BusDelivery, loop: Int) {
        advance()
        guard let publish = publishes[delivery.serial] else {
            problem("bus message m\(delivery.serial) arrived but was never published (or was lost)")
            return
        }
        guard loopServer[loop] != publish.server, !serverDown[loop] else { return }
        switch publish.type {
        case "broadcast":
            for r in authenticated[loop] where !excluded(r, publish.exclude) { expect(r, publish.tag, publish.event) }
        case "room":
            for r in roomMembers(loop, publish.target ?? "") where !excluded(r, publish.exclude) { expect(r, publish.tag, publish.event) }
        case "user":
            for r in userMembers(loop, publish.target ?? "") { expect(r, publish.tag, publish.event) }
        default:
            if let r = idIndex[publish.target ?? ""], clients[r].loop == loop, clients[r].phase == .authenticated {
                expect(r, publish.tag, publish.event)
            }
        }
    }

    func excluded(_ k: Int, _ ids: [String]) -> Bool {
        guard let id = clients[k].id else { return false }
        return ids.contains(id)
    }

    /// An application's API call on server `s`, made on loop `origin` (a hook's thread) or off
    /// the loops (nil; its parts are posted to the loops as call `post`).
    func appCall(server s: Int, _ call: SimWorld.ResolvedCall, tag: Tag, origin: Int?, post: Int) {
        advance()
        guard world?.shutdownRequested[s] != true else {
            expectThrow = true
            return
        }
        expectThrow = false
        let routed: RoutedCall = switch call {
        case .broadcast(let exclude): .broadcast(exclude: exclude)
        case .toRoom(let room, let exclude): .toRoom(room, exclude: exclude)
        case .toUser(let user): .toUser(user)
        case .toClient(let id): .toClient(id)
        case .send(let destination): .send(destination)
        case .publishBroadcast(let exclude): .publish(type: "broadcast", target: nil, exclude: exclude)
        case .publishRoom(let room, let exclude): .publish(type: "room", target: room, exclude: exclude)
        }
        route(routed, server: s, origin: origin, post: post, tag: tag, event: "app")
    }

    func appCallReturned(server s: Int, threw: String?) {
        if expectThrow == true, threw != "WebSocket not initialized" {
            problem("S\(s) API call after shutdown: \(threw.map { "threw \($0)" } ?? "did not throw"), expected \"WebSocket not initialized\"")
        }
        if expectThrow == false, let threw { problem("S\(s) API call threw \(threw)") }
        expectThrow = nil
    }
}
