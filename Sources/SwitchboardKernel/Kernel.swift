import SwitchboardJSON

/// The pure gateway kernel: `(state, input, now) -> (state', effects)` for every client.
///
/// It owns the client records, the room and user indexes and routing; it runs the generated
/// `TransitionTable` for every client-scoped input and turns the table's effect templates into
/// concrete `Effect`s. No I/O, no clock, no randomness: the same inputs give the same effects.
public struct Kernel {
    public let settings: KernelSettings
    /// The guards the settings decide alone (generated `settingsGuards`): every step starts from them.
    let settingsGuards: GuardSet
    /// This instance's id on the bus (a UUID the driver drew); its own messages are ignored.
    public let serverID: String

    var clients = HandleMap<ClientRecord>()
    var byID: [String: ClientHandle] = [:]
    /// Every live client, in a deterministic order (sweeps and shutdown walk it).
    var live = MemberList()
    var rooms: [String: RoomMembers] = [:]
    var users: [String: MemberList] = [:]
    /// Authenticated clients: the broadcast audience.
    var audience = RoomMembers()
    var generation: UInt64 = 0
    var attempts: UInt64 = 0
    /// Generation of each armed server timer by `ServerTimer.rawValue`; 0 = not armed.
    var serverTimers: [UInt64] = Array(repeating: 0, count: ServerTimer.allCases.count)
    /// The spec's `limits` whose maximum is above 0 in these settings.
    let activeLimits: [MessageLimit]
    public private(set) var isShutDown = false
    /// `error` data and payloads by `ErrorMessage`, made once per kernel.
    let errorData: [JSONValue]
    let errorPayloads: [Payload]
    /// The client whose message came in last: replies to the sender find it without hashing
    /// its id. Forgotten when the client is released.
    var lastSender: ClientRecord?
    /// The last reply to one client, reused once nothing else holds it (`replyPayload`).
    var spareReply: Payload?
    /// The rooms with presence (the spec default `presence_rooms`).
    let presencePatterns: PresencePatterns
    /// Rooms with presence the running row joined (true) or left, for its `announce_presence`.
    var pendingPresence: [(room: String, joined: Bool)] = []
    /// The rooms with history (the spec default `history_rooms`).
    let historyPatterns: PresencePatterns
    /// Rooms with history the running row joined, for its `recover_history`.
    var pendingHistory: [String] = []
    /// Rooms with clients whose join waits for the history store, and how many (`Recovery`).
    var recovering: [String: Int] = [:]
    /// Rooms with clients whose recovery ended at a position that live messages of the room
    /// may not have passed yet, and how many (`ClientRecord.floors`).
    var floored: [String: Int] = [:]
    /// The last history read asked for (each read is told apart by its number).
    var historyRequests: UInt64 = 0

    public init(settings: KernelSettings = KernelSettings(), serverID: String) {
        self.settings = settings
        self.settingsGuards = Kernel.settingsGuards(settings)
        self.serverID = serverID
        self.activeLimits = MessageLimit.allCases.filter { $0.maximum(in: settings) > 0 }
        self.presencePatterns = PresencePatterns(settings.presenceRooms)
        self.historyPatterns = PresencePatterns(settings.historyRooms)
        let errorData = ErrorMessage.allCases.map(Self.errorData)
        self.errorData = errorData
        self.errorPayloads = errorData.map { Payload(event: KernelMessage.error.event, data: $0) }
    }

