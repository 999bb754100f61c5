/// The checks of the sections around the table (guards, effects, hooks, timers, limits, close
/// codes, HTTP answers, the connection, channels) and of the expanded table as a graph
/// (reachability, delivery, usage). Validator.swift runs them in `Validator.check`.
extension ValidationRun {
    // MARK: - Declarations

    mutating func guards() {
        let groups = InputGroupName.allCases.map(\.rawValue)
        let inputs = spec.inputs.map(\.name)
        for entry in spec.guards {
            let what = "guard '\(entry.name)'"
            switch entry.source {
            case .computed:
                break
            case .setting(let name):
                if let value = spec.defaults.first(where: { $0.name == name }) {
                    if value.type != .bool {
                        sink.error(entry.sourceLine, "\(what) reads setting '\(name)', a default of type \(value.type.rawValue)",
                                   fix: "name a default of type bool")
                    }
                } else {
                    let bools = spec.defaults.filter { $0.type == .bool }.map(\.name)
                    sink.error(entry.sourceLine, "\(what) reads setting '\(name)', which is not a default",
                               fix: Names.hint(for: name, among: bools, otherwise: "add '\(name): { value: false, type: bool }' under 'defaults:'"))
                }
            case .configured(let hook):
                _ = reference(hook, line: entry.sourceLine, kind: "hook", section: "hooks", known: spec.hooks.map(\.name),
                              context: " in 'configured'")
            }
            for name in entry.holdsFor where !inputs.contains(name.name) && !groups.contains(name.name) {
                sink.error(name.line, "\(what) holds for '\(name.name)', which is neither an input nor an input group",
                           fix: Names.hint(for: name.name, among: inputs + groups))
            }
        }
    }

    /// Whether a guard can hold for an input (its `holds_for` names the input or its group).
    func canHold(_ guardName: String, for input: String) -> Bool {
        guard let entry = spec.guards.first(where: { $0.name == guardName }), !entry.holdsFor.isEmpty,
              let spec = spec.inputs.first(where: { $0.name == input }) else { return true }
        return entry.holdsFor.contains { $0.name == input || $0.name == spec.group.rawValue }
    }

    /// The effects the generator gives meaning to keep the argument it expects, and every
    /// message an effect `sends` is one the spec describes.
    mutating func effects() {
        let messages = spec.messages.map(\.name)
        for effect in spec.effects {
            for message in effect.sends where !messages.contains(message.name) {
                sink.error(message.line, "effect '\(effect.name)' sends '\(message.name)', which is not under 'messages:'",
                           fix: Names.hint(for: message.name, among: messages,
                                           otherwise: "describe '\(message.name)' under 'messages:', or name a message described there"))
            }
            if effect.recipient != .client && effect.sends.isEmpty {
                sink.error(effect.line, "effect '\(effect.name)' says who gets what it sends ('to'), but sends nothing",
                           fix: "add 'sends: [MESSAGE]' or remove 'to'")
            }
        }
        for effect in spec.effects where effect.line > 0 {
            guard let builtIn = EffectDeclaration.builtIn.first(where: { $0.name == effect.name }),
                  builtIn.argument != effect.argument else { continue }
            sink.error(effect.line, "effect '\(effect.name)' takes \(effect.argument.map { "a \($0.words)" } ?? "no argument"), "
                       + "but the kernel's '\(effect.name)' takes \(builtIn.argument.map { "a \($0.words)" } ?? "none")",
                       fix: builtIn.argument.map { "write 'argument: \($0.rawValue)'" } ?? "remove 'argument'")
        }
    }

