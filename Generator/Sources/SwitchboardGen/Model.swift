/// The typed spec: every section of spec/protocol.yaml, each entry with its 1-based line.
/// Built by `SpecLoader`; `rows` (the expanded table) is filled in by `Validator`.
public struct ProtocolSpec: Sendable {
    /// The spec path as given (used in diagnostics, stamps and remarks).
    public var file: String
    /// Lowercase hex SHA-256 of the spec bytes.
    public var sha256: String
    public var name = ""
    public var version = 0
    public var states: [StateSpec] = []
    public var inputs: [InputSpec] = []
    public var guards: [GuardSpec] = []
    public var hooks: [HookSpec] = []
    public var timers: [TimerSpec] = []
    public var limits: [LimitSpec] = []
    /// The effect vocabulary (`effects`; the built-in one when the section is absent).
    public var effects: [EffectDeclaration] = EffectDeclaration.builtIn
    public var errors: [ErrorSpec] = []
    public var closeCodes: [CloseCodeSpec] = []
    public var startupErrors: [StartupErrorSpec] = []
    public var http: [HTTPAnswerSpec] = []
    public var defaults: [DefaultSpec] = []
    public var rooms: RoomsSpec?
    public var channels: ChannelsSpec?
    public var connection: ConnectionSpec?
    /// The `messages` section (MessagesModel.swift), in spec order.
    public var messages: [MessageSpec] = []
    /// The `transitions` items as written.
    public var transitions: [TransitionSpec] = []
    /// The expanded table: one row per (state, input) of each item, grouped by cell in state and
    /// input order, spec order within a cell.
    public var rows: [TableRow] = []
    /// Warnings found while loading (errors make loading fail).
    public var warnings: [Diagnostic] = []
    /// Line of each section key that is present.
    public var sectionLines: [String: Int] = [:]

    public init(file: String, sha256: String) {
        self.file = file
        self.sha256 = sha256
    }

    /// The rows of one cell, in spec order.
    public func rows(state: String, input: String) -> [TableRow] {
        rows.filter { $0.state == state && $0.input == input }
    }
}

public struct StateSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var initial = false
    public var terminal = false
    /// The state name on the wire (several states may share one).
    public var wire = ""
    public var doc = ""
}

/// The input groups the kernel knows.
public enum InputGroupName: String, Sendable, CaseIterable {
    case client, hook, timer, transport, server, delivery
}

public struct InputSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var group: InputGroupName = .client
    /// The wire event that selects this client input (`event:`).
    public var event: String?
    public var eventLine = 0
    public var doc = ""
}

/// Where a guard's value comes from.
public enum GuardSource: Sendable, Equatable {
    /// Computed by the kernel in Swift: a requirement of the generated `GuardComputing`.
    case computed
    /// A bool default (`setting: NAME`), read from the kernel's settings.
    case setting(String)
    /// Whether the application configured a hook (`configured: HOOK`).
    case configured(String)
}

public struct GuardSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var source: GuardSource = .computed
    public var sourceLine = 0
    /// The inputs (names or group names) for which the guard can hold; empty: any input.
    public var holdsFor: [SpecName] = []
    public var doc = ""

    public init(name: String, line: Int, doc: String = "") {
        self.name = name
        self.line = line
        self.doc = doc
    }
}

public struct HookSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    /// The hook inputs its answers raise.
    public var answers: [SpecName] = []
    /// The hook input a throw raises; nil: the throw is logged and changes nothing (`on_throw: log`).
    public var onThrow: SpecName?
    public var doc = ""

    public init(name: String, line: Int, doc: String = "") {
        self.name = name
        self.line = line
        self.doc = doc
    }
}

/// Whom a timer belongs to.
public enum TimerScope: String, Sendable, CaseIterable {
    /// One per client, armed and cancelled by rows.
    case client
    /// One per instance, armed at start and after each firing, stopped by shutdown; a firing
    /// reaches every live client.
    case server
}

public struct TimerSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var scope: TimerScope = .client
    /// The default (type ms) the timer waits; empty for a timer that runs `until` an instant.
    public var after = ""
    public var afterLine = 0
    /// The client's instant (one of `TimerSpec.instants`) the timer runs until, instead of
    /// `after`: its deadline differs per client, so no setting can hold it.
    public var until = ""
    public var untilLine = 0
    public var times = 1
    /// The timer input a firing raises.
    public var fires = ""
    public var firesLine = 0
    public var doc = ""

    /// The instants a client timer may run `until`, each kept by the kernel per client
    /// (`ClientInstant`): `expires_at`, the expiry of the client's credentials as the
    /// authenticate or refresh hook answered it (a client without one has the timer disarmed).
    public static let instants = ["expires_at"]
}

/// A per-client message counter (spec `limits`).
public struct LimitSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    /// The default (type int) holding the limit; 0 turns it off.
    public var max = ""
    public var maxLine = 0
    /// The states in which messages count.
    public var countsIn: [SpecName] = []
    /// The client input raised instead of the message that passes the limit.
    public var raises = ""
    public var raisesLine = 0
    public var doc = ""
}

