/// Runs the application's hooks for the kernel's `call...` effects.
///
/// - `authenticate`, `handshake`, `validateRoom` are async: they run through `Driver.spawn`
///   (on the loop's executor with the POSIX driver) and their answers come back as kernel
///   inputs through `Driver.execute`, i.e. in a later loop turn.
/// - `clientConnected`/`clientDisconnected` are async too; nothing comes back but their count
///   (`running`), which graceful shutdown waits for.
/// - `messageHandler` and `clientReleased` are synchronous and run on the loop, in the middle of
///   performing the effects of an input: a delivery the handler makes re-enters the engine
///   (`Engine.deliverNow`, the contract described on `Engine`).
final class HookScheduler {
    private let hooks: Hooks
    private let driver: any Driver
    private let stats: Stats
    private let log: Logger
    /// Where answers go (set once by the engine after it is built).
    unowned(unsafe) var engine: Engine?
    /// Counts each client's unanswered calls, pausing its reading past the bound.
    private let flow: InboundFlow
    /// clientConnected/clientDisconnected calls still running. Unchecked: counted up and down
    /// for every callback, on the loop only.
    @exclusivity(unchecked) private(set) var running = 0

    init(hooks: Hooks, driver: any Driver, stats: Stats, log: Logger, flow: InboundFlow) {
        self.flow = flow
        self.hooks = hooks
        self.driver = driver
        self.stats = stats
        self.log = log
    }

    func authenticate(_ handle: ClientHandle, _ attempt: AttemptID, data: JSONValue) {
        if let withClient = hooks.authenticateClient {
            // The context is needed once: dropped here, it is not held for the connection's life.
            let link = engine!.links[handle]
            let context = link?.clientContext
            link?.clientContext = nil
            let request = AuthenticateRequest(clientID: link?.clientID ?? "", remoteAddress: context?.address ?? link?.peer ?? "",
                                              headers: context?.headers ?? [], data: data)
            return ask(.authenticate, for: handle) {
                do { return Self.authenticated(handle, attempt, try await withClient(request)) } catch {
                    return .authenticateReturned(handle, attempt, .threw(String(describing: error)))
                }
            }
        }
        guard let authenticate = hooks.authenticate else { return }
        // Once per connection, so the task's own closure calls the hook (as `ask` would, without
        // the closure `ask` takes: one allocation and one executor check fewer per login).
        let start = called(handle)
        let scheduler = UncheckedBox(self)
        driver.spawn {
            let answer: KernelInput
            do { answer = Self.authenticated(handle, attempt, try await authenticate(data)) } catch {
                answer = .authenticateReturned(handle, attempt, .threw(String(describing: error)))
            }
            scheduler.value.answered(answer, .authenticate, handle, startedAt: start)
        }
    }

    /// authenticateFn's answer (nil: rejected) as the kernel's input.
    private static func authenticated(_ handle: ClientHandle, _ attempt: AttemptID, _ result: AuthResult?) -> KernelInput {
        guard let result else { return .authenticateReturned(handle, attempt, .rejected) }
        return .authenticateReturned(handle, attempt, .ok(userID: result.userID, metadata: result.metadata,
                                                          expiresAt: result.expiresAt, rooms: result.rooms))
    }

    func handshake(_ handle: ClientHandle, _ attempt: AttemptID, clientID: String, userID: String?, data: JSONValue) {
        guard let handshake = hooks.handshake else { return }
        ask(.handshake, for: handle) {
            do {
                if let result = try await handshake(HandshakeRequest(clientID: clientID, userID: userID, data: data)) {
                    return .handshakeReturned(handle, attempt, .ok(serverPublicKey: result.serverPublicKey, salt: result.salt))
                }
                return .handshakeReturned(handle, attempt, .rejected)
            } catch {
                return .handshakeReturned(handle, attempt, .threw(String(describing: error)))
            }
        }
    }

    func validateRoom(_ handle: ClientHandle, _ attempt: AttemptID, clientID: String, userID: String?, rooms: [String]) {
        guard let validate = hooks.validateRoom else { return }
        ask(.validateRoom, for: handle) {
            do {
                let allowed = try await validate(RoomRequest(clientID: clientID, userID: userID, rooms: rooms))
                return .validateRoomReturned(handle, attempt, .ok(allowed))
            } catch {
                return .validateRoomReturned(handle, attempt, .threw(String(describing: error)))
            }
        }
    }

    func refresh(_ handle: ClientHandle, _ attempt: AttemptID, clientID: String, userID: String?, data: JSONValue) {
        guard let refresh = hooks.refresh else { return }
        ask(.refresh, for: handle) {
            do {
                if let result = try await refresh(RefreshRequest(clientID: clientID, userID: userID, data: data)) {
                    return .refreshReturned(handle, attempt, .ok(userID: result.userID, expiresAt: result.expiresAt))
                }
                return .refreshReturned(handle, attempt, .rejected)
            } catch {
                return .refreshReturned(handle, attempt, .threw(String(describing: error)))
            }
        }
    }