    /// Every hook input is raised by exactly one hook (an answer or its throw).
    mutating func hooks() {
        var raisedBy: [String: HookSpec] = [:]
        let hookInputs = spec.inputs.filter { $0.group == .hook }.map(\.name)
        for hook in spec.hooks {
            for input in hook.answers + (hook.onThrow.map { [$0] } ?? []) {
                guard let entry = spec.inputs.first(where: { $0.name == input.name }) else {
                    sink.error(input.line, "hook '\(hook.name)' raises '\(input.name)', which is not an input",
                               fix: Names.hint(for: input.name, among: hookInputs,
                                               otherwise: "add an input '\(input.name)' with 'group: hook'"))
                    continue
                }
                if entry.group != .hook {
                    sink.error(input.line, "hook '\(hook.name)' raises '\(input.name)', an input of group '\(entry.group.rawValue)'",
                               fix: "raise an input of group hook")
                } else if let other = raisedBy[input.name] {
                    sink.error(input.line, "hooks '\(other.name)' (line \(other.line)) and '\(hook.name)' both raise '\(input.name)'",
                               fix: "give each hook its own inputs")
                } else {
                    raisedBy[input.name] = hook
                }
            }
            if hook.answers.isEmpty, let input = hook.onThrow {
                sink.error(input.line, "hook '\(hook.name)' has no answers, so its throw cannot raise '\(input.name)'",
                           fix: "write 'on_throw: log' (a hook without answers is not tied to an attempt)")
            }
        }
        for input in spec.inputs where input.group == .hook && raisedBy[input.name] == nil {
            sink.error(input.line, "input '\(input.name)' is in group hook, but no hook raises it",
                       fix: "add it to a hook's 'answers' or 'on_throw', or move it to another group")
        }
    }

    mutating func timers() {
        let names = spec.defaults.map(\.name)
        // A timer runs either `after` a default or `until` a client's instant, never both.
        for timer in spec.timers {
            if timer.after.isEmpty == timer.until.isEmpty {
                sink.error(timer.line, "timer '\(timer.name)' has " + (timer.after.isEmpty ? "neither 'after' nor 'until'" : "both 'after' and 'until'"),
                           fix: "give it 'after: DEFAULT' (a duration) or, for a client timer, 'until: INSTANT' ("
                               + TimerSpec.instants.joined(separator: ", ") + ")")
            } else if !timer.until.isEmpty && timer.scope == .server {
                sink.error(timer.untilLine, "server timer '\(timer.name)' runs until '\(timer.until)'",
                           fix: "a server timer runs for 'after: DEFAULT'; 'until' is per client")
            } else if !timer.until.isEmpty && !TimerSpec.instants.contains(timer.until) {
                sink.error(timer.untilLine, "timer '\(timer.name)' runs until '\(timer.until)', which is not a client instant",
                           fix: Names.hint(for: timer.until, among: TimerSpec.instants,
                                           otherwise: "use one of " + TimerSpec.instants.joined(separator: ", ")))
            } else if !timer.until.isEmpty && timer.times != 1 {
                sink.error(timer.untilLine, "timer '\(timer.name)' runs until '\(timer.until)' with 'times'",
                           fix: "remove 'times': it multiplies an 'after' duration only")
            }
        }
        for timer in spec.timers where !timer.after.isEmpty {
            guard let value = spec.defaults.first(where: { $0.name == timer.after }) else {
                sink.error(timer.afterLine, "timer '\(timer.name)' waits '\(timer.after)', which is not a default",
                           fix: Names.hint(for: timer.after, among: names,
                                           otherwise: "name a default of type ms (defaults: \(names.joined(separator: ", ")))"))
                continue
            }
            if value.type != .ms {
                sink.error(timer.afterLine, "timer '\(timer.name)' waits '\(timer.after)', a default of type \(value.type.rawValue)",
                           fix: "name a default of type ms")
            }
        }
        // Every timer input is raised by exactly one timer, and a timer raises a timer input.
        var firedBy: [String: TimerSpec] = [:]
        let timerInputs = spec.inputs.filter { $0.group == .timer }.map(\.name)
        for timer in spec.timers where !timer.fires.isEmpty {
            guard let input = spec.inputs.first(where: { $0.name == timer.fires }) else {
                sink.error(timer.firesLine, "timer '\(timer.name)' fires '\(timer.fires)', which is not an input",
                           fix: Names.hint(for: timer.fires, among: timerInputs,
                                           otherwise: "add an input '\(timer.fires)' with 'group: timer'"))
                continue
            }
            if input.group != .timer {
                sink.error(timer.firesLine, "timer '\(timer.name)' fires '\(input.name)', an input of group '\(input.group.rawValue)'",
                           fix: "fire an input of group timer (or set 'group: timer' on '\(input.name)', line \(input.line))")
            } else if let other = firedBy[input.name] {
                sink.error(timer.firesLine, "timers '\(other.name)' (line \(other.line)) and '\(timer.name)' both fire '\(input.name)'",
                           fix: "give each timer its own input")
            } else {
                firedBy[input.name] = timer
            }
        }
        for input in spec.inputs where input.group == .timer && firedBy[input.name] == nil {
            sink.error(input.line, "input '\(input.name)' is in group timer, but no timer fires it",
                       fix: "add 'fires: \(input.name)' to a timer, or move the input to another group")
        }
    }