public struct ErrorSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    /// The `data.message` text on the wire.
    public var message = ""
    public var trigger = ""
    public var doc = ""
}

public enum ReconnectAdviceName: String, Sendable, CaseIterable {
    case yes, no
    case withNewToken = "with_new_token"

    /// The advice in words ("yes", "no", "with a new token").
    public var words: String {
        switch self {
        case .yes: "yes"
        case .no: "no"
        case .withNewToken: "with a new token"
        }
    }
}

/// Who raises a close code: the table's `close:` rows (`kernel`), the RFC 6455 codec
/// (`codec`), or an application's disconnect request, which chooses among these (`request`).
public enum CloseOriginName: String, Sendable, CaseIterable {
    case kernel, codec, request
}

public struct CloseCodeSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var code = 0
    public var codeLine = 0
    public var reason = ""
    public var reconnect: ReconnectAdviceName = .no
    public var origin: CloseOriginName = .kernel
    public var triggers: [String] = []
    public var advice = ""
}

public struct StartupErrorSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var message = ""
    public var trigger = ""
}

public struct HTTPAnswerSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var status = 0
    /// The reason phrase of the status line (default: the standard phrase of `status`).
    public var reason = ""
    public var body = ""
    /// Extra response headers, in order.
    public var headers: [HTTPHeaderSpec] = []
    public var trigger = ""
    public var doc = ""
}

public struct HTTPHeaderSpec: Sendable, Equatable {
    public var name: String
    public var value: String
}

/// The connection's life around the client machine (spec `connection`): the upgrade deadline,
/// transport liveness (pings, idle timeout), graceful shutdown and the upgrades refused. Names
/// refer to `defaults`, `http` answers and `close_codes`; numbers are milliseconds.
public struct ConnectionSpec: Sendable, Equatable {
    public var line: Int
    public var upgradeTimeout = ""
    public var upgradeTimeoutAnswer = ""
    public var notFoundAnswer = ""
    public var idleTimeout = ""
    public var ping = ""
    public var pingDivisor = 2
    public var shutdownGrace = ""
    public var shutdownBatchSize = ""
    public var shutdownBatchInterval = 10
    public var shutdownPollInterval = 50
    public var shutdownPendingUpgradeAnswer = ""
    /// The steps that start a shutdown, in order (`ConnectionSpec.shutdownSteps` names them all).
    public var shutdownOrder: [String] = []
    /// The answer to an upgrade whose `Origin` is not allowed, and to one from a client address
    /// (known only from a trusted proxy's header) that is at its connection limit.
    public var originForbiddenAnswer = ""
    public var tooManyConnectionsAnswer = ""
    /// Lines of the fields, for diagnostics.
    public var fieldLines: [String: Int] = [:]

    /// What the engine does when a shutdown starts; `shutdown_order` lists each once.
    public static let shutdownSteps = ["stop_accepting", "shut_down_clients", "answer_pending_requests"]
}

/// The value types of `defaults` and the Swift types they become.
public enum DefaultType: String, Sendable, CaseIterable {
    case string, strings, int, ms, bool

    public var swiftType: String {
        switch self {
        case .string: "String"
        case .strings: "[String]"
        case .int: "Int"
        case .ms: "Int64"
        case .bool: "Bool"
        }
    }
}

public enum DefaultValue: Sendable, Equatable {
    case string(String)
    case strings([String])
    case int(Int64)
    case bool(Bool)
}

public struct DefaultSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var type: DefaultType
    public var value: DefaultValue
    public var doc = ""
}

public struct RoomsSpec: Sendable, Equatable {
    public var line: Int
    public var minLength = 0
    public var maxLength = 0
    public var reservedPrefix = ""
}

public struct ChannelsSpec: Sendable, Equatable {
    public var line: Int
    public var broadcast = ""
    /// Templates with one `{x}` placeholder.
    public var room = ""
    public var client = ""
    public var user = ""
    public var subscribe: [String] = []
    public var psubscribe: [String] = []
    public var emitterServerID = ""
    /// Presence keys (optional templates with one placeholder): the hash of a room's members
    /// and an instance's heartbeat key. Keys, not channels: nothing subscribes to them.
    public var presenceRoom: String?
    public var presenceInstance: String?
    /// History keys (optional templates with one placeholder): a room's stream of messages and
    /// its epoch and last offset.
    public var historyStream: String?
    public var historyMeta: String?
    /// Lines of the fields, for diagnostics.
    public var fieldLines: [String: Int] = [:]
}

/// A name in the spec with its line.
public struct SpecName: Sendable, Equatable {
    public var name: String
    public var line: Int
}

/// `from:` or `on:` of a transition.
public enum Selector: Sendable, Equatable {
    /// `"*"`.
    case all(line: Int)
    case names([SpecName])
}

/// `x` or `not x` in `when:`.
public struct GuardLiteral: Sendable, Equatable, Hashable {
    public var name: String
    public var negated: Bool

    public var text: String { negated ? "not \(name)" : name }
}

