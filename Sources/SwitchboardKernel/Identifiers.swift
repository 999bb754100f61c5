/// A connection as the driver knows it. Assigned by the driver, never reused in a process.
public struct ClientHandle: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "#\(rawValue)" }

    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    /// What `Dictionary` and `Set` call: the one-shot hash of the raw value, as a `UInt64` key
    /// gets it, not a `Hasher` made, fed and finalized (some 300 instructions against 100;
    /// the kernel's member lists and the engine's indexes look handles up several times per
    /// connection). Equal handles hash equally either way.
    public func _rawHashValue(seed: Int) -> Int { rawValue._rawHashValue(seed: seed) }
}

/// One call of a hook whose answer comes back as an input; older attempts are stale.
public struct AttemptID: Hashable, Sendable {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
}

/// A timer the kernel asked for: a client's timer of one kind, or a server-wide timer (both
/// declared in the spec's `timers`). The generation makes a replaced or cancelled timer's late
/// firing recognisable.
public struct TimerID: Hashable, Sendable, CustomStringConvertible {
    public enum Owner: Hashable, Sendable {
        case client(ClientHandle, TimerKind)
        case server(ServerTimer)
    }
    public let owner: Owner
    public let generation: UInt64
    public init(_ owner: Owner, generation: UInt64) {
        self.owner = owner
        self.generation = generation
    }
    /// The one-shot hash of one word folding the owner and the generation, as `ClientHandle`
    /// does (the engine keeps armed timers in dictionaries: two arms and two cancels per
    /// connection). Equal ids fold to the same word; unequal ones rarely do, which a hash allows.
    public func _rawHashValue(seed: Int) -> Int {
        let ownerWord: UInt64 = switch owner {
        case .client(let handle, let kind): handle.rawValue &<< 8 | UInt64(kind.rawValue)
        case .server(let timer): ~UInt64(timer.rawValue)
        }
        return (ownerWord ^ generation &* 0x9E37_79B9_7F4A_7C15)._rawHashValue(seed: seed)
    }

    public var description: String {
        switch owner {
        case .client(let handle, let kind): "\(kind.specName)\(handle)@\(generation)"
        case .server(let timer): "\(timer.specName)@\(generation)"
        }
    }
}

/// The time an input happens at: a monotonic clock for timers and activity, and the wall
/// clock for the `time` field of `connected`. Both in milliseconds; the kernel never reads a clock.
public struct Now: Hashable, Sendable {
    public var monotonic: Int64
    public var wall: Int64
    public init(monotonic: Int64, wall: Int64) {
        self.monotonic = monotonic
        self.wall = wall
    }
}

/// A per-client instant a timer may run until (the spec's `until`), in wall-clock milliseconds.
/// Its deadline differs per client, so no setting can hold it; the kernel converts it to the
/// monotonic clock when the timer is armed, and does not arm a timer for a client without one.
public enum ClientInstant: Sendable {
    /// When the client's credentials expire: the expiresAt authenticateFn (or the last refreshFn)
    /// answered.
    case expiresAt
}
