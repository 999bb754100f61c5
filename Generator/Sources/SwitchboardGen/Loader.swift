import Foundation
import SwitchboardCrypto

/// Parse -> model -> validate: reads a spec file into a `ProtocolSpec` with its table expanded.
public enum SpecLoader {
    /// Loads and validates the spec at `path`. Throws every diagnostic (sorted by line) when any
    /// is an error; warnings of a valid spec are in `ProtocolSpec.warnings`.
    public static func load(path: String) throws(SpecDiagnostics) -> ProtocolSpec {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SpecDiagnostics([Diagnostic(.error, file: path, line: 1, "cannot read the spec",
                                              fix: "check the path (--spec PATH)")])
        }
        return try load(bytes: [UInt8](data), file: path)
    }

    /// Loads and validates spec text; `file` names it in diagnostics, stamps and remarks.
    public static func load(bytes: [UInt8], file: String) throws(SpecDiagnostics) -> ProtocolSpec {
        let (spec, diagnostics) = analyze(bytes: bytes, file: file)
        guard let spec, !diagnostics.contains(where: { $0.severity == .error }) else {
            throw SpecDiagnostics(diagnostics)
        }
        return spec
    }

    /// Every diagnostic of the spec (sorted by line), and the spec when it could be modelled at
    /// all (it may still have errors).
    public static func analyze(bytes: [UInt8], file: String) -> (ProtocolSpec?, [Diagnostic]) {
        var sink = DiagnosticSink(file: file)
        guard let root = YAMLReader.parse(bytes, into: &sink) else { return (nil, sink.sorted) }
        var builder = ModelBuilder(sink: sink, spec: ProtocolSpec(file: file, sha256: SHA256.hex(bytes)))
        builder.build(root)
        var spec = builder.spec
        var all = builder.sink.items
        if builder.structural {
            let result = Validator.check(spec)
            spec.rows = result.rows
            all += result.diagnostics
            all += MessagesValidator.check(spec)
        }
        let sorted = DiagnosticSink.sort(all)
        spec.warnings = sorted.filter { $0.severity == .warning }
        return (spec, sorted)
    }
}

/// The model stage: located YAML nodes -> typed sections, reporting kinds, fields and value types.
struct ModelBuilder {
    var sink: DiagnosticSink
    var spec: ProtocolSpec
    /// False when the document is so broken (no mapping at the root) that validation is pointless.
    var structural = true

    static let sections = [
        "protocol", "states", "inputs", "guards", "hooks", "timers", "limits", "effects", "errors", "close_codes", "startup_errors",
        "http", "connection", "defaults", "rooms", "channels", "messages", "transitions",
    ]
    static let requiredSections = ["protocol", "states", "inputs", "transitions"]

    mutating func build(_ root: YAMLNode) {
        guard case .mapping(let pairs) = root.value else {
            sink.error(root.line, "the spec must be a mapping of sections, not \(root.kindName)",
                       fix: "start with 'protocol:', 'states:', 'inputs:' and 'transitions:' sections")
            structural = false
            return
        }
        for pair in pairs {
            guard Self.sections.contains(pair.key) else {
                sink.error(pair.keyLine, "unknown section '\(pair.key)'",
                           fix: Names.hint(for: pair.key, among: Self.sections,
                                           otherwise: "remove it (sections: \(Self.sections.joined(separator: ", ")))"))
                continue
            }
            spec.sectionLines[pair.key] = pair.keyLine
            section(pair.key, pair.value)
        }
        for name in Self.requiredSections where spec.sectionLines[name] == nil {
            sink.error(1, "missing section '\(name)'", fix: "add a '\(name):' section")
        }
    }

