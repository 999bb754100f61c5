import Foundation
import SwitchboardGen
import SwitchboardJSON
import SwitchboardKernel

/// The oracle: a second, deliberately plain implementation of the gateway's client machines.
///
/// It reads `spec/protocol.yaml` through the generator's loader (`SwitchboardGen`) and interprets
/// the expanded rows, their `when` literals and effect names at run time. It never touches the
/// generated `TransitionTable` or the kernel's internals, so a spec edit reaches the kernel
/// (through generated Swift) and the oracle (through the loader) by two different paths, and a
/// bug in either shows up as a difference. Records are simple structs in dictionaries; every
/// order that is visible in the output is taken from sorted handles or from the spec.
///
/// This file: records and inputs. ReferenceTable.swift: rows, guards and effects.
/// ReferenceRouting.swift: deliveries and bus messages. TraceLine.swift: the text it expects.
struct ReferenceModel {
    /// Known differences between the kernel and PROTOCOL.md that the model copies from the kernel
    /// until they are fixed (`Deviation.known`); each has a regression that runs without it.
    struct Deviation: OptionSet, Sendable {
        let rawValue: Int
        /// `send(destination?, topic, data)` with an empty topic or absent data still delivers
        /// and publishes (PROTOCOL.md 7 says it does nothing).
        /// None is open: `send` without a topic or data was one (fixed in the kernel's routing).
        static let known: Deviation = []
    }

    struct Client {
        let handle: UInt64
        let id: String
        var state: String
        var userID: String?
        var metadata: JSONValue?
        var encrypted = false
        /// Admitted: in the user index and the broadcast audience.
        var admitted = false
        var rooms: Set<String> = []
        var lastActivity: Int64
        /// The attempt of the hook call issued last; answers for other attempts are stale.
        var attempt: UInt64?
        /// The attempt of the latest refresh call (a join does not replace it).
        var refreshAttempt: UInt64?
        /// Wall-clock ms the credentials expire at (authenticate or refresh answer); nil: never.
        var expiresAt: Int64?
        /// Armed timers: spec timer name -> generation.
        var timers: [String: UInt64] = [:]
        /// The rooms the authenticate answer named (filtered), joined on admission.
        var admissionRooms: [String] = []
        /// `authenticate` data, kept for the handshake hook.
        var authData: JSONValue?
        /// handshake answer, shown once in `connected`.
        var keys: (serverPublicKey: String, salt: String)?
        var messagesBeforeAuth = 0
    }

    /// What one input brings besides its name: the facts guards and effects read.
    struct Context {
        var attempt: UInt64?
        var timer: (name: String, generation: UInt64)?
        var message: (event: String, data: JSONValue?, id: JSONValue?)?
        var rooms: [String] = []
        var identity: (userID: String?, metadata: JSONValue?, expiresAt: Int64?)?
        var keys: (serverPublicKey: String, salt: String)?
        /// disconnect_requested: the spec close code the request chose.
        var closeCode: CloseCodeSpec?
        /// presence, publish: `data.room` when it is a string; publish_ok: the room published to.
        var room: String?
        /// rpc_ok: the result; publish_ok: the data to publish.
        var answer: JSONValue?
    }

    let spec: ProtocolSpec
    let settings: KernelSettings
    let serverID: String
    let deviations: Deviation
    /// Rows by "state input", in spec order.
    let cells: [String: [TableRow]]
    let initialState: String