    /// Handles one input, appending the effects to `out` in the order they must happen.
    public mutating func handle(_ input: KernelInput, now: Now, into out: inout [Effect]) {
        switch input {
        case .started:
            for timer in ServerTimer.allCases { arm(timer, now: now, into: &out) }
        case .opened(let handle, let id):
            // The id is indexed as it is checked, with one hash of it: a lookup and then an
            // insert hashed the 36 characters twice (scripts/callgrind connect).
            guard clients[handle] == nil, byID.insertNew(handle, forKey: id) else {
                out.append(.log(.error, "duplicate client handle or id \(id)", handle))
                return
            }
            let record = ClientRecord(handle: handle, id: id, now: now.monotonic)
            clients[handle] = record
            live.insert(handle)
            step(record, .connectionOpened, Context(), now: now, into: &out)
            if isShutDown, let record = clients[handle] {
                step(record, .shutdownRequested, Context(), now: now, into: &out)
            }
        case .message(let handle, let bytes):
            guard let record = clients[handle] else { return }
            lastSender = record
            classify(record, bytes, now: now, into: &out)
        case .activity(let handle):
            guard let record = clients[handle] else { return }
            step(record, .transportActivity, Context(), now: now, into: &out)
        case .closed(let handle):
            guard let record = clients[handle] else { return }
            step(record, .transportClosed, Context(), now: now, into: &out)
        case .authenticateReturned(let handle, let attempt, let outcome):
            guard let record = clients[handle] else { return }
            var context = Context(attempt: attempt)
            let kind: InputKind
            switch outcome {
            case .ok(let userID, let metadata, let expiresAt, let rooms):
                kind = .authenticateOk
                context.identity = (userID, metadata, expiresAt)
                context.rooms = Kernel.filterRoomNames(rooms.map(JSONValue.string))
            case .rejected: kind = .authenticateRejected
            case .threw(let message):
                out.append(.log(.warning, "authenticateFn threw: \(message)", handle))
                guard let thrown = Hook.authenticate.throwInput else { return }  // `on_throw: log`
                kind = thrown
            }
            step(record, kind, context, now: now, into: &out)
        case .handshakeReturned(let handle, let attempt, let outcome):
            guard let record = clients[handle] else { return }
            var context = Context(attempt: attempt)
            let kind: InputKind
            switch outcome {
            case .ok(let key, let salt):
                kind = .handshakeOk
                context.keys = (key, salt)
            case .rejected: kind = .handshakeRejected
            case .threw(let message):
                out.append(.log(.warning, "handshakeFn threw: \(message)", handle))
                guard let thrown = Hook.handshake.throwInput else { return }  // `on_throw: log`
                kind = thrown
            }
            step(record, kind, context, now: now, into: &out)
        case .validateRoomReturned(let handle, let attempt, let outcome):
            guard let record = clients[handle] else { return }
            var context = Context(attempt: attempt)
            if let pending = record.joinSince, pending.attempt == attempt {
                context.since = (pending.room, pending.position)
                record.joinSince = nil
            }
            let kind: InputKind
            switch outcome {
            case .ok(let names):
                kind = .validateRoomOk
                context.rooms = Kernel.filterRoomNames(names.map(JSONValue.string))
            case .threw(let message):
                out.append(.log(.warning, "validateRoomFn threw: \(message)", handle))
                guard let thrown = Hook.validateRoom.throwInput else { return }  // `on_throw: log`
                kind = thrown
            }
            step(record, kind, context, now: now, into: &out)
        case .refreshReturned(let handle, let attempt, let outcome):
            guard let record = clients[handle] else { return }
            var context = Context(attempt: attempt)
            let kind: InputKind
            switch outcome {
            case .ok(let userID, let expiresAt):
                kind = .refreshOk
                context.identity = (userID, nil, expiresAt)
            case .rejected: kind = .refreshRejected
            case .threw(let message):
                out.append(.log(.warning, "refreshFn threw: \(message)", handle))
                guard let thrown = Hook.refresh.throwInput else { return }  // `on_throw: log`
                kind = thrown
            }
            step(record, kind, context, now: now, into: &out)
        case .rpcReturned(let handle, let call, let outcome):
            guard let record = clients[handle] else { return }
            rpcReturned(record, call, outcome, now: now, into: &out)
        case .publishReturned(let handle, let room, let outcome):
            guard let record = clients[handle] else { return }
            publishReturned(record, room, outcome, now: now, into: &out)
        case .timerFired(let timer):
            timerFired(timer, now: now, into: &out)
        case .backpressured(let handle):
            guard let record = clients[handle] else { return }
            step(record, .backpressureExceeded, Context(), now: now, into: &out)
        case .shutdown:
            guard !isShutDown else { return }
            isShutDown = true
            for timer in ServerTimer.allCases where serverTimers[Int(timer.rawValue)] != 0 {
                out.append(.cancelTimer(TimerID(.server(timer), generation: serverTimers[Int(timer.rawValue)])))
                serverTimers[Int(timer.rawValue)] = 0
            }
            for handle in live.members {
                guard let record = clients[handle] else { continue }
                step(record, .shutdownRequested, Context(), now: now, into: &out)
            }
        case .busMessage(let channel, let message):
            busMessage(channel: channel, message: message, into: &out)
        case .deliver(let delivery):
            deliver(delivery, into: &out)
        case .disconnect(let target, let code):
            disconnect(target, code, now: now, into: &out)
        case .historyMessage(let message):
            deliverRecorded(message, into: &out)
        case .historyRead(let handle, let request, let room, let read):
            historyRead(handle, request: request, room: room, read, into: &out)
        }
    }