    private mutating func section(_ name: String, _ node: YAMLNode) {
        switch name {
        case "protocol":
            guard let f = fields(node, "section 'protocol'", allowed: ["name", "version"], required: ["name", "version"])
            else { return }
            spec.name = text(f["name"], "name", "section 'protocol'") ?? ""
            spec.version = int(f["version"], "version", "section 'protocol'") ?? 0
        case "states":
            for (key, line, f) in entries(node, name, "state", allowed: ["initial", "terminal", "wire", "doc"],
                                          required: ["wire"]) {
                let what = "state '\(key)'"
                var state = StateSpec(name: key, line: line)
                state.initial = bool(f["initial"], "initial", what) ?? false
                state.terminal = bool(f["terminal"], "terminal", what) ?? false
                state.wire = text(f["wire"], "wire", what) ?? ""
                state.doc = text(f["doc"], "doc", what) ?? ""
                spec.states.append(state)
            }
        case "inputs":
            for (key, line, f) in entries(node, name, "input", allowed: ["group", "event", "doc"], required: ["group"]) {
                let what = "input '\(key)'"
                var input = InputSpec(name: key, line: line)
                if let group: InputGroupName = choice(f["group"], "group", what,
                                                      problem: { "\(what) has unknown group '\($0)'" }) {
                    input.group = group
                }
                if let pair = f["event"] {
                    input.event = text(pair, "event", what)
                    input.eventLine = pair.value.line
                }
                input.doc = text(f["doc"], "doc", what) ?? ""
                spec.inputs.append(input)
            }
        case "guards":
            for (key, line, f) in entries(node, name, "guard", allowed: ["setting", "configured", "holds_for", "doc"],
                                          required: []) {
                let what = "guard '\(key)'"
                var entry = GuardSpec(name: key, line: line, doc: text(f["doc"], "doc", what) ?? "")
                if let pair = f["setting"], let setting = text(pair, "setting", what) {
                    entry.source = .setting(setting)
                    entry.sourceLine = pair.value.line
                }
                if let pair = f["configured"], let hook = text(pair, "configured", what) {
                    if f["setting"] != nil {
                        sink.error(pair.keyLine, "\(what) has both 'setting' and 'configured'",
                                   fix: "keep one: a guard reads one setting or one hook's presence")
                    } else {
                        entry.source = .configured(hook)
                        entry.sourceLine = pair.value.line
                    }
                }
                if case .names(let inputs)? = selector(f["holds_for"], "holds_for", kind: "input or input group") {
                    entry.holdsFor = inputs
                }
                spec.guards.append(entry)
            }
        case "hooks":
            for (key, line, f) in entries(node, name, "hook", allowed: ["answers", "on_throw", "doc"], required: ["on_throw"]) {
                let what = "hook '\(key)'"
                var hook = HookSpec(name: key, line: line, doc: text(f["doc"], "doc", what) ?? "")
                if case .names(let inputs)? = selector(f["answers"], "answers", kind: "hook input") { hook.answers = inputs }
                if let pair = f["on_throw"], let value = text(pair, "on_throw", what), value != "log" {
                    hook.onThrow = SpecName(name: value, line: pair.value.line)
                }
                spec.hooks.append(hook)
            }
        case "timers":
            for (key, line, f) in entries(node, name, "timer", allowed: ["scope", "after", "until", "times", "fires", "doc"],
                                          required: ["fires"]) {
                let what = "timer '\(key)'"
                var timer = TimerSpec(name: key, line: line)
                if let scope: TimerScope = choice(f["scope"], "scope", what, problem: { "\(what) has scope '\($0)'" },
                                                  fix: { _, _ in "use client (the default: one per client, armed by rows)"
                                                                 + " or server (one per instance)" }) {
                    timer.scope = scope
                }
                timer.after = f["after"].flatMap { text($0, "after", what) } ?? ""
                timer.afterLine = f["after"]?.value.line ?? line
                timer.until = f["until"].flatMap { text($0, "until", what) } ?? ""
                timer.untilLine = f["until"]?.value.line ?? line
                timer.fires = text(f["fires"], "fires", what) ?? ""
                timer.firesLine = f["fires"]?.value.line ?? line
                if let pair = f["times"], let times = int(pair, "times", what) {
                    if times < 1 {
                        sink.error(pair.value.line, "\(what) has 'times: \(times)'", fix: "use a whole number of at least 1")
                    } else {
                        timer.times = times
                    }
                }
                timer.doc = text(f["doc"], "doc", what) ?? ""
                spec.timers.append(timer)
            }
        case "effects":
            spec.effects = []
            for (key, line, f) in entries(node, name, "effect", allowed: ["argument", "sends", "to", "doc"], required: []) {
                let what = "effect '\(key)'"
                var effect = EffectDeclaration(name: key, line: line, doc: text(f["doc"], "doc", what) ?? "")
                let otherwise = "use text, error, close_code, timer or hook (or no argument)"
                if let argument: EffectArgument = choice(f["argument"], "argument", what,
                                                         problem: { "\(what) has argument '\($0)'" },
                                                         fix: { Names.hint(for: $0, among: $1, otherwise: otherwise) }) {
                    effect.argument = argument
                }
                if case .names(let messages)? = selector(f["sends"], "sends", kind: "message") { effect.sends = messages }
                if let recipient: EffectRecipient = choice(f["to"], "to", what, problem: { "\(what) sends to '\($0)'" },
                                                           fix: { Names.hint(for: $0, among: $1, otherwise: "use client or room") }) {
                    effect.recipient = recipient
                }
                spec.effects.append(effect)
            }
        case "limits":
            for (key, line, f) in entries(node, name, "limit", allowed: ["max", "counts_in", "raises", "doc"],
                                          required: ["max", "counts_in", "raises"]) {
                let what = "limit '\(key)'"
                var limit = LimitSpec(name: key, line: line)
                limit.max = text(f["max"], "max", what) ?? ""
                limit.maxLine = f["max"]?.value.line ?? line
                if case .names(let states)? = selector(f["counts_in"], "counts_in", kind: "state") {
                    limit.countsIn = states
                } else if f["counts_in"]?.value.scalar == "*" {
                    sink.error(f["counts_in"]?.value.line ?? line, "\(what) counts in \"*\"",
                               fix: "list the states in which messages count: [a, b]")
                }
                limit.raises = text(f["raises"], "raises", what) ?? ""
                limit.raisesLine = f["raises"]?.value.line ?? line
                limit.doc = text(f["doc"], "doc", what) ?? ""
                spec.limits.append(limit)
            }
        case "errors":
            for (key, line, f) in entries(node, name, "error", allowed: ["message", "trigger", "doc"],
                                          required: ["message", "trigger"]) {
                let what = "error '\(key)'"
                var error = ErrorSpec(name: key, line: line)
                error.message = text(f["message"], "message", what) ?? ""
                error.trigger = text(f["trigger"], "trigger", what) ?? ""
                error.doc = text(f["doc"], "doc", what) ?? ""
                spec.errors.append(error)
            }
        case "close_codes":
            closeCodes(node)
        case "startup_errors":
            for (key, line, f) in entries(node, name, "startup error", allowed: ["message", "trigger"],
                                          required: ["message", "trigger"]) {
                let what = "startup error '\(key)'"
                var error = StartupErrorSpec(name: key, line: line)
                error.message = text(f["message"], "message", what) ?? ""
                error.trigger = text(f["trigger"], "trigger", what) ?? ""
                spec.startupErrors.append(error)
            }
        case "http":
            for (key, line, f) in entries(node, name, "http answer",
                                          allowed: ["status", "reason", "body", "headers", "trigger", "doc"],
                                          required: ["status", "body", "trigger"]) {
                let what = "http answer '\(key)'"
                var answer = HTTPAnswerSpec(name: key, line: line)
                if let pair = f["status"], let status = int(pair, "status", what) {
                    if (100...599).contains(status) {
                        answer.status = status
                    } else {
                        sink.error(pair.value.line, "\(what) has status \(status), outside 100-599",
                                   fix: "use an HTTP status code")
                    }
                }
                answer.body = text(f["body"], "body", what) ?? ""
                answer.reason = text(f["reason"], "reason", what) ?? HTTPStatus.phrase(answer.status)
                if let pair = f["headers"] {
                    if case .mapping(let headers) = pair.value.value {
                        for header in headers {
                            if let value = header.value.scalar {
                                answer.headers.append(HTTPHeaderSpec(name: header.key, value: value))
                            } else {
                                sink.error(header.value.line, "header '\(header.key)' of \(what) must be a scalar",
                                           fix: "write 'Name: value'")
                            }
                        }
                    } else if !pair.value.isNull {
                        sink.error(pair.value.line, "field 'headers' of \(what) must be a mapping, not \(pair.value.kindName)",
                                   fix: "write one 'Header-Name: value' per line below it")
                    }
                }
                answer.trigger = text(f["trigger"], "trigger", what) ?? ""
                answer.doc = text(f["doc"], "doc", what) ?? ""
                spec.http.append(answer)
            }
        case "defaults":
            for (key, line, f) in entries(node, name, "default", allowed: ["value", "type", "doc"],
                                          required: ["value", "type"]) {
                if let value = defaultValue(key, f) {
                    spec.defaults.append(DefaultSpec(name: key, line: line, type: value.0, value: value.1,
                                                     doc: text(f["doc"], "doc", "default '\(key)'") ?? ""))
                }
            }
        case "rooms":
            let what = "section 'rooms'"
            guard let f = fields(node, what, allowed: ["min_length", "max_length", "reserved_prefix"],
                                 required: ["min_length", "max_length", "reserved_prefix"]) else { return }
            var rooms = RoomsSpec(line: node.line)
            rooms.minLength = int(f["min_length"], "min_length", what) ?? 0
            rooms.maxLength = int(f["max_length"], "max_length", what) ?? 0
            rooms.reservedPrefix = text(f["reserved_prefix"], "reserved_prefix", what) ?? ""
            if rooms.minLength < 0 || rooms.maxLength < rooms.minLength {
                sink.error(f["max_length"]?.keyLine ?? node.line,
                           "room name lengths \(rooms.minLength)...\(rooms.maxLength) are not a range",
                           fix: "use 0 <= min_length <= max_length")
            }
            spec.rooms = rooms
        case "channels":
            channels(node)
        case "connection":
            connection(node)
        case "messages":
            messages(node)
        case "transitions":
            transitions(node)
        default:
            break
        }
    }

