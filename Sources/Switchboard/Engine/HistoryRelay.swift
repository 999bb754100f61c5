import SwitchboardBus
import SwitchboardKernel

/// Connects the kernel's history effects to the history store: a message to a room with
/// history is recorded once per instance (by the first loop's engine: every loop's kernel asks,
/// as each performs its part of a delivery) and delivered with its offset; a join of such a
/// room reads the store and the answer goes back into the kernel of the client's loop; a
/// `history` query (a member's, or the server API's) reads it and is answered with
/// `HistoryAnswer`.
///
/// An in-memory store gives the offset at once: the message goes to every loop's kernel
/// (`dispatch`, in offset order: it is called under the store's lock) and, when the
/// application's request publishes, to the other instances as a plain envelope (they do not
/// share this instance's history). The Redis store publishes the stamped envelope itself, and
/// every instance, this one too, delivers it when its subscription hears it.
final class HistoryRelay {
    private let store: (any HistoryStore)?
    private let driver: any Driver
    private let bus: any MessageBus
    /// Whether this engine records (the first loop's), or leaves it to that one.
    let records: Bool
    /// Hands a recorded message to every loop's kernel (set by the server; by default this
    /// engine's alone).
    var dispatch: (@Sendable (HistoryMessage) -> Void)?
    /// Set once by the engine after it is built (as the other parts' back references).
    unowned(unsafe) var engine: Engine?
    /// For a store that publishes: the records of the current loop event, handed to the store
    /// together when it ends (`submitRecords`).
    private var unsubmitted: [HistoryRecord] = []

    init(store: (any HistoryStore)?, records: Bool, driver: any Driver, bus: any MessageBus) {
        self.store = store
        self.records = records
        self.driver = driver
        self.bus = bus
    }

    func append(_ append: HistoryAppend) {
        guard records, let store else { return }
        let (parts, offsetFirst) = append.envelope.encodedAroundStamp()
        let record = HistoryRecord(room: append.room, message: append.message, channel: append.envelope.channel,
                                   envelopeParts: parts, offsetFirst: offsetFirst)
        if store.publishes {
            // Delivered when the subscription hears it: the event's messages (a client read of
            // many) go to Redis together and come back in one read (`append(all:)`).
            unsubmitted.append(record)
            if unsubmitted.count == 1 {
                let engine = UncheckedBox(engine!)
                driver.execute { engine.value.history.submitRecords() }
            }
            return
        }
        let deliver = dispatch ?? { [engine = UncheckedBox(engine!)] message in
            engine.value.driver.execute { engine.value.inputQueued(.historyMessage(message)) }
        }
        store.append(record) { offset, epoch in
            deliver(HistoryMessage(room: append.room, offset: offset, epoch: epoch, event: append.event,
                                   data: append.data, exclude: append.exclude))
        }
        if append.publish, !store.publishes {
            bus.publish(channel: append.envelope.channel, message: append.envelope.encoded())
        }
    }

    /// Hands the records collected in this loop event to the store.
    func submitRecords() {
        guard !unsubmitted.isEmpty, let store else { return }
        let taken = unsubmitted
        unsubmitted = []
        store.append(all: taken)
    }

    func read(_ handle: ClientHandle, request: UInt64, room: String, since: HistoryPosition?) {
        // The appends made before this read reach the store before it, as they were made.
        submitRecords()
        guard let store else {
            engine!.input(.historyRead(handle, request: request, room: room, .failed(nil, .unavailable)))
            return
        }
        let engine = UncheckedBox(self.engine!)
        let driver = self.driver
        store.read(room: room, after: since?.offset) { snapshot in
            let read = HistoryRead.decide(since: since, epoch: snapshot?.epoch, offset: snapshot?.offset ?? 0,
                                          kept: snapshot?.entries.map { HistoryEntry(offset: $0.offset, message: $0.message) } ?? [])
            driver.execute { engine.value.input(.historyRead(handle, request: request, room: room, read)) }
        }
    }

    /// A member's `history` query: read as `query` asks and answer the client with `history`,
    /// as a delivery to it (its state and the outbound transformer apply, as for `presence`).
    func query(clientID: String, _ query: HistoryQuery) {
        let engine = UncheckedBox(self.engine!)
        let driver = self.driver
        answer(query) { answer in
            driver.execute {
                engine.value.input(.deliver(.toClient(id: clientID, event: KernelMessage.history.event, data: answer.json)))
            }
        }
    }

    /// The answer to `query` (a member's, or the server API's), on any thread. With `since`, the
    /// messages after it when the store still has them all; else, and without `since`, the last
    /// `limit` (a second read), with the reason `since` failed.
    func answer(_ query: HistoryQuery, _ answer: @escaping @Sendable (HistoryAnswer) -> Void) {
        guard let store else { return answer(.unavailable(query.room)) }
        let readLast: @Sendable (RecoveryFailure?) -> Void = { reason in
            store.readLast(room: query.room, count: query.limit) { snapshot in
                answer(.last(query, epoch: snapshot?.epoch, offset: snapshot?.offset ?? 0,
                             kept: snapshot?.entries.map { HistoryEntry(offset: $0.offset, message: $0.message) } ?? [],
                             reason: reason))
            }
        }
        guard let since = query.since else { return readLast(nil) }
        store.read(room: query.room, after: since.offset) { snapshot in
            let (found, failure) = HistoryAnswer.after(query, epoch: snapshot?.epoch, offset: snapshot?.offset ?? 0,
                                                       kept: snapshot?.entries.map { HistoryEntry(offset: $0.offset, message: $0.message) } ?? [])
            if let found { answer(found) } else { readLast(failure) }
        }
    }

    func start() { store?.start() }
    func close() { store?.close() }
}