    /// Runs `disconnect_requested` for every client the target names; the row closes with
    /// `code`. A code the spec does not offer to requests closes nothing.
    mutating func disconnect(_ target: DisconnectTarget, _ code: CloseCode, now: Now, into out: inout [Effect]) {
        guard code.origin == .request else {
            out.append(.log(.error, "disconnect with close code \(code.code), which is not of origin request", nil))
            return
        }
        let handles: [ClientHandle]
        switch target {
        case .client(let id): handles = byID[id].map { [$0] } ?? []
        case .user(let userID): handles = users[userID]?.members ?? []
        }
        for handle in handles {
            guard let record = clients[handle] else { continue }
            step(record, .disconnectRequested, Context(closeCode: code), now: now, into: &out)
        }
    }

    // MARK: - Client inputs through the table

    /// Input-specific facts the guards and effects read.
    struct Context {
        var attempt: AttemptID?
        var timer: (kind: TimerKind, generation: UInt64)?
        var message: InboundMessage?
        /// join/leave: the requested rooms after the name filter; validate_room_ok: the answer;
        /// authenticate_ok: the rooms to join on admission, after the name filter.
        var rooms: [String] = []
        /// authenticate_ok: userId, metadata, expiresAt; refresh_ok: userId and expiresAt.
        var identity: (userID: String?, metadata: JSONValue?, expiresAt: Int64?)?
        var keys: (serverPublicKey: String, salt: String)?
        /// disconnect_requested: the code of `origin: request` the application chose.
        var closeCode: CloseCode?
        /// presence, publish, history: the room asked about (nil when `data.room` is not a string);
        /// publish_ok: the room published to.
        var room: String?
        /// join: the `since` of a join naming one room; validate_room_ok: the one of its join;
        /// history: the query's `since`.
        var since: (room: String, position: HistoryPosition)?
        /// history: the query's `limit`, capped at `history_size` (`HistoryQuery.limit`).
        var limit: Int?
        /// rpc_ok: the result; publish_ok: the data to publish.
        var answer: JSONValue?
    }

    /// PROTOCOL.md 4: the envelope selects the input.
    mutating func classify(_ record: ClientRecord, _ bytes: [UInt8], now: Now, into out: inout [Effect]) {
        for limit in activeLimits where limit.counts(in: record.state) {
            if record.messageCounts.isEmpty { record.messageCounts = Array(repeating: 0, count: MessageLimit.allCases.count) }
            record.messageCounts[Int(limit.rawValue)] += 1
            if record.messageCounts[Int(limit.rawValue)] > limit.maximum(in: settings) {
                step(record, limit.raises, Context(), now: now, into: &out)
                return
            }
        }
        let envelope = InboundEnvelope.read(bytes, numbers: settings.numberStyle)
        switch consume envelope {
        case .invalidJSON:
            step(record, .invalidJson, Context(), now: now, into: &out)
        case .noEvent:
            step(record, .missingEvent, Context(), now: now, into: &out)
        case .message(let event, let data, let id):
            let kind = InputKind.clientEvent(event) ?? .custom
            var rooms: [String] = []
            var room: String?
            var since: (room: String, position: HistoryPosition)?
            if kind == .join || kind == .leave {
                if case .array(let names)? = data?["rooms"] {
                    rooms = kind == .join ? Kernel.filterRoomNames(names) : Kernel.strings(names)
                } else if kind == .join, case .string(let name)? = data?["room"] {
                    rooms = Kernel.filterRoomNames([.string(name)])
                }
                // `since` recovers the one room a join names (offsets and epochs are per room).
                if kind == .join, rooms.count == 1, !historyPatterns.isEmpty, let position = HistoryPosition(json: data?["since"]) {
                    since = (rooms[0], position)
                }
            } else if kind == .presence || kind == .publish || kind == .history, case .string(let name)? = data?["room"] {
                room = name
            }
            var limit: Int?
            if kind == .history, let room, !historyPatterns.isEmpty {
                limit = HistoryQuery.limit(data?["limit"], size: settings.historySize)
                since = HistoryPosition(json: data?["since"]).map { (room, $0) }
            }
            // Built in the call: a context held in a variable would be copied into it.
            step(record, kind, Context(message: InboundMessage(event: event, data: data, id: id), rooms: rooms, room: room,
                                       since: since, limit: limit),
                 now: now, into: &out)
        }
    }

