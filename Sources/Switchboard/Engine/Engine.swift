import SwitchboardBus
import SwitchboardCodec

/// The sans-IO server core: connects the pure kernel to a driver. It lives on the driver's
/// loop and never blocks. This type only coordinates; each job is a type of its own in this
/// folder:
///
/// | type | job |
/// |---|---|
/// | `LinkRegistry`, `Link` | open connections by driver id and by kernel handle; per-address limit |
/// | `Upgrade` | HTTP request head -> 101 (with permessage-deflate) or an HTTP answer |
/// | `FrameHandler` | an upgraded connection's frames: messages, ping/pong, close, raw echo |
/// | `EffectExecutor` | the kernel's effects, in order |
/// | `Outbox`, `FanOutBatch`, `FrameCache` | writes under backpressure, batched fan-out, frames built once |
/// | `HookScheduler` | the application's hooks, and how their answers come back |
/// | `InboundFlow` | pauses reading from a client with too many hook calls unanswered |
/// | `Lifecycle`, `Timers` | pings, idle and upgrade timeouts, graceful shutdown; timer tokens |
///
/// ## A message's path
///
/// 1. The driver reports bytes (`bytesReceived`). Before the upgrade they go to `Upgrade`;
///    after it, to `FrameHandler`, which decodes frames and hands each message to `input`.
/// 2. `input` runs one kernel step (`Kernel.handle`) and gives its effects to the
///    `EffectExecutor`, which performs them in order.
/// 3. Effects write through the `Outbox`. A reply to one client is copied into the driver's
///    queue at once. A small fan-out waits in the `Outbox`'s batch, which is written (once per
///    recipient) when `bytesReceived` returns, or before any other write that must follow it.
/// 4. Inputs raised while effects are performed (a message dropped for backpressure, a
///    timer, an answer of an async hook) wait in `pending` and are handled, in order, before
///    the outermost `input` returns. Async hooks answer in a later loop turn.
///
/// ## Re-entry: a delivery made from a hook is performed at once
///
/// `messageHandler`, `outboundTransformer` and `clientReleased` run on the loop while the
/// effects of an input are being performed. When such a hook delivers a
/// message (`Server.send...`, which calls `deliverNow`), that delivery is a kernel step of
/// its own, *nested* in the current one, and its effects are performed before the hook
/// returns, as `ws.send` in the original writes before the handler returns. This is safe
/// because the kernel is always between steps when a hook runs (its `handle` has returned;
/// only the effects are still being performed), and it is specified here as a contract:
///
/// - the nested step's writes reach the driver before the hook returns, so they precede every
///   effect that follows the hook's in the outer step;
/// - the nested step's fan-outs join the same batch, flushed by the same rule (step 3);
/// - inputs the nested step raises (`pending`) are handled after the outer step, in order.
///
/// A delivery made on the loop anywhere else (an `httpHandler`, a task on the loop's
/// executor) is an ordinary input: performed at once, its fan-outs written when it returns
/// (or when `bytesReceived` returns, if it is made inside it).
///
/// The alternative, queuing such a delivery in `pending` as an ordinary input (performed after
/// the current step), was measured slower: 8,778 instead of 7,658 server instructions per echo
/// round trip (callgrind, the bench/README method, 2026-12-07), and echo-pipelined went from
/// 778k to 872k round trips/s when the delivery was first performed at once (bench/README.md).
/// `EngineTests.ReentryTests` test the contract.
final class Engine: DriverEvents {
    let options: ServerOptions
    let hooks: Hooks
    let driver: any Driver
    let bus: any MessageBus
    let log: Logger
    let stats = Stats()
    // `@exclusivity(unchecked)` is kept only where callgrind (the bench/README method: server
    // instructions per echo round trip) showed it pays. A dynamic exclusivity check costs about
    // 100 instructions (swift_beginAccess with its thread-local access set). With no mark in this
    // folder: 9,115 per round trip; with all of them: 7,658 (before the split: 7,560). These five
    // save 8 checks per round trip, about 1,000 instructions (the rest: `Link`, `Stats`,
    // `Outbox.batch`, `FrameHandler.engine` 372, `LinkRegistry.slots` 90). No access to them
    // overlaps another: the kernel is between steps whenever a hook runs (see above), and
    // `step` holds no access across the effects it performs.
    @exclusivity(unchecked) var kernel: Kernel

    let links: LinkRegistry
    let outbox: Outbox
    let upgrade: Upgrade
    let frames: FrameHandler
    let hookScheduler: HookScheduler
    let lifecycle: Lifecycle
    let executor: EffectExecutor
    let presence: PresenceRelay
    let history: HistoryRelay

    /// Unchecked: one id per connection, and `uuid()` mutates it (a dynamic check each).
    @exclusivity(unchecked) private var ids: IDGenerator
    /// Inputs raised while a step's effects are performed, handled after it (step 4).
    @exclusivity(unchecked) private var pending: [KernelInput] = []
    /// Inside the outermost `input`: new inputs go to `pending`.
    @exclusivity(unchecked) private var draining = false
    /// The effects arrays of the outer and of a nested step, reused.
    @exclusivity(unchecked) private var effects = EffectBuffers()
    /// Inside `bytesReceived`: its fan-outs are written when it returns, not after each input.
    @exclusivity(unchecked) private var receiving = false
    /// A flush of the fan-outs of `inputQueued` inputs is queued behind them on the loop.
    private var queuedFlush = false
    /// The step being performed is an application delivery (`.deliver`): what it publishes the
    /// application asked for, not a client (`ShardBus`, with several loops, tells them apart).
    private(set) var stepDelivers = false

