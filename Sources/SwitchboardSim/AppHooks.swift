import FixtureRouting
import Switchboard

/// The application the simulated servers run: hooks whose answers each client scripted in its
/// `authenticate` data, a messageHandler routing tagged events by the fixture's routes, an
/// outbound transformer that wraps messages for encrypted clients, and scheduled API calls.
extension SimWorld {
    /// An API call the application makes, with its ids resolved at call time.
    enum ResolvedCall {
        case broadcast(exclude: [String])
        case toRoom(String, exclude: [String])
        case toUser(String)
        case toClient(String)
        case send(destination: String?)
        case publishBroadcast(exclude: [String])
        case publishRoom(String, exclude: [String])
    }

    func makeHooks(server: Int) -> Hooks {
        let ref = WorldRef(self)
        var hooks = Hooks(authenticate: { data in
            guard let world = ref.world else { return nil }
            return try world.authenticateHook(data)
        })
        if config.hooks.handshakeConfigured {
            hooks.handshake = { request in
                guard let world = ref.world else { return nil }
                return try world.handshakeHook(request)
            }
        }
        if config.hooks.validateRoomConfigured {
            hooks.validateRoom = { request in
                guard let world = ref.world else { return [] }
                return try world.validateRoomHook(request)
            }
        }
        hooks.clientConnected = { event in try ref.world?.callbackHook(connected: true, event) }
        hooks.clientDisconnected = { event in try ref.world?.callbackHook(connected: false, event) }
        hooks.messageHandler = { message in try ref.world?.handleMessage(server: server, message) }
        if config.options.requireEncryption {
            hooks.outboundTransformer = { message in
                guard message.event != "echo" else { return nil }
                return (event: "encrypted", data: ["wrapped": ["event": .string(message.event), "data": message.data ?? .null]])
            }
        }
        return hooks
    }

    // The async hooks run in a Task while the sim thread waits in `spawn`.

    func authenticateHook(_ data: JSONValue) throws -> AuthResult? {
        guard let k = data["sim"]?.numberValue?.int, clients.indices.contains(k) else {
            record("authenticateFn got data that names no client: \(data)")
            return nil
        }
        model.hookCalled(.authenticate(client: k, data: data))
        spawnContext?.latency = Int64(data["lat"]?.numberValue?.int ?? 1)
        switch data["auth"]?.stringValue {
        case "ok":
            let user = data["user"]?.stringValue
            spawnContext?.answer = .authenticate(client: k, .ok(user: user))
            return AuthResult(userID: user, metadata: ["k": JSONValue(k)])
        case "throw":
            spawnContext?.answer = .authenticate(client: k, .threw)
            throw SimHookError(description: "scripted authenticateFn failure")
        default:
            spawnContext?.answer = .authenticate(client: k, .rejected)
            return nil
        }
    }

    func handshakeHook(_ request: HandshakeRequest) throws -> HandshakeResult? {
        guard let k = request.data["sim"]?.numberValue?.int, clients.indices.contains(k) else {
            record("handshakeFn got data that names no client: \(request.data)")
            return nil
        }
        model.hookCalled(.handshake(client: k, clientID: request.clientID, userID: request.userID, data: request.data))
        spawnContext?.latency = Int64(request.data["hsLat"]?.numberValue?.int ?? 1)
        switch request.data["hs"]?.stringValue {
        case "ok":
            let result = HandshakeResult(serverPublicKey: "spk-\(k)", salt: "salt-\(k)")
            spawnContext?.answer = .handshake(client: k, .ok(key: result.serverPublicKey, salt: result.salt))
            return result
        case "throw":
            spawnContext?.answer = .handshake(client: k, .threw)
            throw SimHookError(description: "scripted handshakeFn failure")
        default:
            spawnContext?.answer = .handshake(client: k, .rejected)
            return nil
        }
    }

    func validateRoomHook(_ request: RoomRequest) throws -> [String] {
        guard let k = model.client(forID: request.clientID) else {
            record("validateRoomFn called for an unknown client id \(request.clientID)")
            return []
        }
        model.hookCalled(.validateRoom(client: k, clientID: request.clientID, userID: request.userID, rooms: request.rooms))
        spawnContext?.latency = clients[k].hookRNG.int64(config.hooks.latency)
        if clients[k].hookRNG.chance(config.hooks.validateThrowRate) {
            spawnContext?.answer = .validateRoom(client: k, nil)
            throw SimHookError(description: "scripted validateRoomFn failure")
        }
        let allowed = request.rooms.filter { !$0.hasPrefix("deny") }
        spawnContext?.answer = .validateRoom(client: k, allowed)
        return allowed
    }