    mutating func limits() {
        let stateNames = spec.states.map(\.name)
        for limit in spec.limits {
            let what = "limit '\(limit.name)'"
            if let value = spec.defaults.first(where: { $0.name == limit.max }) {
                if value.type != .int {
                    sink.error(limit.maxLine, "\(what) reads its maximum from '\(limit.max)', a default of type \(value.type.rawValue)",
                               fix: "name a default of type int (0 turns the limit off)")
                }
            } else if !limit.max.isEmpty {
                sink.error(limit.maxLine, "\(what) reads its maximum from '\(limit.max)', which is not a default",
                           fix: "add '\(limit.max): { value: 0, type: int }' under 'defaults:'")
            }
            for state in limit.countsIn {
                guard reference(state.name, line: state.line, kind: "state", section: "states", known: stateNames,
                                context: " in 'counts_in'") else { continue }
                if spec.states.first(where: { $0.name == state.name })?.terminal == true {
                    sink.error(state.line, "\(what) counts in terminal state '\(state.name)'",
                               fix: "remove it (a terminal state receives no messages)")
                }
            }
            if let input = spec.inputs.first(where: { $0.name == limit.raises }) {
                if input.group != .client || input.event != nil {
                    sink.error(limit.raisesLine, "\(what) raises '\(input.name)', which is not a client input without an event",
                               fix: "raise a client input with no 'event' (line \(input.line))")
                }
            } else if !limit.raises.isEmpty {
                sink.error(limit.raisesLine, "\(what) raises '\(limit.raises)', which is not an input",
                           fix: "add an input '\(limit.raises)' with 'group: client'")
            }
        }
    }

    mutating func closeCodes() {
        var seen: [Int: CloseCodeSpec] = [:]
        for close in spec.closeCodes where close.codeLine > 0 {
            let what = "close code '\(close.name)'"
            if !(1000...4999).contains(close.code) {
                sink.error(close.codeLine, "\(what) has number \(close.code), outside 1000-4999",
                           fix: "use 4000-4999 for application codes (1000-2999 are RFC 6455's)")
            } else if [1004, 1005, 1006, 1015].contains(close.code) {
                sink.error(close.codeLine, "\(what) has number \(close.code), which RFC 6455 reserves (never sent in a close frame)",
                           fix: "use another code (4000-4999 for application codes)")
            }
            if let other = seen[close.code] {
                sink.error(close.codeLine, "\(what) reuses \(close.code) of '\(other.name)' (line \(other.line))",
                           fix: "give each close code its own number")
            } else {
                seen[close.code] = close
            }
        }
    }

    mutating func http() {
        for answer in spec.http where answer.reason.isEmpty && answer.status != 0 {
            sink.error(answer.line, "http answer '\(answer.name)' has status \(answer.status), which has no standard reason phrase here",
                       fix: "add 'reason: ...'")
        }
    }

