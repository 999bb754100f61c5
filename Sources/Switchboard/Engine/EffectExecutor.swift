import SwitchboardBus

/// Performs the kernel's effects, in order: writes through the `Outbox`, closes through the
/// `FrameHandler` (or `Lifecycle` during shutdown), hooks through the `HookScheduler`, timers
/// on the driver, publishes on the bus.
final class EffectExecutor {
    private let outbox: Outbox
    private let frames: FrameHandler
    private let hooks: HookScheduler
    private let lifecycle: Lifecycle
    private let links: LinkRegistry
    private let driver: any Driver
    private let bus: any MessageBus
    private let presence: PresenceRelay
    private let history: HistoryRelay
    private let stats: Stats
    private let log: Logger
    private let outboundTransformer: (@Sendable (OutboundMessage) throws -> (event: String, data: JSONValue?)?)?
    /// Unchecked: armed and cancelled for every connection (the authentication timer, the
    /// heartbeat), a dynamic exclusivity check each; only `perform` on the loop touches it.
    @exclusivity(unchecked) private var timers = Timers()
    /// The kernel, for the outbound transformer's client (set once by the engine after it is built).
    unowned(unsafe) var engine: Engine?

    init(outbox: Outbox, frames: FrameHandler, hooks: HookScheduler, lifecycle: Lifecycle, links: LinkRegistry,
         driver: any Driver, bus: any MessageBus, presence: PresenceRelay, history: HistoryRelay, stats: Stats, log: Logger,
         outboundTransformer: (@Sendable (OutboundMessage) throws -> (event: String, data: JSONValue?)?)?) {
        self.outbox = outbox
        self.frames = frames
        self.hooks = hooks
        self.lifecycle = lifecycle
        self.links = links
        self.driver = driver
        self.bus = bus
        self.presence = presence
        self.history = history
        self.stats = stats
        self.log = log
        self.outboundTransformer = outboundTransformer
    }

    /// Performs one kernel step's effects in order.
    ///
    /// Each effect is moved out of the array, and `performed` (which holds no reference) is
    /// left in its slot, before the effect is performed: a message or payload is handed on
    /// (the client's message into `messageHandler`, without a copy) instead of being retained
    /// here and released when the array is emptied.
    ///
    /// `Kernel.replyPayload` depends on what the arrays hold: it refills its previous reply
    /// (`spareReply`) only when nothing else holds it (`isKnownUniquelyReferenced`), else it
    /// allocates a new one. A step's array is emptied before the next step at its depth
    /// (`EffectBuffers.take`), and within a step a performed `.send` leaves `performed`, not its
    /// payload, behind: so once a reply is written, only the kernel holds it, even when a hook
    /// performed later in the same step replies again. Breaking this fails nothing, it only
    /// allocates per reply; `ReentryTests.replyPayloadIsReused` checks the reuse across echoes.
    @inline(__always)
    func perform(all effects: inout [Effect]) {
        effects.withUnsafeMutableBufferPointer { effects in
            for slot in effects.indices {
                let effect = (effects.baseAddress! + slot).move()
                (effects.baseAddress! + slot).initialize(to: EffectExecutor.performed)
                perform(effect)
            }
        }
    }

    /// What a performed effect leaves in its slot: a trivial value with nothing to release.
    private static let performed = Effect.cancelTimer(TimerID(.server(.heartbeatSweep), generation: 0))

