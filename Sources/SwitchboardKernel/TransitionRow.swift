/// The hand-written vocabulary that the generated table (Generated/Transitions.swift) is made of.
/// The generator knows these names; the kernel knows how to execute each one.

/// A set of guards, one bit per `Guard.rawValue`.
public struct GuardSet: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ guards: [Guard]) {
        self.rawValue = guards.reduce(0) { $0 | (1 << UInt32($1.rawValue)) }
    }
    public init(_ guardValue: Guard) { self.rawValue = 1 << UInt32(guardValue.rawValue) }
    public func contains(_ guardValue: Guard) -> Bool { rawValue & (1 << UInt32(guardValue.rawValue)) != 0 }
    public mutating func insert(_ guardValue: Guard) { self.formUnion(GuardSet(guardValue)) }
}

/// An effect as the spec writes it: the kernel fills in client, attempt and deadline.
public enum EffectTemplate: Equatable, Hashable, Sendable {
    /// Explicitly nothing (the spec says so rather than forgetting the cell).
    case ignore
    /// `lastActivity = now`.
    case touch
    /// A log line; the message is spec text.
    case log(String)
    /// `{"event":"error","data":{"message": ...}}` to this client.
    case sendError(ErrorMessage)
    /// Close the connection with this code and reason; the client gets nothing more.
    case close(CloseCode)
    /// Arm (or re-arm) this client's timer of this kind.
    case armTimer(TimerKind)
    /// Cancel this client's timer of this kind.
    case cancelTimer(TimerKind)
    /// Ask the driver to run an application hook; hook answers come back as inputs.
    case call(Hook)
    /// Keep the userId and metadata from the authenticateFn answer.
    case recordIdentity
    /// Mark the client encrypted (handshake succeeded).
    case markEncrypted
    /// Index by user, join the broadcast audience (an encrypted client receives broadcasts
    /// through the outbound transformer), join own id and default rooms.
    case admit
    /// Send `connected` (never through the outbound transformer).
    case sendConnected
    /// Join the rooms validateRoomFn answered.
    case joinValidatedRooms
    /// Leave the requested rooms the client has joined.
    case leaveRooms
    /// In a delivery row: clients in this state receive messages. The kernel reads these rows
    /// through the generated `ClientState.receivesDeliveries`, so routing never runs the table
    /// once per recipient.
    case deliver
    /// Remove from every index, cancel every timer, forget the record.
    case release
}

/// One row of the transition table: in `state`, on `input`, when every `required` guard holds
/// and no `forbidden` one does, go to `next` and perform `effects` in order.
public struct TransitionRow: Sendable {
    public let state: ClientState
    public let input: InputKind
    public let required: GuardSet
    public let forbidden: GuardSet
    public let next: ClientState
    public let effects: [EffectTemplate]
    /// Line of the row in spec/protocol.yaml.
    public let specLine: Int

    public init(
        _ state: ClientState, _ input: InputKind,
        required: GuardSet = [], forbidden: GuardSet = [],
        next: ClientState, _ effects: [EffectTemplate], line: Int
    ) {
        self.state = state
        self.input = input
        self.required = required
        self.forbidden = forbidden
        self.next = next
        self.effects = effects
        self.specLine = line
    }

    /// Whether the row applies under these guard values.
    @inline(__always)
    public func matches(_ holding: GuardSet) -> Bool {
        holding.isSuperset(of: required) && holding.isDisjoint(with: forbidden)
    }
}

extension TransitionTable {
    /// The rows of one (state, input) cell, in spec order.
    @inline(__always)
    public static func cell(_ state: ClientState, _ input: InputKind) -> ArraySlice<TransitionRow> {
        let index = Int(state.rawValue) * InputKind.allCases.count + Int(input.rawValue)
        return rows[Int(cellStart[index])..<Int(cellStart[index + 1])]
    }

    /// The first row of the cell that matches; the validator guarantees exactly one does.
    @inline(__always)
    public static func row(_ state: ClientState, _ input: InputKind, _ holding: GuardSet) -> TransitionRow? {
        for row in cell(state, input) where row.matches(holding) { return row }
        return nil
    }
}