    private mutating func closeCodes(_ node: YAMLNode) {
        for (key, line, f) in entries(node, "close_codes", "close code",
                                      allowed: ["code", "reason", "reconnect", "origin", "triggers", "advice"],
                                      required: ["code", "reason", "reconnect"]) {
            let what = "close code '\(key)'"
            var close = CloseCodeSpec(name: key, line: line)
            if let pair = f["code"], let code = int(pair, "code", what) {
                close.code = code
                close.codeLine = pair.value.line
            }
            close.reason = text(f["reason"], "reason", what) ?? ""
            if let advice: ReconnectAdviceName = choice(f["reconnect"], "reconnect", what,
                                                        problem: { "\(what) has reconnect '\($0)'" },
                                                        fix: { _, _ in "use \"yes\", \"no\" or with_new_token" }) {
                close.reconnect = advice
            }
            if let origin: CloseOriginName = choice(f["origin"], "origin", what, problem: { "\(what) has origin '\($0)'" },
                                                    fix: { _, _ in "use kernel (the default), codec or request" }) {
                close.origin = origin
            }
            close.triggers = textList(f["triggers"], "triggers", what) ?? []
            close.advice = text(f["advice"], "advice", what) ?? ""
            spec.closeCodes.append(close)
        }
    }

    private mutating func channels(_ node: YAMLNode) {
        let what = "section 'channels'"
        let names = ["broadcast", "room", "client", "user", "subscribe", "psubscribe", "emitter_server_id"]
        let keys = ["presence_room", "presence_instance", "history_stream", "history_meta"]
        guard let f = fields(node, what, allowed: names + keys, required: names) else { return }
        var channels = ChannelsSpec(line: node.line)
        channels.presenceRoom = text(f["presence_room"], "presence_room", what)
        channels.presenceInstance = text(f["presence_instance"], "presence_instance", what)
        channels.historyStream = text(f["history_stream"], "history_stream", what)
        channels.historyMeta = text(f["history_meta"], "history_meta", what)
        for name in keys { channels.fieldLines[name] = f[name]?.value.line ?? node.line }
        channels.broadcast = text(f["broadcast"], "broadcast", what) ?? ""
        channels.room = text(f["room"], "room", what) ?? ""
        channels.client = text(f["client"], "client", what) ?? ""
        channels.user = text(f["user"], "user", what) ?? ""
        channels.subscribe = textList(f["subscribe"], "subscribe", what) ?? []
        channels.psubscribe = textList(f["psubscribe"], "psubscribe", what) ?? []
        channels.emitterServerID = text(f["emitter_server_id"], "emitter_server_id", what) ?? ""
        for name in names { channels.fieldLines[name] = f[name]?.value.line ?? node.line }
        spec.channels = channels
    }