    func rpc(_ handle: ClientHandle, clientID: String, userID: String?, call: InboundMessage) {
        guard let rpc = hooks.rpc else { return }
        let method: String? = if case .string(let name)? = call.data?["method"] { name } else { nil }
        let request = RPCRequest(clientID: clientID, userID: userID, method: method, data: call.data?["data"])
        ask(.rpc, for: handle) {
            do {
                if let result = try await rpc(request) { return .rpcReturned(handle, call: call, .ok(result.result)) }
                return .rpcReturned(handle, call: call, .rejected)
            } catch {
                return .rpcReturned(handle, call: call, .threw(String(describing: error)))
            }
        }
    }

    func publish(_ handle: ClientHandle, clientID: String, userID: String?, room: String, data: JSONValue?) {
        guard let publish = hooks.publish else { return }
        ask(.publish, for: handle) {
            do {
                let request = PublishRequest(clientID: clientID, userID: userID, room: room, data: data)
                if let result = try await publish(request) { return .publishReturned(handle, room: room, .ok(result.data)) }
                return .publishReturned(handle, room: room, .rejected)
            } catch {
                return .publishReturned(handle, room: room, .threw(String(describing: error)))
            }
        }
    }

    /// On the loop, at once: a throw is counted and logged, and changes nothing else.
    @inline(__always)
    func messageHandler(clientID: String, userID: String?, message: consuming InboundMessage) {
        guard let handler = hooks.messageHandler else { return }
        do {
            try handler(ClientMessage(clientID: clientID, userID: userID, message: consume message))
        } catch {
            stats.hookFailures += 1
            log.write(.warning, "messageHandler threw: \(error)", metadata: Logger.client(clientID, userID: userID))
        }
    }

    func clientConnected(clientID: String, userID: String?, metadata: JSONValue?) {
        guard let connected = hooks.clientConnected else { return }
        notify(.clientConnected, connected, ClientEvent(clientID: clientID, userID: userID, metadata: metadata))
    }

    func clientDisconnected(clientID: String, userID: String?) {
        guard let disconnected = hooks.clientDisconnected else { return }
        notify(.clientDisconnected, disconnected, ClientEvent(clientID: clientID, userID: userID, metadata: nil))
    }

    func clientReleased(_ clientID: String) {
        hooks.clientReleased?(clientID)
    }

    /// Runs an async hook off the loop; its answer comes back as a kernel input on the loop.
    /// Its latency (effect to the loop turn taking the answer) goes to `stats.hookLatency[hook]`.
    private func ask(_ hook: Hook, for handle: ClientHandle, _ body: @escaping @Sendable () async -> KernelInput) {
        let start = called(handle)
        let scheduler = UncheckedBox(self)
        driver.spawn {
            let answer = await body()
            scheduler.value.answered(answer, hook, handle, startedAt: start)
        }
    }

    /// A hook is called for `handle`: counted as unanswered; returns when (for its latency).
    private func called(_ handle: ClientHandle) -> Int64 {
        flow.hookCalled(handle)
        return driver.now.monotonic
    }

    /// Hands a hook's answer to the loop, where it is counted and given to the kernel. From
    /// the hook's task, on any thread (it reads only what is set before the loop runs).
    private func answered(_ answer: KernelInput, _ hook: Hook, _ handle: ClientHandle, startedAt start: Int64) {
        let scheduler = UncheckedBox(self)
        driver.execute {
            let this = scheduler.value
            this.stats.hookAnswered(hook, startedAt: start, now: this.driver.now.monotonic)
            this.flow.hookAnswered(handle)
            this.engine!.input(answer)
        }
    }

    /// A callback whose throw is logged and changes nothing; counted while it runs. The task
    /// calls `callback` itself: a closure around the call cost one more allocation per call.
    private func notify(_ hook: Hook, _ callback: @escaping @Sendable (ClientEvent) async throws -> Void,
                        _ event: ClientEvent) {
        let log = self.log
        let scheduler = UncheckedBox(self)
        let driver = self.driver
        let start = driver.now.monotonic
        running += 1
        driver.spawn {
            var failed = false
            do { try await callback(event) } catch {
                log.write(.warning, "\(hook)Fn threw: \(error)", metadata: Logger.client(event.clientID, userID: event.userID))
                failed = true
            }
            driver.execute { [failed] in
                scheduler.value.stats.hookAnswered(hook, startedAt: start, now: driver.now.monotonic)
                scheduler.value.finished(failed: failed)
            }
        }
    }

    private func finished(failed: Bool) {
        running -= 1
        if failed { stats.hookFailures += 1 }
        engine!.lifecycle.connectionOrCallbackEnded()
    }
}

/// Moves a loop-confined reference into a closure that runs back on the loop.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