    mutating func connection() {
        guard let connection = spec.connection else { return }
        func line(_ field: String) -> Int { connection.fieldLines[field] ?? connection.line }
        for (field, name, type) in [("upgrade_timeout", connection.upgradeTimeout, DefaultType.ms),
                                    ("idle_timeout", connection.idleTimeout, .ms), ("ping", connection.ping, .bool),
                                    ("shutdown_grace", connection.shutdownGrace, .ms),
                                    ("shutdown_batch_size", connection.shutdownBatchSize, .int)] {
            guard let value = spec.defaults.first(where: { $0.name == name }) else {
                sink.error(line(field), "'\(field)' names '\(name)', which is not a default",
                           fix: "name a default of type \(type.rawValue)")
                continue
            }
            if value.type != type {
                sink.error(line(field), "'\(field)' names '\(name)', a default of type \(value.type.rawValue)",
                           fix: "name a default of type \(type.rawValue)")
            }
        }
        let answers = spec.http.map(\.name)
        for (field, name) in [("upgrade_timeout_answer", connection.upgradeTimeoutAnswer), ("not_found_answer", connection.notFoundAnswer),
                              ("shutdown_pending_upgrade_answer", connection.shutdownPendingUpgradeAnswer),
                              ("origin_forbidden_answer", connection.originForbiddenAnswer),
                              ("too_many_connections_answer", connection.tooManyConnectionsAnswer)] {
            _ = reference(name, line: line(field), kind: "http answer", section: "http", known: answers, context: " in '\(field)'")
        }
        let steps = ConnectionSpec.shutdownSteps
        for step in connection.shutdownOrder where !steps.contains(step) {
            sink.error(line("shutdown_order"), "'shutdown_order' has unknown step '\(step)'",
                       fix: Names.hint(for: step, among: steps, otherwise: "use \(steps.joined(separator: ", "))"))
        }
        let missing = steps.filter { step in connection.shutdownOrder.filter { $0 == step }.count != 1 }
        if !missing.isEmpty, connection.shutdownOrder.allSatisfy(steps.contains) {
            sink.error(line("shutdown_order"), "'shutdown_order' must list each step once; not so for \(missing.joined(separator: ", "))",
                       fix: "list \(steps.joined(separator: ", ")) in the order you want")
        }
        for (field, value) in [("ping_divisor", connection.pingDivisor), ("shutdown_batch_interval_ms", connection.shutdownBatchInterval),
                               ("shutdown_poll_interval_ms", connection.shutdownPollInterval)] where value < 1 {
            sink.error(line(field), "'\(field)' is \(value)", fix: "use a whole number of at least 1")
        }
    }