    /// `peers`: the per-address connection counts, shared by the engines of one server's loops.
    init(options: ServerOptions, hooks: Hooks, driver: any Driver, bus: any MessageBus, serverID: String,
         ids: IDGenerator, log: Logger, presenceStore: (any PresenceStore)? = nil, peers: PeerCounts = PeerCounts(),
         historyStore: (any HistoryStore)? = nil, recordsHistory: Bool = true) {
        var settings = options.kernelSettings
        settings.handshakeConfigured = hooks.handshake != nil
        settings.validateRoomConfigured = hooks.validateRoom != nil
        settings.messageHandlerConfigured = hooks.messageHandler != nil
        settings.refreshConfigured = hooks.refresh != nil
        settings.rpcConfigured = hooks.rpc != nil
        settings.publishConfigured = hooks.publish != nil
        settings.outboundTransformerConfigured = hooks.outboundTransformer != nil
        self.options = options
        self.hooks = hooks
        self.driver = driver
        self.bus = bus
        self.ids = ids
        self.log = log
        self.kernel = Kernel(settings: settings, serverID: serverID)

        let stats = self.stats
        links = LinkRegistry(maxHeaderBytes: options.maxHeaderBytes, maxConnectionsPerIP: options.maxConnectionsPerIP,
                             peers: peers)
        outbox = Outbox(driver: driver, stats: stats, links: links, backpressureLimit: options.backpressureLimit,
                        compressionThreshold: options.compressionThreshold)
        upgrade = Upgrade(driver: driver, links: links, options: options, httpHandler: hooks.httpHandler,
                          keepsClientContext: hooks.authenticateClient != nil)
        frames = FrameHandler(driver: driver, stats: stats, outbox: outbox, options: options, log: log)
        hookScheduler = HookScheduler(hooks: hooks, driver: driver, stats: stats, log: log,
                                      flow: InboundFlow(driver: driver, links: links, limit: options.maxPendingHookCalls))
        lifecycle = Lifecycle(periods: Lifecycle.Periods(settings), driver: driver, links: links, stats: stats,
                              upgrade: upgrade, frames: frames, hooks: hookScheduler)
        presence = PresenceRelay(store: presenceStore, driver: driver)
        // An engine made without a server's store (tests) keeps its rooms' history in memory.
        let store = historyStore ?? (options.historyRooms.isEmpty ? nil
            : InMemoryHistoryStore(size: options.historySize, ttlMilliseconds: options.historyTTL))
        history = HistoryRelay(store: store, records: recordsHistory, driver: driver, bus: bus)
        executor = EffectExecutor(outbox: outbox, frames: frames, hooks: hookScheduler, lifecycle: lifecycle,
                                  links: links, driver: driver, bus: bus, presence: presence, history: history,
                                  stats: stats, log: log,
                                  outboundTransformer: hooks.outboundTransformer)
        // The parts' references back to the engine, through which they raise inputs: not
        // retained (the engine owns the parts; no cycle), and not weak (a weak reference gives
        // the engine a side table, and every retain of it takes the slow path).
        outbox.engine = self
        frames.engine = self
        hookScheduler.engine = self
        lifecycle.engine = self
        executor.engine = self
        presence.engine = self
        history.engine = self
    }

    /// Arms the kernel's sweep and the transport idle sweep. On the loop.
    func started() {
        input(.started)
        lifecycle.started()
    }

    /// Graceful shutdown (`Lifecycle.beginShutdown`).
    func beginShutdown(done: @escaping @Sendable () -> Void) {
        lifecycle.beginShutdown(done: done)
    }

    // MARK: - Kernel steps

    /// Runs one kernel step and performs its effects; inputs raised meanwhile are queued behind
    /// it (see the type's documentation). Batched fan-outs are written when the outermost call
    /// returns, unless it is inside `bytesReceived`, which writes them when it returns.
    func input(_ input: KernelInput) {
        guard !draining else {
            pending.append(input)
            return
        }
        draining = true
        step(input)
        var index = 0
        while index < pending.count {
            let next = pending[index]
            index += 1
            step(next)
        }
        pending.empty()
        draining = false
        if !receiving { outbox.flush() }
    }

    /// An input handed over through the loop's queue (`Driver.execute`) by another loop: its
    /// fan-outs are written after every input queued with it has run, in one write per
    /// recipient for them all, as `bytesReceived` writes those of many messages. Performed one
    /// by one (each flushing its own), a fan-out spread over two loops cost 2.4 times the
    /// instructions per delivery of one loop (`scripts/callgrind fanout`, bench/README.md).
    func inputQueued(_ input: KernelInput) {
        if !queuedFlush {
            queuedFlush = true
            let engine = UncheckedBox(self)
            driver.execute {
                engine.value.queuedFlush = false
                engine.value.outbox.flush()
            }
        }
        let outer = receiving
        receiving = true
        self.input(input)
        receiving = outer
    }