    private mutating func connection(_ node: YAMLNode) {
        let what = "section 'connection'"
        let names = ["upgrade_timeout", "upgrade_timeout_answer", "not_found_answer", "idle_timeout", "ping", "ping_divisor",
                     "shutdown_grace", "shutdown_batch_size", "shutdown_batch_interval_ms", "shutdown_poll_interval_ms",
                     "shutdown_pending_upgrade_answer", "shutdown_order", "origin_forbidden_answer", "too_many_connections_answer"]
        guard let f = fields(node, what, allowed: names, required: names) else { return }
        var connection = ConnectionSpec(line: node.line)
        connection.upgradeTimeout = text(f["upgrade_timeout"], "upgrade_timeout", what) ?? ""
        connection.upgradeTimeoutAnswer = text(f["upgrade_timeout_answer"], "upgrade_timeout_answer", what) ?? ""
        connection.notFoundAnswer = text(f["not_found_answer"], "not_found_answer", what) ?? ""
        connection.idleTimeout = text(f["idle_timeout"], "idle_timeout", what) ?? ""
        connection.ping = text(f["ping"], "ping", what) ?? ""
        connection.pingDivisor = int(f["ping_divisor"], "ping_divisor", what) ?? 2
        connection.shutdownGrace = text(f["shutdown_grace"], "shutdown_grace", what) ?? ""
        connection.shutdownBatchSize = text(f["shutdown_batch_size"], "shutdown_batch_size", what) ?? ""
        connection.shutdownBatchInterval = int(f["shutdown_batch_interval_ms"], "shutdown_batch_interval_ms", what) ?? 10
        connection.shutdownPollInterval = int(f["shutdown_poll_interval_ms"], "shutdown_poll_interval_ms", what) ?? 50
        connection.shutdownPendingUpgradeAnswer = text(f["shutdown_pending_upgrade_answer"], "shutdown_pending_upgrade_answer", what) ?? ""
        connection.shutdownOrder = textList(f["shutdown_order"], "shutdown_order", what) ?? []
        connection.originForbiddenAnswer = text(f["origin_forbidden_answer"], "origin_forbidden_answer", what) ?? ""
        connection.tooManyConnectionsAnswer = text(f["too_many_connections_answer"], "too_many_connections_answer", what) ?? ""
        for name in names { connection.fieldLines[name] = f[name]?.value.line ?? node.line }
        spec.connection = connection
    }
}