    private func perform(_ effect: consuming Effect) {
        switch effect {
        case .send, .sendTransformed, .close:
            outbox.keepOrder()
        default:
            break
        }
        switch consume effect {
        case .send(let handle, let payload):
            guard let link = links[handle] else { return }
            outbox.send(payload, to: link)
        case .fanOut(let handles, let payload):
            outbox.fanOut(payload, to: handles)
        case .sendTransformed(let handle, let event, let data):
            guard let link = links[handle] else { return }
            transformAndSend(link, event: event, data: data)
        case .close(let handle, let code):
            guard let link = links[handle] else { return }
            stats.closes[code.code, default: 0] += 1
            if code == .serverShutdown, lifecycle.isShuttingDown {
                lifecycle.closeLater(link)
            } else {
                frames.close(link, code: code.code, reason: code.reason)
            }
        case .armTimer(let timer, let deadline):
            driver.schedule(timers.arm(timer), at: deadline)
        case .cancelTimer(let timer):
            if let token = timers.cancel(timer) { driver.cancel(token) }
        case .callAuthenticate(let handle, let attempt, let data):
            hooks.authenticate(handle, attempt, data: data)
        case .callHandshake(let handle, let attempt, let clientID, let userID, let data):
            hooks.handshake(handle, attempt, clientID: clientID, userID: userID, data: data)
        case .callValidateRoom(let handle, let attempt, let clientID, let userID, let rooms):
            hooks.validateRoom(handle, attempt, clientID: clientID, userID: userID, rooms: rooms)
        case .callRefresh(let handle, let attempt, let clientID, let userID, let data):
            hooks.refresh(handle, attempt, clientID: clientID, userID: userID, data: data)
        case .callRPC(let handle, let clientID, let userID, let call):
            hooks.rpc(handle, clientID: clientID, userID: userID, call: call)
        case .callPublish(let handle, let clientID, let userID, let room, let data):
            hooks.publish(handle, clientID: clientID, userID: userID, room: room, data: data)
        case .callMessageHandler(_, let clientID, let userID, let message):
            hooks.messageHandler(clientID: clientID, userID: userID, message: consume message)
        case .callClientConnected(_, let clientID, let userID, let metadata):
            hooks.clientConnected(clientID: clientID, userID: userID, metadata: metadata)
        case .callClientDisconnected(_, let clientID, let userID):
            hooks.clientDisconnected(clientID: clientID, userID: userID)
        case .publish(let channel, let message):
            stats.published += 1
            bus.publish(channel: channel, message: message)
        case .log(let level, let text, let handle):
            if let handle {
                log.write(level, text, metadata: clientMetadata(handle))
            } else {
                log.write(level, text)
            }
        case .presenceChanged(let room, let member, let joined):
            presence.changed(room: room, member: member, joined: joined)
        case .queryPresence(_, let clientID, let room, let local):
            presence.query(clientID: clientID, room: room, local: local)
        case .appendHistory(let append):
            history.append(append)
        case .readHistory(let handle, let request, let room, let since):
            history.read(handle, request: request, room: room, since: since)
        case .queryHistory(_, let clientID, let query):
            history.query(clientID: clientID, query)
        case .released(let handle):
            guard let link = links[handle] else { return }
            link.isClient = false
            if let clientID = link.clientID { hooks.clientReleased(clientID) }
        }
    }

    /// `client_id` and `user_id` of the client a kernel log line is about: from the kernel's
    /// record while it has one, else from the connection (a client being released).
    private func clientMetadata(_ handle: ClientHandle) -> Logger.Metadata {
        if let client = engine!.kernel.client(handle) { return Logger.client(client.id, userID: client.userID) }
        return Logger.client(links[handle]?.clientID)
    }

    /// The kernel timer a driver token fired for, if it is one of the kernel's.
    func kernelTimer(firedWith token: UInt64) -> TimerID? {
        timers.fired(token)
    }

    /// An encrypted client's message: the app's transformer encrypts it (or it is sent as is
    /// when the transformer answers nil); a throw drops the message.
    private func transformAndSend(_ link: Link, event: String, data: JSONValue?) {
        guard let transform = outboundTransformer, let client = engine!.kernel.client(link.handle) else { return }
        var outEvent = event
        var outData = data
        do {
            if let replaced = try transform(OutboundMessage(clientID: client.id, userID: client.userID, event: event, data: data)) {
                outEvent = replaced.event
                outData = replaced.data
            }
        } catch {
            stats.hookFailures += 1
            log.write(.warning, "outboundTransformer threw: \(error); message dropped",
                      metadata: Logger.client(client.id, userID: client.userID))
            return
        }
        outbox.send(FrameCache.plain(Payload(event: outEvent, data: outData)), to: link)
    }
}