    /// Runs one client-scoped input through the generated table.
    /// `context` is consumed: the message moves on into the handler's effect without a copy.
    mutating func step(_ record: ClientRecord, _ kind: InputKind, _ context: consuming Context, now: Now,
                       into out: inout [Effect]) {
        let holding = guards(record, kind, context, now: now)
        guard let row = TransitionTable.row(record.state, kind, holding) else {
            // The validator proves every cell complete; reaching this is a generator bug.
            out.append(.log(.error, "no transition for \(record.state.specName) × \(kind.specName)", record.handle))
            return
        }
        if let timer = context.timer, holding.contains(.timerCurrent) {
            record.timers[timer.kind] = 0  // it fired: no longer armed
        }
        run(row, record, &context, now: now, into: &out)
    }

    /// Executes a row's effect templates for one client, in order.
    mutating func run(_ row: TransitionRow, _ record: ClientRecord, _ context: inout Context, now: Now,
                      into out: inout [Effect]) {
        let handle = record.handle
        var released = false
        for template in row.effects {
            switch template {
            case .ignore:
                break
            case .touch:
                record.lastActivity = now.monotonic
            case .log(let text):
                out.append(.log(.debug, text, handle))
            case .sendError(let error):
                send(to: record, event: KernelMessage.error.event, data: errorData[Int(error.rawValue)],
                     payload: errorPayloads[Int(error.rawValue)], into: &out)
            case .close(let code):
                out.append(.close(handle, code))
            case .closeRequested:
                guard let code = context.closeCode ?? CloseCode.requestable.first else { break }
                out.append(.close(handle, code))
            case .armTimer(let kind):
                cancelTimer(kind, of: record, into: &out)
                guard let deadline = deadline(of: kind, for: record, now: now) else { break }
                generation += 1
                record.timers[kind] = generation
                out.append(.armTimer(TimerID(.client(handle, kind), generation: generation), deadline: deadline))
            case .cancelTimer(let kind):
                cancelTimer(kind, of: record, into: &out)
            case .call(let hook):
                call(hook, record, &context, into: &out)
            case .recordIdentity:
                record.userID = context.identity?.userID
                record.metadata = context.identity?.metadata
                record.expiresAt = context.identity?.expiresAt
                record.admissionRooms = context.rooms
            case .recordExpiry:
                record.expiresAt = context.identity?.expiresAt
            case .sendRefreshed:
                let data = refreshedData(record)
                send(to: record, event: KernelMessage.refreshed.event, data: data,
                     payload: replyPayload(event: KernelMessage.refreshed.event, data: data), into: &out)
            case .markEncrypted:
                record.encrypted = true
                record.serverPublicKey = context.keys?.serverPublicKey
                record.salt = context.keys?.salt
            case .admit:
                admit(record)
            case .sendConnected:
                out.append(.send(handle, connectedPayload(record, now: now)))
                record.serverPublicKey = nil
                record.salt = nil
            case .joinValidatedRooms:
                for room in context.rooms { join(record, room) }
            case .leaveRooms:
                for room in context.rooms where record.rooms.contains(room) { leave(record, room) }
            case .deliver:
                break  // routing reads the delivery rows as `ClientState.receivesDeliveries`
            case .release:
                release(record, into: &out)
                released = true
            case .queryPresence:
                if let room = context.room { queryPresence(record, room: room, into: &out) }
            case .announcePresence:
                announcePresence(record, into: &out)
            case .recoverHistory:
                recoverHistory(record, context, into: &out)
            case .queryHistory:
                queryHistory(record, context, into: &out)
            case .sendRpcReply:
                sendRPCReply(record, context, error: nil, into: &out)
            case .sendRpcError(let error):
                sendRPCReply(record, context, error: error, into: &out)
            case .publishToRoom:
                publishToRoom(record, context, into: &out)
            }
        }
        pendingPresence.removeAll(keepingCapacity: true)  // the validator makes rows announce; never carried over
        pendingHistory.removeAll(keepingCapacity: true)
        record.state = row.next
        if released {
            out.append(.released(handle))
        }
    }

