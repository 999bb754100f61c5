import Switchboard
import SwitchboardCodec
import SwitchboardDriverSupport

/// The reference model's hooks: which calls each input should make, and what each answer
/// should lead to.
extension ReferenceModel {
    func hookCalled(_ call: HookCall) {
        switch call {
        case .authenticate(let k, let data):
            guard let index = clients[k].expectHooks.firstIndex(where: {
                if case .authenticate(_, let expected) = $0 { return expected == data }
                return false
            }) else {
                problem("authenticateFn called for c\(k) unexpectedly (phase \(clients[k].phase))")
                return
            }
            clients[k].expectHooks.remove(at: index)
        case .handshake(let k, let clientID, let userID, let data):
            guard let index = clients[k].expectHooks.firstIndex(where: {
                if case .handshake = $0 { return true }
                return false
            }) else {
                problem("handshakeFn called for c\(k) unexpectedly (phase \(clients[k].phase))")
                return
            }
            clients[k].expectHooks.remove(at: index)
            learnID(clientID, for: k)
            if userID != clients[k].userID { problem("handshakeFn for c\(k): userId \(userID ?? "nil"), expected \(clients[k].userID ?? "nil")") }
            if data != clients[k].authData { problem("handshakeFn for c\(k): data \(data), expected the authenticate data") }
        case .validateRoom(let k, let clientID, let userID, let rooms):
            guard let index = clients[k].expectHooks.firstIndex(where: {
                if case .validateRoom(_, _, _, let expected) = $0 { return expected == rooms }
                return false
            }) else {
                problem("validateRoomFn called for c\(k) with \(rooms) unexpectedly (expected \(clients[k].expectHooks))")
                return
            }
            clients[k].expectHooks.remove(at: index)
            if clientID != clients[k].id || userID != clients[k].userID {
                problem("validateRoomFn for c\(k): client \(clientID)/\(userID ?? "nil"), expected \(clients[k].id ?? "?")/\(clients[k].userID ?? "nil")")
            }
        }
    }

    func hookAnswered(_ answer: HookAnswer, server: Int) {
        advance()
        switch answer {
        case .callback:
            return
        case .authenticate(let k, let outcome):
            guard clients[k].phase == .authenticating else { return stale() }
            touch(k)
            switch outcome {
            case .ok(let user):
                if config.options.requireEncryption {
                    if config.hooks.handshakeConfigured {
                        clients[k].userID = user
                        clients[k].phase = .handshaking
                        clients[k].expectHooks.append(.handshake(client: k, clientID: "", userID: user, data: clients[k].authData ?? [:]))
                    } else {
                        // Closed before its identity is recorded: clientDisconnectedFn gets no userId.
                        closeClient(k, [(4004, "Encryption required")])
                    }
                } else {
                    clients[k].userID = user
                    admit(k, keys: nil)
                }
            case .rejected:
                expectError(k, "Authentication failed")
                closeClient(k, [(4003, "Authentication failed")])
            case .threw:
                expectError(k, "Authentication error")
                closeClient(k, [(4003, "Authentication failed")])
            }
        case .handshake(let k, let outcome):
            guard clients[k].phase == .handshaking else { return stale() }
            touch(k)
            switch outcome {
            case .ok(let key, let salt):
                clients[k].encrypted = true
                admit(k, keys: (key, salt))
            case .rejected:
                expectError(k, "Encryption handshake failed")
                closeClient(k, [(4004, "Encryption required")])
            case .threw:
                expectError(k, "Authentication error")
                closeClient(k, [(4003, "Authentication failed")])
            }
        case .validateRoom(let k, let rooms):
            guard clients[k].phase == .authenticated else { return stale() }
            for room in rooms ?? [] {
                if room == clients[k].id { clients[k].ownRoom = true } else { clients[k].rooms.insert(room) }
            }
        }
    }

    func stale() { world?.stats.staleAnswers += 1 }

    /// PROTOCOL.md 5: index, rooms, `connected`, state AUTHENTICATED, lastActivity = now.
    func admit(_ k: Int, keys: (key: String, salt: String)?) {
        var c = clients[k]
        c.phase = .authenticated
        c.admitted = true
        c.lastActivity = now
        c.inProgressDeadline = -1
        c.ownRoom = true
        c.rooms = Set(config.options.defaultRooms)
        c.expectConnected = Connected(userID: c.userID, keys: keys)
        clients[k] = c
        authenticated[c.loop].insert(k)
        touch(k)
    }

    func callback(connected: Bool, client k: Int, userID: String?, metadata: JSONValue?) {
        advance()
        if userID != clients[k].userID { problem("client\(connected ? "Connected" : "Disconnected")Fn for c\(k) with userId \(userID ?? "nil")") }
        if connected {
            clients[k].connectedCalls += 1
            if metadata != ["k": JSONValue(k)] { problem("clientConnectedFn for c\(k) with metadata \(metadata.map { "\($0)" } ?? "nil")") }
            if !clients[k].admitted { problem("clientConnectedFn for c\(k), which was never admitted") }
        } else {
            clients[k].disconnectedCalls += 1
            if clients[k].isLive { problem("clientDisconnectedFn for c\(k) while it is \(clients[k].phase)") }
        }
    }
}