    var clients: [UInt64: Client] = [:]
    var rooms: [String: Set<UInt64>] = [:]
    var users: [String: Set<UInt64>] = [:]
    /// The order in which the kernel walks its live clients (shutdown, the sweep) and a user's
    /// clients (a disconnect by user): appended when added, removed by moving the last one into
    /// the gap. Visible since presence announcements publish between the clients' effects.
    var liveOrder: [UInt64] = []
    var userOrder: [String: [UInt64]] = [:]
    /// Timers and hook attempts are numbered by two counters, visible in the effects.
    var lastGeneration: UInt64 = 0
    var lastAttempt: UInt64 = 0
    var sweepGeneration: UInt64?
    var isShutDown = false
    let formatter: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter
    }()

    /// What the current input produced; `take()` empties it.
    var out: [TraceLine] = []
    /// The rows that ran, as "state input when" (for the coverage check).
    var rowsRun: Set<String> = []
    /// Rooms with presence joined (true) or left by the running row, for `announce_presence`.
    var pendingPresence: [(room: String, joined: Bool)] = []
    /// Problems of the model or the spec it reads (an unknown guard, no row for a cell).
    var problems: [String] = []

    init(spec: ProtocolSpec, settings: KernelSettings, serverID: String, deviations: Deviation = .known) {
        self.spec = spec
        self.deviations = deviations
        self.settings = settings
        self.serverID = serverID
        self.cells = Dictionary(grouping: spec.rows) { "\($0.state) \($0.input)" }
        self.initialState = spec.states.first(where: \.initial)?.name ?? "?"
    }

    /// Removes `h` as the kernel's member lists do: the last member takes its place.
    static func swapRemove(_ h: UInt64, from list: inout [UInt64]) {
        guard let index = list.firstIndex(of: h) else { return }
        let last = list.removeLast()
        if index < list.count { list[index] = last }
    }

    mutating func take() -> [TraceLine] {
        defer { out = [] }
        return out
    }

    // MARK: - Inputs

    mutating func handle(_ input: KernelInput, now: Now) {
        switch input {
        case .started:
            armSweep(now: now)
        case .opened(let handle, let id):
            let h = handle.rawValue
            guard clients[h] == nil, !clients.values.contains(where: { $0.id == id }) else {
                out.append(.log("error", h, "duplicate client handle or id \(id)"))
                return
            }
            clients[h] = Client(handle: h, id: id, state: initialState, lastActivity: now.monotonic)
            liveOrder.append(h)
            step(h, "connection_opened", Context(), now: now)
            if isShutDown, clients[h] != nil { step(h, "shutdown_requested", Context(), now: now) }
        case .message(let handle, let bytes):
            guard clients[handle.rawValue] != nil else { return }
            message(handle.rawValue, bytes, now: now)
        case .activity(let handle):
            step(handle.rawValue, "transport_activity", Context(), now: now)
        case .closed(let handle):
            step(handle.rawValue, "transport_closed", Context(), now: now)
        case .backpressured(let handle):
            step(handle.rawValue, "backpressure_exceeded", Context(), now: now)
        case .authenticateReturned(let handle, let attempt, let outcome):
            guard clients[handle.rawValue] != nil else { return }
            var context = Context(attempt: attempt.rawValue)
            switch outcome {
            case .ok(let userID, let metadata, let expiresAt, let rooms):
                context.identity = (userID, metadata, expiresAt)
                context.rooms = filterRoomNames(rooms.map(JSONValue.string))
                step(handle.rawValue, "authenticate_ok", context, now: now)
            case .rejected:
                step(handle.rawValue, "authenticate_rejected", context, now: now)
            case .threw(let text):
                out.append(.log("warning", handle.rawValue, "authenticateFn threw: \(text)"))
                if let thrown = spec.hooks.first(where: { $0.name == "authenticate" })?.onThrow?.name { step(handle.rawValue, thrown, context, now: now) }
            }
        case .handshakeReturned(let handle, let attempt, let outcome):
            guard clients[handle.rawValue] != nil else { return }
            var context = Context(attempt: attempt.rawValue)
            switch outcome {
            case .ok(let key, let salt):
                context.keys = (key, salt)
                step(handle.rawValue, "handshake_ok", context, now: now)
            case .rejected:
                step(handle.rawValue, "handshake_rejected", context, now: now)
            case .threw(let text):
                out.append(.log("warning", handle.rawValue, "handshakeFn threw: \(text)"))
                if let thrown = spec.hooks.first(where: { $0.name == "handshake" })?.onThrow?.name { step(handle.rawValue, thrown, context, now: now) }
            }
        case .validateRoomReturned(let handle, let attempt, let outcome):
            guard clients[handle.rawValue] != nil else { return }
            var context = Context(attempt: attempt.rawValue)
            switch outcome {
            case .ok(let names):
                context.rooms = filterRoomNames(names.map(JSONValue.string))
                step(handle.rawValue, "validate_room_ok", context, now: now)
            case .threw(let text):
                out.append(.log("warning", handle.rawValue, "validateRoomFn threw: \(text)"))
                if let thrown = spec.hooks.first(where: { $0.name == "validate_room" })?.onThrow?.name { step(handle.rawValue, thrown, context, now: now) }
            }
        case .refreshReturned(let handle, let attempt, let outcome):
            guard clients[handle.rawValue] != nil else { return }
            var context = Context(attempt: attempt.rawValue)
            switch outcome {
            case .ok(let userID, let expiresAt):
                context.identity = (userID, nil, expiresAt)
                step(handle.rawValue, "refresh_ok", context, now: now)
            case .rejected:
                step(handle.rawValue, "refresh_rejected", context, now: now)
            case .threw(let text):
                out.append(.log("warning", handle.rawValue, "refreshFn threw: \(text)"))
                if let thrown = spec.hooks.first(where: { $0.name == "refresh" })?.onThrow?.name { step(handle.rawValue, thrown, context, now: now) }
            }
        case .rpcReturned(let handle, let call, let outcome):
            guard clients[handle.rawValue] != nil else { return }
            var context = Context(message: (call.event, call.data, call.id))
            switch outcome {
            case .ok(let result):
                context.answer = result
                step(handle.rawValue, "rpc_ok", context, now: now)
            case .rejected:
                step(handle.rawValue, "rpc_rejected", context, now: now)
            case .threw(let text):
                out.append(.log("warning", handle.rawValue, "rpc hook threw: \(text)"))
                if let thrown = spec.hooks.first(where: { $0.name == "rpc" })?.onThrow?.name { step(handle.rawValue, thrown, context, now: now) }
            }
        case .publishReturned(let handle, let room, let outcome):
            guard clients[handle.rawValue] != nil else { return }
            var context = Context(room: room)
            switch outcome {
            case .ok(let data):
                context.answer = data
                step(handle.rawValue, "publish_ok", context, now: now)
            case .rejected:
                step(handle.rawValue, "publish_rejected", context, now: now)
            case .threw(let text):
                out.append(.log("warning", handle.rawValue, "publish hook threw: \(text)"))
                if let thrown = spec.hooks.first(where: { $0.name == "publish" })?.onThrow?.name { step(handle.rawValue, thrown, context, now: now) }
            }
        case .timerFired(let timer):
            switch timer.owner {
            case .server(let kind):
                guard timer.generation == sweepGeneration, !isShutDown,
                      let fires = spec.timers.first(where: { $0.name == kind.specName && $0.scope == .server })?.fires else { return }
                armSweep(now: now)
                for h in liveOrder { step(h, fires, Context(), now: now) }
            case .client(let handle, let kind):
                // The input the spec says the timer fires.
                guard let fires = spec.timers.first(where: { $0.name == kind.specName })?.fires else { return }
                step(handle.rawValue, fires, Context(timer: (kind.specName, timer.generation)), now: now)
            }
        case .shutdown:
            guard !isShutDown else { return }
            isShutDown = true
            if let sweep = sweepGeneration {
                out.append(TraceLine(nil, "cancel heartbeat_sweep@\(sweep)"))
                sweepGeneration = nil
            }
            for h in liveOrder { step(h, "shutdown_requested", Context(), now: now) }
        case .busMessage(let channel, let bytes):
            busMessage(channel: channel, bytes)
        case .deliver(let delivery):
            deliver(delivery)
        case .disconnect(let target, let code):
            // Only codes of `origin: request`. (Scenarios do not draw disconnects yet: the kernel
            // walks a user's clients in its index order, which this model does not keep.)
            guard let close = spec.closeCodes.first(where: { $0.name == code.specName }), close.origin == .request else {
                out.append(.log("error", nil, "disconnect with close code \(code.code), which is not of origin request"))
                return
            }
            let handles: [UInt64] = switch target {
            case .client(let id): clients.values.filter { $0.id == id }.map(\.handle)
            case .user(let userID): userOrder[userID] ?? []
            }
            for h in handles { step(h, "disconnect_requested", Context(closeCode: close), now: now) }
        case .historyMessage, .historyRead:
            // The scenarios draw no rooms with history (HistoryPropertyTests covers them).
            problems.append("the model does not know rooms with history")
        }
    }

    /// PROTOCOL.md 4: the pre-auth message limit, then the envelope selects the input.
    mutating func message(_ h: UInt64, _ bytes: [UInt8], now: Now) {
        for limit in spec.limits {
            let maximum = setting(limit.max) as? Int ?? 0
            guard maximum > 0, let state = clients[h]?.state, limit.countsIn.contains(where: { $0.name == state }) else { continue }
            clients[h]!.messagesBeforeAuth += 1
            if clients[h]!.messagesBeforeAuth > maximum {
                step(h, limit.raises, Context(), now: now)
                return
            }
        }
        guard let value = try? JSONValue.parse(bytes) else {
            step(h, "invalid_json", Context(), now: now)
            return
        }
        guard case .string(let event)? = value["event"], !event.isEmpty else {
            step(h, "missing_event", Context(), now: now)
            return
        }
        let input = spec.inputs.first { $0.group == .client && $0.event == event }?.name ?? "custom"
        var context = Context(message: (event, value["data"], value["id"]))
        if input == "join" || input == "leave", case .array(let names)? = value["data"]?["rooms"] {
            context.rooms = input == "join" ? filterRoomNames(names) : names.compactMap(\.stringValue)
        }
        if input == "presence" || input == "publish" || input == "history", case .string(let room)? = value["data"]?["room"] { context.room = room }
        step(h, input, context, now: now)
    }

    /// The spec's room name rule: strings of min...max UTF-16 units without the reserved prefix,
    /// first occurrence kept.
    func filterRoomNames(_ names: [JSONValue]) -> [String] {
        guard let rule = spec.rooms else { return [] }
        var kept: [String] = []
        for case .string(let name) in names
        where (rule.minLength...rule.maxLength).contains(name.utf16.count)
            && !name.hasPrefix(rule.reservedPrefix) && !kept.contains(name) {
            kept.append(name)
        }
        return kept
    }

    /// `Date.toISOString()`: Foundation writes the date and whole seconds (not the kernel's own
    /// formatter), the milliseconds are appended exactly.
    func isoTime(_ unixMilliseconds: Int64) -> String {
        let seconds = unixMilliseconds >= 0 ? unixMilliseconds / 1000 : (unixMilliseconds - 999) / 1000
        let millis = unixMilliseconds - seconds * 1000
        let text = formatter.string(from: Date(timeIntervalSince1970: Double(seconds)))
        return text.dropLast() + "." + String(String(millis + 1000).dropFirst()) + "Z"
    }
}