    mutating func channels() {
        guard let channels = spec.channels else { return }
        let keys = [("presence_room", channels.presenceRoom), ("presence_instance", channels.presenceInstance),
                    ("history_stream", channels.historyStream), ("history_meta", channels.historyMeta)]
            .compactMap { field, template in template.map { (field, $0) } }
        for (field, template) in [("room", channels.room), ("client", channels.client), ("user", channels.user)] + keys {
            let line = channels.fieldLines[field] ?? channels.line
            guard let open = template.firstIndex(of: "{"), let close = template.firstIndex(of: "}"), open < close,
                  template.filter({ $0 == "{" }).count == 1, template.filter({ $0 == "}" }).count == 1 else {
                sink.error(line, "channel '\(field)' is not a template with one '{name}' placeholder",
                           fix: "write it like \"prefix:{\(field)}\"")
                continue
            }
            let name = String(template[template.index(after: open)..<close])
            if name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) || name.first!.isNumber {
                sink.error(line, "channel '\(field)' has placeholder '{\(name)}', not '{identifier}'",
                           fix: "name the placeholder like {\(field)}")
                continue
            }
            if field.hasPrefix("presence_") || field.hasPrefix("history_") { continue }  // a key: nothing subscribes to it
            // Every instance must hear what it publishes there: some pattern covers the template
            // for any target (checked with two unlike targets).
            let samples = ["x", "Room 42:z"].map { template.replacingOccurrences(of: "{\(name)}", with: $0) }
            if !channels.psubscribe.contains(where: { pattern in samples.allSatisfy { Self.glob(pattern, matches: $0) } })
                && !samples.allSatisfy(channels.subscribe.contains) {
                sink.error(line, "channel '\(field)' (\"\(template)\") is covered by no subscription",
                           fix: "add a pattern like \"\(template.replacingOccurrences(of: "{\(name)}", with: "*"))\" to 'psubscribe'")
            }
        }
        if !channels.broadcast.isEmpty, !channels.subscribe.contains(channels.broadcast),
           !channels.psubscribe.contains(where: { Self.glob($0, matches: channels.broadcast) }) {
            sink.error(channels.fieldLines["broadcast"] ?? channels.line,
                       "channel 'broadcast' (\"\(channels.broadcast)\") is covered by no subscription",
                       fix: "add \"\(channels.broadcast)\" to 'subscribe'")
        }
    }

    /// Redis PSUBSCRIBE pattern matching: `*` any run, `?` one character, `\\x` a literal `x`
    /// (character classes are treated as literals: the spec's patterns do not use them).
    static func glob(_ pattern: String, matches text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        func match(_ i: Int, _ j: Int) -> Bool {
            if i == p.count { return j == t.count }
            switch p[i] {
            case "*": return (j...t.count).contains { match(i + 1, $0) }
            case "?": return j < t.count && match(i + 1, j + 1)
            case "\\" where i + 1 < p.count: return j < t.count && t[j] == p[i + 1] && match(i + 2, j + 1)
            default: return j < t.count && t[j] == p[i] && match(i + 1, j + 1)
            }
        }
        return match(0, 0)
    }

    // MARK: - Graph and usage

    mutating func reachability(_ rows: [TableRow]) {
        let initial = spec.states.filter(\.initial)
        guard initial.count == 1 else { return }
        var reached: Set<String> = [initial[0].name]
        var queue = [initial[0].name]
        var edges: [String: [String]] = [:]
        for row in rows where row.state != row.next { edges[row.state, default: []].append(row.next) }
        while let state = queue.popLast() {
            for next in edges[state] ?? [] where !reached.contains(next) {
                reached.insert(next)
                queue.append(next)
            }
        }
        for state in spec.states where !reached.contains(state.name) {
            sink.error(state.line, "state '\(state.name)' is unreachable from the initial state '\(initial[0].name)'",
                       fix: "add a row with 'to: \(state.name)', or remove the state")
        }
    }

    /// A client joins the broadcast audience and rooms only where it receives deliveries.
    mutating func deliveries(_ rows: [TableRow]) {
        guard let delivery = spec.inputs.first(where: { $0.group == .delivery })?.name else { return }
        let receiving = Set(rows.filter { $0.input == delivery && $0.effects.contains { $0.kind == .deliver } }.map(\.state))
        var reported: Set<Int> = []
        for row in rows where !receiving.contains(row.next) && !reported.contains(row.line) {
            guard let effect = row.effects.first(where: { $0.kind == .admit || $0.kind == .joinValidatedRooms }) else { continue }
            reported.insert(row.line)
            sink.error(row.line, "'\(effect.text)' leads to '\(row.next)', a state whose '\(delivery)' row does not 'deliver'",
                       fix: "deliver in '\(row.next)' (a row 'from: \(row.next), on: \(delivery), do: [deliver]'), or admit in another state")
        }
    }

    mutating func unused() {
        let used = self.used
        let guardUsed = used["guard"] ?? []
        for entry in spec.guards where !guardUsed.contains(entry.name) {
            sink.error(entry.line, "guard '\(entry.name)' is never tested", fix: "use it in a row's 'when', or remove it")
        }
        for entry in spec.hooks where !(used["hooks"] ?? []).contains(entry.name) {
            sink.error(entry.line, "hook '\(entry.name)' is never called", fix: "use 'call: \(entry.name)' in a row, or remove it")
        }
        for entry in spec.timers where entry.scope == .client && !(used["timers"] ?? []).contains(entry.name) {
            sink.error(entry.line, "timer '\(entry.name)' is never armed or cancelled",
                       fix: "use 'arm_timer: \(entry.name)' in a row, or remove it")
        }
        for entry in spec.errors where !(used["errors"] ?? []).contains(entry.name) {
            sink.error(entry.line, "error '\(entry.name)' is never sent",
                       fix: "use 'send_error: \(entry.name)' in a row, or remove it")
        }
        for entry in spec.closeCodes where entry.origin == .kernel && !(used["close_codes"] ?? []).contains(entry.name) {
            sink.error(entry.line, "close code '\(entry.name)' is never used",
                       fix: "use 'close: \(entry.name)' in a row, mark it 'origin: codec', or remove it")
        }
    }
}