    /// A client timer's monotonic deadline: `duration` from now, or for a timer that runs
    /// `until` a wall-clock instant, that instant seen from now (a past one fires at once); nil
    /// when the client has no such instant (the timer is not armed).
    func deadline(of kind: TimerKind, for record: ClientRecord, now: Now) -> Int64? {
        switch kind.until {
        case nil:
            return kind.duration(in: settings).map { now.monotonic + $0 }
        case .expiresAt:
            guard let expiresAt = record.expiresAt else { return nil }
            let remaining = expiresAt.subtractingReportingOverflow(now.wall)
            return now.monotonic + (remaining.overflow ? Int64.max / 2 : max(0, min(remaining.partialValue, Int64.max / 2)))
        }
    }

    mutating func cancelTimer(_ kind: TimerKind, of record: ClientRecord, into out: inout [Effect]) {
        let armed = record.timers[kind]
        guard armed != 0 else { return }
        out.append(.cancelTimer(TimerID(.client(record.handle, kind), generation: armed)))
        record.timers[kind] = 0
    }

    mutating func call(_ hook: Hook, _ record: ClientRecord, _ context: inout Context, into out: inout [Effect]) {
        let handle = record.handle
        switch hook {
        case .authenticate:
            let data = context.message?.data ?? .object(JSONObject([]))
            record.authData = data
            out.append(.callAuthenticate(handle, newAttempt(record), data: data))
        case .handshake:
            let data = record.authData ?? .object(JSONObject([]))
            record.authData = nil
            out.append(.callHandshake(handle, newAttempt(record), clientID: record.id, userID: record.userID, data: data))
        case .validateRoom:
            let attempt = newAttempt(record)
            record.joinSince = context.since.map { (attempt, $0.room, $0.position) }
            out.append(.callValidateRoom(handle, attempt, clientID: record.id, userID: record.userID,
                                         rooms: context.rooms))
        case .refresh:
            attempts += 1
            let attempt = AttemptID(attempts)
            record.refreshAttempt = attempt
            out.append(.callRefresh(handle, attempt, clientID: record.id, userID: record.userID,
                                    data: context.message?.data ?? .object(JSONObject([]))))
        case .rpc:
            guard let message = context.message.take() else { return }
            out.append(.callRPC(handle, clientID: record.id, userID: record.userID, call: message))
        case .publish:
            guard let room = context.room else { return }
            out.append(.callPublish(handle, clientID: record.id, userID: record.userID, room: room,
                                    data: context.message?.data?["data"]))
        case .messageHandler:
            guard let message = context.message.take() else { return }  // its only reader
            out.append(.callMessageHandler(handle, clientID: record.id, userID: record.userID, message: message))
        case .clientConnected:
            out.append(.callClientConnected(handle, clientID: record.id, userID: record.userID, metadata: record.metadata))
        case .clientDisconnected:
            out.append(.callClientDisconnected(handle, clientID: record.id, userID: record.userID))
        }
    }

    mutating func newAttempt(_ record: ClientRecord) -> AttemptID {
        attempts += 1
        let attempt = AttemptID(attempts)
        record.attempt = attempt
        return attempt
    }

    // MARK: - Timers

    /// Arms a server timer for one period from now (not after shutdown).
    mutating func arm(_ timer: ServerTimer, now: Now, into out: inout [Effect]) {
        guard !isShutDown else { return }
        generation += 1
        serverTimers[Int(timer.rawValue)] = generation
        out.append(.armTimer(TimerID(.server(timer), generation: generation),
                             deadline: now.monotonic + timer.period(in: settings)))
    }

    mutating func timerFired(_ timer: TimerID, now: Now, into out: inout [Effect]) {
        switch timer.owner {
        case .server(let kind):
            guard timer.generation == serverTimers[Int(kind.rawValue)], !isShutDown else { return }
            arm(kind, now: now, into: &out)
            for handle in live.members {
                guard let record = clients[handle] else { continue }
                step(record, kind.firedInput, Context(), now: now, into: &out)
            }
        case .client(let handle, let kind):
            guard let record = clients[handle] else { return }
            step(record, kind.firedInput, Context(timer: (kind, timer.generation)), now: now, into: &out)
        }
    }
}
