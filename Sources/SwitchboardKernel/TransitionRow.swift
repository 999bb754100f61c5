/// The hand-written vocabulary that the generated table (Generated/Transitions.swift) is made of:
/// guard sets and rows. The effects a row can do are the spec's (Generated/Effects.swift).

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
