import SwitchboardBus
import SwitchboardKernel

/// Connects the kernel's presence effects to the presence store: room changes are written to
/// it, and a `presence` query is answered with the kernel's local members merged with the
/// store's (other instances). Without a store (one instance) the local members are the answer,
/// with those of the process's other loops (`otherLoops`) when it runs several.
///
/// The answer goes back into the kernel as a delivery to the asking client, so it meets the
/// same rules as any message to it (its state, the outbound transformer).
final class PresenceRelay {
    private let store: (any PresenceStore)?
    private let driver: any Driver
    /// Set once by the engine after it is built (as the other parts' back references).
    unowned(unsafe) var engine: Engine?
    /// With several loops and no store: reads a room's members on the other loops and answers
    /// on any thread (set by the server: `ShardSet.presence(ofRoom:except:answer:)`). With a
    /// store, every loop writes its members there, and the store's answer has them all.
    var otherLoops: ((_ room: String, _ answer: @escaping @Sendable ([PresenceMember]) -> Void) -> Void)?

    init(store: (any PresenceStore)?, driver: any Driver) {
        self.store = store
        self.driver = driver
    }

    func changed(room: String, member: PresenceMember, joined: Bool) {
        guard let store else { return }
        var bytes: [UInt8] = []
        member.json.serialize(into: &bytes)
        store.changed(room: room, clientID: member.clientID, member: bytes, joined: joined)
    }

    func query(clientID: String, room: String, local: [PresenceMember]) {
        let relay = UncheckedBox(self)
        let driver = self.driver
        guard let store else {
            guard let otherLoops else { return answer(clientID: clientID, room: room, local: local, remote: []) }
            otherLoops(room) { others in
                driver.execute { relay.value.answer(clientID: clientID, room: room, local: local, remote: others) }
            }
            return
        }
        store.members(room: room) { entries in
            let remote = Self.members(entries)
            driver.execute { relay.value.answer(clientID: clientID, room: room, local: local, remote: remote) }
        }
    }

    /// The store's entries as members; an entry that is not a member's JSON is skipped.
    static func members(_ entries: [[UInt8]]) -> [PresenceMember] {
        entries.compactMap { bytes in (try? JSONValue.parse(bytes)).flatMap(PresenceMember.init(json:)) }
    }

    private func answer(clientID: String, room: String, local: [PresenceMember], remote: [PresenceMember]) {
        let data = Kernel.presenceAnswer(room: room, local: local, remote: remote)
        engine!.input(.deliver(.toClient(id: clientID, event: KernelMessage.presence.event, data: data)))
    }

    /// The members of a room on every instance, for the server API: `local` from the kernel,
    /// merged with the store's; answered on any thread.
    func members(room: String, local: [PresenceMember], answer: @escaping @Sendable ([PresenceMember]) -> Void) {
        guard let store else {
            answer(local)
            return
        }
        store.members(room: room) { entries in
            var byID: [String: PresenceMember] = [:]
            for member in Self.members(entries) { byID[member.clientID] = member }
            for member in local { byID[member.clientID] = member }
            answer(byID.values.sorted { $0.clientID < $1.clientID })
        }
    }

    func start() { store?.start() }
    func close() { store?.close() }
}