    func callbackHook(connected: Bool, _ event: ClientEvent) throws {
        guard let k = model.client(forID: event.clientID) else {
            record("client\(connected ? "Connected" : "Disconnected")Fn called for an unknown client id \(event.clientID)")
            return
        }
        model.callback(connected: connected, client: k, userID: event.userID, metadata: event.metadata)
        spawnContext?.latency = clients[k].hookRNG.int64(config.hooks.latency)
        spawnContext?.answer = .callback
        if clients[k].hookRNG.chance(config.hooks.callbackThrowRate) {
            throw SimHookError(description: "scripted callback failure")
        }
    }

    /// The messageHandler (on the loop): the fixture's routing plus `to-client`.
    func handleMessage(server index: Int, _ message: ClientMessage) throws {
        let server = servers[index]
        if try FixtureRouting.route(message, on: server) { return }
        let data = message.message.data
        if message.message.event == "to-client", let id = data?["id"]?.stringValue {
            try server.send(destination: id, topic: "client-message", data: data?["data"])
        }
    }

    /// A scheduled API call on one instance (event `app`, tagged `app<server>/<n>`). On a
    /// server with several loops the seed makes it from one of them (as a hook would, tagged
    /// `app<server>@<loop>/<n>`: order is promised per calling thread) or off them all.
    func appCall(server index: Int, _ call: AppCall) -> String {
        appSeq[index] += 1
        var origin: Int? = serverDrivers[index][0]
        var from = "app\(index)"
        if isSharded(driver: serverDrivers[index][0]) {
            let loops = serverDrivers[index]
            let pick = worldRNG.int(0...loops.count)
            if pick < loops.count {
                origin = loops[pick]
                from += "@\(pick)"
            } else {
                origin = nil
            }
            active = origin ?? SimWorld.offLoops
        }
        let tag = Tag(from: from, seq: appSeq[index])
        let excluded: (Int) -> [String] = { count in
            var known = self.model.knownIDs()
            var out: [String] = []
            while out.count < count, !known.isEmpty {
                out.append(known.remove(at: self.worldRNG.int(0...(known.count - 1))))
            }
            return out
        }
        let resolved: ResolvedCall = switch call {
        case .broadcast(let n): .broadcast(exclude: excluded(n))
        case .toRoom(let room, let n): .toRoom(room, exclude: excluded(n))
        case .toUser(let user): .toUser(user)
        case .toClient(let k): .toClient(model.id(ofClient: k) ?? "gone-\(k)")
        case .send(let destination): .send(destination: destination)
        case .publishBroadcast(let n): .publishBroadcast(exclude: excluded(n))
        case .publishRoom(let room, let n): .publishRoom(room, exclude: excluded(n))
        }
        let server = servers[index]
        let data = tag.json
        model.appCall(server: index, resolved, tag: tag, origin: origin, post: appSeq[index] * 16 + index)
        if origin == nil { currentAppPost = appSeq[index] * 16 + index }
        defer {
            currentAppPost = nil
            active = nil
        }
        do {
            switch resolved {
            case .broadcast(let exclude): try server.broadcast(event: "app", data: data, exclude: exclude)
            case .toRoom(let room, let exclude): try server.sendToRoom(room, event: "app", data: data, exclude: exclude)
            case .toUser(let user): try server.sendToUser(user, event: "app", data: data)
            case .toClient(let id): try server.sendToClient(id, event: "app", data: data)
            case .send(let destination): try server.send(destination: destination, topic: "app", data: data)
            case .publishBroadcast(let exclude): try server.publish(.broadcast, event: "app", data: data, exclude: exclude)
            case .publishRoom(let room, let exclude): try server.publish(.room, target: room, event: "app", data: data, exclude: exclude)
            }
            model.appCallReturned(server: index, threw: nil)
        } catch {
            model.appCallReturned(server: index, threw: String(describing: error))
        }
        let place = origin.map { isSharded(driver: $0) ? " on \(name($0))" : "" } ?? " off the loops"
        return "S\(index) app \(call) \(tag)\(place)"
    }
}
