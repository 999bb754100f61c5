import Foundation
import SwitchboardGen
import SwitchboardJSON
import SwitchboardKernel
import TestSupport

/// A fake driver that feeds the kernel and the reference model the same inputs at the same
/// virtual times and compares them after every input: the effects (in canonical order, see
/// `TraceLine.canonical`) and a snapshot of every client, room, user and timer.
///
/// It resolves each op against what exists at that moment (live clients, hook calls waiting for
/// an answer, armed and retired timers), which it learns from the kernel's effects and public
/// queries; both sides agree up to the step being compared, so either would do.
struct Harness {
    static let serverID = "server-under-test"
    /// The spec, loaded once through the generator's loader.
    static let spec: ProtocolSpec = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("spec/protocol.yaml").path
        do { return try SpecLoader.load(path: path) } catch { fatalError("\(path): \(error)") }
    }()

    struct Call {
        var handle: ClientHandle
        var attempt: AttemptID
        var hook: Hook
    }

    /// An rpc call (the message it answers) or a publish (its room).
    struct ProxyCall {
        var handle: ClientHandle
        var rpc: InboundMessage?
        var room: String
    }

    var kernel: Kernel
    var model: ReferenceModel
    var now = Now(monotonic: 1_000, wall: 1_764_000_000_000)
    var nextHandle: UInt64 = 1
    var armed: [(timer: TimerID, deadline: Int64)] = []
    var retired: [TimerID] = []
    var pending: [Call] = []
    /// rpc and publish calls not answered yet (they have no attempt: each answer is its call's).
    var proxyPending: [ProxyCall] = []
    var answered: [Call] = []
    var released: [ClientHandle] = []
    /// The kernel's inputs and effects as text, for golden traces.
    var trace: [String] = []

    init(settings: KernelSettings, deviations: ReferenceModel.Deviation = .known) {
        kernel = Kernel(settings: settings, serverID: Self.serverID)
        model = ReferenceModel(spec: Self.spec, settings: settings, serverID: Self.serverID, deviations: deviations)
    }

    // MARK: - Comparing

    /// Runs one input through both; returns a report of every difference, or nil.
    mutating func step(_ input: KernelInput) -> String? {
        var effects: [SwitchboardKernel.Effect] = []
        kernel.handle(input, now: now, into: &effects)
        model.handle(input, now: now)
        track(effects)
        trace.append("@\(now.monotonic) " + Self.describe(input))
        trace += TraceLine.render(effects).map { "    " + $0.text }

        let expected = TraceLine.canonical(model.take()).lines
        let (actual, interleaved) = TraceLine.canonical(effects.flatMap { TraceLine.render($0, expandFanOut: true) })
        var report: [String] = []
        if expected.count != actual.count || !zip(expected, actual).allSatisfy(TraceLine.accepts) {
            report.append("effects differ\n  model:\n" + Self.indented(expected.map(\.description))
                          + "\n  kernel:\n" + Self.indented(actual.map(\.description)))
        }
        if !interleaved.isEmpty { report.append("the kernel interleaved the effects of \(interleaved)") }
        if !model.problems.isEmpty { report.append("model: " + model.problems.joined(separator: "; ")) }
        let mine = TraceLine.snapshot(of: model)
        let theirs = TraceLine.snapshot(of: kernel)
        if mine != theirs {
            let modelOnly = Self.indented(mine.filter { !theirs.contains($0) })
            let kernelOnly = Self.indented(theirs.filter { !mine.contains($0) })
            report.append("state differs\n  model only:\n" + modelOnly + "\n  kernel only:\n" + kernelOnly)
        }
        return report.isEmpty ? nil : report.joined(separator: "\n")
    }

    static func indented(_ lines: [String]) -> String {
        lines.map { "    " + $0 }.joined(separator: "\n")
    }

    /// What a driver keeps: armed timers, hook calls to answer, released clients.
    mutating func track(_ effects: [SwitchboardKernel.Effect]) {
        for effect in effects {
            switch effect {
            case .armTimer(let timer, let deadline): armed.append((timer, deadline))
            case .cancelTimer(let timer):
                armed.removeAll { $0.timer == timer }
                retired.append(timer)
            case .callAuthenticate(let h, let attempt, _): pending.append(Call(handle: h, attempt: attempt, hook: .authenticate))
            case .callHandshake(let h, let attempt, _, _, _): pending.append(Call(handle: h, attempt: attempt, hook: .handshake))
            case .callValidateRoom(let h, let attempt, _, _, _): pending.append(Call(handle: h, attempt: attempt, hook: .validateRoom))
            case .callRefresh(let h, let attempt, _, _, _): pending.append(Call(handle: h, attempt: attempt, hook: .refresh))
            case .callRPC(let h, _, _, let call): proxyPending.append(ProxyCall(handle: h, rpc: call, room: ""))
            case .callPublish(let h, _, _, let room, _): proxyPending.append(ProxyCall(handle: h, rpc: nil, room: room))
            case .released(let h):
                released.append(h)
                answered += pending.filter { $0.handle == h }  // answers for it are stale from now on
                pending.removeAll { $0.handle == h }
            default: break
            }
        }
    }

    // MARK: - Ops to inputs

    /// The input an op stands for now, or nil when there is nothing for it to act on.
    mutating func input(for op: Op) -> KernelInput? {
        var rng = SeededRandom(seed: op.bits)
        let live = kernel.clientHandles.sorted()
        let ids = live.compactMap { kernel.client($0)?.id }
        let waiting = live.filter { [.authenticating, .handshaking].contains(kernel.client($0)?.state) }
        /// Mostly a live client, sometimes one the kernel already forgot. A state is picked
        /// first, then a client in it: the few clients in a short-lived state get their share.
        func someClient() -> ClientHandle? {
            if !released.isEmpty && (live.isEmpty || rng.chance(5)) { return rng.pick(released) }
            let states = ClientState.allCases.filter { state in live.contains { kernel.client($0)?.state == state } }
            guard !states.isEmpty else { return nil }
            let state = rng.pick(states)
            return rng.pick(live.filter { kernel.client($0)?.state == state })
        }
        switch op.kind {
        case .start:
            return .started
        case .open:
            if !live.isEmpty && rng.chance(8) {  // a duplicate id or a duplicate handle
                let other = rng.pick(live)
                return rng.chance(50) ? .opened(ClientHandle(nextHandle), id: kernel.client(other)!.id) : .opened(other, id: "dup")
            }
            defer { nextHandle += 1 }
            return .opened(ClientHandle(nextHandle), id: "c\(nextHandle)")
        case .message:
            return someClient().map { .message($0, Values.message(&rng, ids: ids)) }
        case .activity:
            return someClient().map { .activity($0) }
        case .close:
            return someClient().map { .closed($0) }
        case .backpressure:
            return someClient().map { .backpressured($0) }
        case .answer:
            guard !pending.isEmpty else { return nil }
            let call = pending.remove(at: rng.chance(50) ? 0 : rng.below(pending.count))
            answered.append(call)
            return answer(call, &rng)
        case .staleAnswer:
            return staleAnswer(&rng, live: live, waiting: waiting)
        case .fireTimer:
            guard !armed.isEmpty else { return nil }
            let index = rng.chance(60) ? armed.indices.min { armed[$0].deadline < armed[$1].deadline }! : rng.below(armed.count)
            let (timer, deadline) = armed.remove(at: index)
            retired.append(timer)
            advance(to: deadline)
            return .timerFired(timer)
        case .staleTimer:
            // A timer of some client (or the sweep) that is no longer armed, or one never armed.
            let h = someClient()
            let old = retired.filter { TraceLine.owner($0) == h?.rawValue }
            if !old.isEmpty && rng.chance(60) { return .timerFired(rng.pick(old)) }
            guard let h else { return .timerFired(rng.chance(50) && !retired.isEmpty ? rng.pick(retired) : TimerID(.server(.heartbeatSweep), generation: 999_999)) }
            return .timerFired(TimerID(.client(h, rng.pick(TimerKind.allCases)), generation: 999_999))
        case .advance:
            let step = rng.pick([1, 10, 100, 1_000, 5_000, 40_000, 100_000] as [Int64])
            advance(to: now.monotonic + step)
            if rng.chance(10) { now.wall = max(0, now.wall - Int64(rng.below(90_000_000))) }  // the wall clock jumps back
            return nil
        case .deliver:
            return .deliver(delivery(&rng, ids: ids))
        case .bus:
            return busMessage(&rng, ids: ids)
        case .shutdown:
            return .shutdown
        case .disconnect:
            // A client by id or by user (a forgotten one now and then), mostly with a code of
            // `origin: request`, sometimes with one the kernel must refuse.
            let code = rng.chance(85) ? rng.pick(CloseCode.requestable) : rng.pick(CloseCode.allCases)
            guard let h = someClient(), let client = kernel.client(h) else {
                return .disconnect(.client(id: "gone"), code)
            }
            if let user = client.userID, rng.chance(40) { return .disconnect(.user(user), code) }
            return .disconnect(.client(id: client.id), code)
        case .presence:
            // Mostly a room the client is in; sometimes another, or a room that is not a string.
            guard let h = someClient() else { return nil }
            let joined = kernel.client(h)?.rooms ?? []
            let room: JSONValue = rng.chance(70) && !joined.isEmpty ? .string(rng.pick(joined))
                : rng.chance(85) ? .string(Values.roomName(&rng)) : rng.pick([5, .null, ["lobby"]])
            // Now and then the history query instead (issue 19), drawn last so that the op's
            // other draws, and so its seed's run, stay what they were: no scenario has rooms with
            // history, so it is the custom event, or `Not authenticated` before `connected`.
            let event = rng.chance(25) ? "history" : "presence"
            return .message(h, Array(#"{"event":"\#(event)","data":{"room":\#(room.serialized())}}"#.utf8))
        case .proxyCall:
            switch rng.below(100) {
            case 0..<35:
                // An `rpc` (a method or not, an id or not) or a `publish`, mostly to a joined room.
                guard let h = someClient() else { return nil }
                let data = rng.pick(Values.dataValues) ?? .null
                if rng.chance(50) {
                    let call: JSONValue? = rng.chance(85) ? ["method": rng.pick(["m", "", 5, .null]), "data": data] : nil
                    let text = Values.envelopeText(&rng, event: "rpc", data: call, id: rng.pick([nil, "r1", 9]))
                    return .message(h, Array(text.utf8))
                }
                let joined = kernel.client(h)?.rooms ?? []
                let room: JSONValue = rng.chance(75) && !joined.isEmpty ? .string(rng.pick(joined))
                    : rng.chance(85) ? .string(Values.roomName(&rng)) : 5
                return .message(h, Array(Values.envelopeText(&rng, event: "publish", data: ["room": room, "data": data], id: nil).utf8))
            case 35..<60 where !proxyPending.isEmpty:
                return proxyAnswer(proxyPending.remove(at: rng.below(proxyPending.count)), &rng)
            default:
                // An answer never asked for, to a client of a state picked first: the stale rows.
                guard let h = someClient() else { return nil }
                let call = rng.chance(50) ? ProxyCall(handle: h, rpc: InboundMessage(event: "rpc", data: nil, id: nil), room: "")
                    : ProxyCall(handle: h, rpc: nil, room: Values.roomName(&rng))
                return proxyAnswer(call, &rng, stale: true)
            }
        }
    }

    /// An rpc or publish answer: mostly a result (some data), else a refusal or a throw; a stale
    /// one is each of the three as often (the short-lived states must see every one).
    func proxyAnswer(_ call: ProxyCall, _ rng: inout SeededRandom, stale: Bool = false) -> KernelInput {
        let roll = stale ? [0, 6, 9][rng.below(3)] : rng.below(10)
        let data = rng.pick(Values.dataValues)
        if let rpc = call.rpc {
            return .rpcReturned(call.handle, call: rpc, roll < 6 ? .ok(data) : roll < 8 ? .rejected : .threw("rpc boom"))
        }
        return .publishReturned(call.handle, room: call.room, roll < 6 ? .ok(data) : roll < 8 ? .rejected : .threw("publish boom"))
    }

    mutating func advance(to monotonic: Int64) {
        guard monotonic > now.monotonic else { return }
        now.wall += monotonic - now.monotonic
        now.monotonic = monotonic
    }

    /// An answer to `call`: mostly a success; stale answers are spread over every outcome.
    func answer(_ call: Call, _ rng: inout SeededRandom, stale: Bool = false) -> KernelInput {
        let roll = stale ? 6 + rng.below(4) - 3 * rng.below(2) : rng.below(10)
        switch call.hook {
        case .authenticate:
            let outcome: AuthOutcome = switch roll {
            case 0..<6: .ok(userID: rng.pick(Values.users), metadata: rng.pick([nil, ["role": "admin"], "x", .null]),
                            expiresAt: expiry(&rng), rooms: rng.chance(25) ? (0..<1 + rng.below(3)).map { _ in Values.roomName(&rng) } : [])
            case 6..<8: .rejected
            default: .threw("auth boom")
            }
            return .authenticateReturned(call.handle, call.attempt, outcome)
        case .refresh:
            // Mostly the client's own user (a refresh that may succeed), sometimes another one.
            let own = kernel.client(call.handle)?.userID
            let outcome: RefreshOutcome = switch roll {
            case 0..<5: .ok(userID: own, expiresAt: expiry(&rng))
            case 5..<6: .ok(userID: rng.pick(Values.users), expiresAt: expiry(&rng))
            case 6..<8: .rejected
            default: .threw("refresh boom")
            }
            return .refreshReturned(call.handle, call.attempt, outcome)
        case .handshake:
            let outcome: HandshakeOutcome = switch roll {
            case 0..<6: .ok(serverPublicKey: "key\(rng.below(9))", salt: "salt\(rng.below(9))")
            case 6..<8: .rejected
            default: .threw("handshake boom")
            }
            return .handshakeReturned(call.handle, call.attempt, outcome)
        default:
            let names = (0..<rng.below(4)).map { _ in Values.roomName(&rng) }
            return .validateRoomReturned(call.handle, call.attempt, roll < 8 ? .ok(names) : .threw("rooms boom"))
        }
    }

    /// A token expiry as a hook answers it: none, soon, later, already past (fires at once), or
    /// far away; wall-clock ms, so a wall clock that jumped back moves the deadline.
    func expiry(_ rng: inout SeededRandom) -> Int64? {
        rng.pick([nil, nil, nil, nil, now.wall + 50, now.wall + 3_000, now.wall - 1_000, now.wall + 100_000_000])
    }

    /// An answer the kernel must treat as stale: repeated, for an attempt never issued, of the
    /// wrong hook, or for a client the kernel forgot.
    func staleAnswer(_ rng: inout SeededRandom, live: [ClientHandle], waiting: [ClientHandle]) -> KernelInput? {
        var call: Call
        switch rng.below(5) {
        case 0 where !answered.isEmpty: call = rng.pick(answered)
        case 1 where !pending.isEmpty:
            call = rng.pick(pending)
            call.hook = rng.pick([.authenticate, .handshake, .validateRoom, .refresh].filter { $0 != call.hook })
        case 4 where !live.isEmpty:
            // A refresh answer never asked for, to a client of a state picked first (the few
            // clients in a short-lived state get their share).
            let states = ClientState.allCases.filter { state in live.contains { kernel.client($0)?.state == state } }
            let state = rng.pick(states)
            // Its outcome as for a fresh answer: mostly ok, which a stale roll would make rare.
            return answer(Call(handle: rng.pick(live.filter { kernel.client($0)?.state == state }), attempt: AttemptID(777_777),
                               hook: .refresh), &rng)
        default:  // mostly a client that is waiting for a hook, answered for an attempt never made
            guard let h = rng.chance(70) && !waiting.isEmpty ? rng.pick(waiting) : live.isEmpty ? nil : rng.pick(live) else { return nil }
            let awaited: Hook = kernel.client(h)?.state == .handshaking ? .handshake : .authenticate
            call = Call(handle: h, attempt: AttemptID(777_777), hook: rng.chance(50) ? awaited : rng.pick([.authenticate, .handshake, .validateRoom]))
        }
        return answer(call, &rng, stale: true)
    }

    func delivery(_ rng: inout SeededRandom, ids: [String]) -> Delivery {
        let someID = ids.isEmpty || rng.chance(15) ? "c999" : rng.pick(ids)
        let room = rng.chance(20) ? someID : Values.roomName(&rng)
        let user = rng.pick(Values.users) ?? "zed"
        let exclude = (0..<rng.below(3)).map { _ in ids.isEmpty ? "c999" : rng.pick(ids) }
        let event = rng.pick(["news", "dm", "error", "é", ""])
        let data = rng.pick(Values.dataValues)
        switch rng.below(7) {
        case 0: return .toClient(id: someID, event: event, data: data)
        case 1: return .toUser(userID: user, event: event, data: data)
        case 2: return .toRoom(room: room, event: event, data: data, exclude: exclude)
        case 3: return .broadcast(event: event, data: data, exclude: exclude)
        case 4: return .send(destination: rng.pick([nil, someID, room]), topic: event, data: data)
        default:
            let kind = rng.pick(BusEnvelope.Kind.allCases)
            return .publish(BusEnvelope(serverID: Self.serverID, kind: kind, target: kind == .broadcast ? nil : rng.pick([someID, room, user]),
                                        event: event, data: data, exclude: rng.chance(50) ? nil : exclude))
        }
    }

    func busMessage(_ rng: inout SeededRandom, ids: [String]) -> KernelInput {
        let id = ids.isEmpty ? "c1" : rng.pick(ids)
        let target: JSONValue? = rng.pick([.string(id), .string(Values.roomName(&rng)), .string(rng.pick(Values.users) ?? "zed"), nil, .null, 5])
        var members: [(String, JSONValue)] = [("serverId", rng.chance(15) ? .string(Self.serverID) : rng.pick(["other", 5]))]
        members.append(("type", rng.pick(["client", "user", "room", "broadcast", "everyone", .null])))
        if let target { members.append(("target", target)) }
        members.append(("event", rng.pick(["bus", "", 7, "ünï"])))
        if let data = rng.pick(Values.dataValues) { members.append(("data", data)) }
        if rng.chance(40) { members.append(("exclude", rng.pick([.array(ids.prefix(2).map(JSONValue.string)), .null, [5], "c1"]))) }
        if rng.chance(10) { members.removeFirst() }
        let text = rng.chance(5) ? "garbage" : JSONValue.object(JSONObject(members)).serialized()
        return .busMessage(channel: rng.pick(["ws:broadcast", "ws:room:a", "ws:client:\(id)", "ws:user:alice"]), message: Array(text.utf8))
    }

    // MARK: - Describing inputs

    static func describe(_ input: KernelInput) -> String {
        func text(_ bytes: [UInt8]) -> String {
            String(validating: bytes, as: UTF8.self).map { JSONValue.string($0).serialized() } ?? "bytes \(bytes)"
        }
        func json(_ value: JSONValue?) -> String { TraceLine.json(value) }
        func list(_ items: [String]?) -> String { items.map { JSONValue.array($0.map(JSONValue.string)).serialized() } ?? "-" }
        switch input {
        case .started: return "started"
        case .opened(let h, let id): return "opened \(h) id \(id)"
        case .message(let h, let bytes): return "message \(h) \(text(bytes))"
        case .activity(let h): return "activity \(h)"
        case .closed(let h): return "closed \(h)"
        case .authenticateReturned(let h, let attempt, let outcome):
            let answer = switch outcome {
            case .ok(let user, let metadata, let expiresAt, let rooms):
                "ok user \(user ?? "-") metadata \(json(metadata))" + (expiresAt.map { " expires \($0)" } ?? "")
                    + (rooms.isEmpty ? "" : " rooms \(list(rooms))")
            case .rejected: "rejected"
            case .threw(let text): "threw \(text)"
            }
            return "authenticate answered \(h) attempt \(attempt.rawValue) \(answer)"
        case .handshakeReturned(let h, let attempt, let outcome):
            let answer = switch outcome {
            case .ok(let key, let salt): "ok key \(key) salt \(salt)"
            case .rejected: "rejected"
            case .threw(let text): "threw \(text)"
            }
            return "handshake answered \(h) attempt \(attempt.rawValue) \(answer)"
        case .validateRoomReturned(let h, let attempt, let outcome):
            let answer = switch outcome {
            case .ok(let rooms): "ok \(list(rooms))"
            case .threw(let text): "threw \(text)"
            }
            return "validate_room answered \(h) attempt \(attempt.rawValue) \(answer)"
        case .refreshReturned(let h, let attempt, let outcome):
            let answer = switch outcome {
            case .ok(let user, let expiresAt): "ok user \(user ?? "-") expires \(expiresAt.map(String.init) ?? "never")"
            case .rejected: "rejected"
            case .threw(let text): "threw \(text)"
            }
            return "refresh answered \(h) attempt \(attempt.rawValue) \(answer)"
        case .rpcReturned(let h, let call, let outcome):
            let answer = switch outcome {
            case .ok(let result): "ok \(json(result))"
            case .rejected: "rejected"
            case .threw(let text): "threw \(text)"
            }
            return "rpc answered \(h) event \(call.event) id \(json(call.id)) \(answer)"
        case .publishReturned(let h, let room, let outcome):
            let answer = switch outcome {
            case .ok(let data): "ok \(json(data))"
            case .rejected: "rejected"
            case .threw(let text): "threw \(text)"
            }
            return "publish answered \(h) room \(room) \(answer)"
        case .timerFired(let timer): return "timer fired \(timer)"
        case .backpressured(let h): return "backpressured \(h)"
        case .shutdown: return "shutdown"
        case .disconnect(let target, let code): return "disconnect \(target) \(code.code)"
        case .busMessage(let channel, let bytes): return "bus \(channel) \(text(bytes))"
        case .historyMessage(let message): return "history message \(message.room) \(message.offset)@\(message.epoch) \(message.event)"
        case .historyRead(let h, let request, let room, let read): return "history read \(h) request \(request) room \(room) \(read)"
        case .deliver(let delivery):
            switch delivery {
            case .toClient(let id, let event, let data): return "deliver to client \(id) \(event) \(json(data))"
            case .toUser(let user, let event, let data): return "deliver to user \(user) \(event) \(json(data))"
            case .toRoom(let room, let event, let data, let exclude):
                return "deliver to room \(room) \(event) \(json(data)) exclude \(list(exclude))"
            case .broadcast(let event, let data, let exclude): return "deliver broadcast \(event) \(json(data)) exclude \(list(exclude))"
            case .send(let destination, let topic, let data): return "deliver send \(destination ?? "-") \(topic) \(json(data))"
            case .publish(let envelope): return "deliver publish \(String(decoding: envelope.encoded(), as: UTF8.self))"
            }
        }
    }
}