/// An effect's name. The vocabulary is declared in the spec's `effects` (rendered as the
/// kernel's `EffectTemplate`); these are the names whose meaning the validator and the docs know.
public struct EffectKind: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }

    public static let ignore: EffectKind = "ignore"
    public static let touch: EffectKind = "touch"
    public static let log: EffectKind = "log"
    public static let sendError: EffectKind = "send_error"
    public static let close: EffectKind = "close"
    public static let armTimer: EffectKind = "arm_timer"
    public static let cancelTimer: EffectKind = "cancel_timer"
    public static let call: EffectKind = "call"
    public static let recordIdentity: EffectKind = "record_identity"
    public static let markEncrypted: EffectKind = "mark_encrypted"
    public static let sendConnected: EffectKind = "send_connected"
    public static let admit: EffectKind = "admit"
    public static let joinValidatedRooms: EffectKind = "join_validated_rooms"
    public static let leaveRooms: EffectKind = "leave_rooms"
    public static let deliver: EffectKind = "deliver"
    public static let release: EffectKind = "release"
    public static let announcePresence: EffectKind = "announce_presence"

    /// The effects that change a client's rooms: where the spec declares `announce_presence`,
    /// a row doing one of them must announce after it (else presence goes stale).
    public static let roomChanging: [EffectKind] = [.admit, .joinValidatedRooms, .leaveRooms, .release]
}

/// One entry of the spec's `effects`: a name the rows may use and the kind of argument it takes.
public struct EffectDeclaration: Sendable, Equatable {
    public var name: String
    public var line: Int
    public var argument: EffectArgument?
    public var doc = ""
    /// `sends`: the messages (names under `messages:`) this effect writes, which the rendered
    /// protocol shows in the cells of the rows that use it, so a client developer sees every
    /// answer an input can get. Empty: it writes nothing the docs need to name.
    public var sends: [SpecName] = []
    /// `to`: who gets `sends`.
    public var recipient: EffectRecipient = .client

    public init(name: String, line: Int, argument: EffectArgument? = nil, doc: String = "") {
        self.name = name
        self.line = line
        self.argument = argument
        self.doc = doc
    }

    /// The effects of a spec without an `effects` section (the kernel's vocabulary), and the
    /// argument kinds the validator requires of the names it gives meaning to.
    public static let builtIn: [EffectDeclaration] = [
        ("ignore", nil), ("touch", nil), ("log", .text), ("send_error", .error), ("close", .closeCode),
        ("arm_timer", .timer), ("cancel_timer", .timer), ("call", .hook), ("record_identity", nil),
        ("mark_encrypted", nil), ("admit", nil), ("send_connected", nil), ("join_validated_rooms", nil),
        ("leave_rooms", nil), ("deliver", nil), ("release", nil),
    ].map { EffectDeclaration(name: $0.0, line: 0, argument: $0.1) }
}

/// Who gets an effect's `sends`: the client whose input it is, or the members of a room.
public enum EffectRecipient: String, Sendable, CaseIterable {
    case client, room
}

public enum EffectArgument: String, Sendable, CaseIterable {
    case text, error
    case closeCode = "close_code"
    case timer, hook

    /// In messages: "close code".
    var words: String { self == .closeCode ? "close code" : rawValue }

    /// Placeholder in fixes: `send_error: ERROR`.
    var placeholder: String {
        switch self {
        case .text: "TEXT"
        case .error: "ERROR"
        case .closeCode: "CLOSE_CODE"
        case .timer: "TIMER"
        case .hook: "HOOK"
        }
    }
}

/// One effect of a row: the kind and, for `log` and the referencing effects, its argument.
public struct RowEffect: Sendable, Equatable, Hashable {
    public var kind: EffectKind
    public var argument: String?

    public init(_ kind: EffectKind, _ argument: String? = nil) {
        self.kind = kind
        self.argument = argument
    }

    /// The spec spelling: `touch`, `send_error: invalid_message_format`.
    public var text: String {
        guard let argument else { return kind.rawValue }
        return kind == .log ? "\(kind.rawValue): \(Names.literal(argument))" : "\(kind.rawValue): \(argument)"
    }
}

/// An effect as written, with its line.
public struct EffectSpec: Sendable, Equatable {
    /// The name as written (may be unknown).
    public var name: String
    public var argument: String?
    public var line: Int
}

/// One item of `transitions`, as written.
public struct TransitionSpec: Sendable, Equatable {
    /// Line of the item's `- from:`.
    public var line: Int
    public var from: Selector
    public var on: Selector
    public var when: [GuardLiteral] = []
    public var whenLine = 0
    /// nil: stay in the from-state.
    public var to: SpecName?
    public var effects: [EffectSpec] = []
}

/// One row of the expanded table.
public struct TableRow: Sendable, Equatable {
    public var state: String
    public var input: String
    /// The `when` literals as written.
    public var when: [GuardLiteral]
    public var next: String
    public var effects: [RowEffect]
    /// Line of the transition item's `- from:`.
    public var line: Int

    public var required: [String] { when.filter { !$0.negated }.map(\.name) }
    public var forbidden: [String] { when.filter(\.negated).map(\.name) }
    public var whenText: String { when.map(\.text).joined(separator: ", ") }
}