    /// The messages one read of the bus brought, in order, in one loop task: their fan-outs
    /// are written when the last has run, one write per recipient for them all, as
    /// `bytesReceived` writes those of a client's messages. One by one, each flushing its own,
    /// a burst of history messages read back from Redis cost 3.5 times the CPU per delivery
    /// of the same burst published locally (scripts/bench-history, bench/redis.md).
    func input(busMessages messages: [BusMessage]) {
        let outer = receiving
        receiving = true
        for message in messages { input(.busMessage(channel: message.channel, message: message.message)) }
        receiving = outer
        if !receiving { outbox.flush() }
    }

    /// A delivery made on the loop by the application (`Server.send...`). Made by a hook while
    /// a step's effects are performed, it is performed at once, nested (the re-entry contract
    /// above); made anywhere else on the loop, it is an ordinary input.
    func deliverNow(_ delivery: Delivery) {
        guard draining else { return input(.deliver(delivery)) }
        step(.deliver(delivery))
    }

    @inline(__always)
    private func step(_ input: KernelInput) {
        let outer = stepDelivers
        if case .deliver = input { stepDelivers = true } else { stepDelivers = false }
        defer { stepDelivers = outer }
        var current = effects.take()
        kernel.handle(input, now: driver.now, into: &current)
        executor.perform(all: &current)
        effects.giveBack(current)
    }

    // MARK: - Driver events

    func connectionOpened(_ id: ConnectionID, peer: String) {
        // A trusted proxy's connections are counted per client once the request names it.
        guard links.open(id, peer: peer, now: driver.now.monotonic, countPeer: !upgrade.proxies.isTrusted(peer)) != nil else {
            stats.rejectedConnections += 1
            driver.close(id, flushFirst: false)
            return
        }
        stats.connectionsAccepted += 1
        if lifecycle.isShuttingDown { driver.close(id, flushFirst: false) }
    }

    func bytesReceived(_ id: ConnectionID, _ bytes: UnsafeRawBufferPointer) {
        guard let link = links[id], !link.closing else { return }
        receiving = true
        defer {
            receiving = false
            outbox.flush()
        }
        link.lastReceive = driver.now.monotonic
        stats.bytesIn += bytes.count
        if link.isUpgraded {
            frames.receive(link, bytes)
        } else {
            switch upgrade.receive(link, bytes) {
            case .needMore, .answered:
                break
            case .upgraded(let consumed):
                upgraded(link)
                if consumed < bytes.count { frames.receive(link, UnsafeRawBufferPointer(rebasing: bytes[consumed...])) }
            }
        }
    }

    /// A new WebSocket: the kernel gets a client for it (unless raw echo or shutting down).
    private func upgraded(_ link: Link) {
        stats.upgrades += 1
        guard !options.rawEcho, !lifecycle.isShuttingDown else { return }
        link.isClient = true
        let clientID = ids.uuid()
        link.clientID = clientID
        input(.opened(link.handle, id: clientID))
    }

    func connectionDrained(_ id: ConnectionID) {
        links[id]?.backpressured = false
    }

    func connectionClosed(_ id: ConnectionID) {
        guard let link = links.remove(id) else { return }
        if link.isClient { input(.closed(link.handle)) }
        lifecycle.connectionOrCallbackEnded()
    }

    func timerFired(_ token: UInt64) {
        if lifecycle.timerFired(token) { return }
        if let timer = executor.kernelTimer(firedWith: token) { input(.timerFired(timer)) }
    }

    // MARK: - Gauges

    var connectionCount: Int { links.count }
    var backpressuredCount: Int { links.all.reduce(0) { $0 + ($1.backpressured ? 1 : 0) } }
}

/// The effects arrays of kernel steps, kept for their capacity: one for the outer step and
/// one for a step nested in it (a hook's delivery, every echo). Deeper steps (a hook inside a
/// nested step) get a new array.
struct EffectBuffers {
    private var outer: [Effect] = []
    private var nested: [Effect] = []
    private var depth = 0

    /// An empty array for a step starting now.
    @inline(__always)
    mutating func take() -> [Effect] {
        var buffer: [Effect] = []
        if depth == 0 { swap(&buffer, &outer) } else if depth == 1 { swap(&buffer, &nested) }
        depth += 1
        buffer.empty()
        return buffer
    }

    /// The array of the step that ended.
    @inline(__always)
    mutating func giveBack(_ buffer: consuming [Effect]) {
        depth -= 1
        if depth == 0 { outer = buffer } else if depth == 1 { nested = buffer }
    }
}

extension Array {
    /// `removeAll(keepingCapacity: true)` for the few elements of a per-step array: popped one
    /// by one, where the library's version goes through the generic `replaceSubrange` (about
    /// 190 instructions for a kernel step's one or two effects, twice per echo round trip).
    @inline(__always)
    mutating func empty() {
        while popLast() != nil {}
    }
}
