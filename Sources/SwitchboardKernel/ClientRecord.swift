import SwitchboardJSON

/// What the kernel keeps for one connected client. Internal and mutable in place; the public
/// view is `ClientInfo`.
final class ClientRecord {
    let handle: ClientHandle
    let id: String
    // Read or written for every message, so marked: without the marks on `state`, `userID`,
    // `encrypted`, `lastActivity`, `timers` and `messageCounts` (the kernel runs on one thread
    // at a time) measured: 88 instructions per echo round trip (scripts/callgrind-echo,
    // 7,686 -> 7,774). The other properties change only around hooks and room changes: unmarked
    // (7,677 with them marked, 7,686 without).
    @exclusivity(unchecked) var state: ClientState = .initial
    @exclusivity(unchecked) var userID: String?
    var metadata: JSONValue?
    @exclusivity(unchecked) var encrypted = false
    /// Unchecked too: every client joins its own room (and the default ones) when admitted.
    @exclusivity(unchecked) var rooms = RoomSet()
    @exclusivity(unchecked) var lastActivity: Int64
    /// The current hook attempt; answers for another one are stale.
    var attempt: AttemptID?
    /// When the client's credentials expire (wall-clock ms), as authenticateFn or refreshFn
    /// answered; nil: never. The `token_expiry` timer runs until it.
    var expiresAt: Int64?
    /// Generation of each armed timer by kind; 0 = not armed.
    @exclusivity(unchecked) var timers = TimerGenerations()
    /// Rooms with history this client joined whose store answer has not come (empty: none).
    /// Unchecked, as `floors`: both are tested for every room a client leaves.
    @exclusivity(unchecked) var recoveries: [String: Recovery] = [:]
    /// Rooms whose recovery ended at this position: live messages up to it are dropped for this
    /// client (it got them from the store) until one past it arrives.
    @exclusivity(unchecked) var floors: [String: HistoryPosition] = [:]
    /// What the handshake and a few rare requests keep (see `ClientExtras`); nil while none
    /// of it is set.
    private var extras: ClientExtras?

    /// The latest `refresh` call: kept apart from `attempt`, which a `join` replaces.
    var refreshAttempt: AttemptID? {
        get { extras?.refreshAttempt }
        set { updateExtras(newValue == nil) { $0.refreshAttempt = newValue } }
    }
    /// The rooms authenticateFn answered, joined by `admit` (kept across the handshake).
    var admissionRooms: [String] {
        get { extras?.admissionRooms ?? [] }
        set { updateExtras(newValue.isEmpty) { $0.admissionRooms = newValue } }
    }
    /// The `authenticate` data, kept for handshakeFn until the handshake is called.
    var authData: JSONValue? {
        get { extras?.authData }
        set { updateExtras(newValue == nil) { $0.authData = newValue } }
    }
    var serverPublicKey: String? {
        get { extras?.serverPublicKey }
        set { updateExtras(newValue == nil) { $0.serverPublicKey = newValue } }
    }
    var salt: String? {
        get { extras?.salt }
        set { updateExtras(newValue == nil) { $0.salt = newValue } }
    }
    /// The `since` of the join whose validateRoomFn answer is awaited, and the room it names.
    var joinSince: (attempt: AttemptID, room: String, position: HistoryPosition)? {
        get { extras?.joinSince }
        set { updateExtras(newValue == nil) { $0.joinSince = newValue } }
    }

    /// Whether any out-of-line field is set (the extras are allocated).
    var hasExtras: Bool { extras != nil }

    /// Sets a field of the extras, allocating them for a value and dropping them once every
    /// field is clear again. `clearing`: the new value is the field's empty one.
    private func updateExtras(_ clearing: Bool, _ set: (ClientExtras) -> Void) {
        if let extras {
            set(extras)
            if clearing, extras.isEmpty { self.extras = nil }
        } else if !clearing {
            let extras = ClientExtras()
            set(extras)
            self.extras = extras
        }
    }
    /// Messages counted by each active limit, by `MessageLimit.rawValue` (empty while no limit
    /// is on: no allocation per client for an off feature).
    @exclusivity(unchecked) var messageCounts: [Int] = []

    init(handle: ClientHandle, id: String, now: Int64) {
        self.handle = handle
        self.id = id
        self.lastActivity = now
    }

    var info: ClientInfo {
        ClientInfo(handle: handle, id: id, state: state, userID: userID, metadata: metadata,
                   encrypted: encrypted, rooms: rooms.sorted(), lastActivity: lastActivity, expiresAt: expiresAt)
    }
}

/// The fields of a `ClientRecord` that only the handshake and a few rare requests set: kept
/// out of line, so a connected client that set none of them (or whose handshake cleared them)
/// does not carry their 130 bytes for its whole life (6% of an idle connection's memory in
/// `make bench`).
final class ClientExtras {
    var refreshAttempt: AttemptID?
    var admissionRooms: [String] = []
    var authData: JSONValue?
    var serverPublicKey: String?
    var salt: String?
    var joinSince: (attempt: AttemptID, room: String, position: HistoryPosition)?

    var isEmpty: Bool {
        refreshAttempt == nil && admissionRooms.isEmpty && authData == nil && serverPublicKey == nil
            && salt == nil && joinSince == nil
    }
}

/// The generation of each armed timer of one client, by kind; 0: not armed. The first four
/// kinds (the spec declares three) are kept inline: as an array of one slot per kind they
/// cost every connection an allocation of 56 bytes (72 with malloc's header).
struct TimerGenerations {
    private static let inlineCount = 4
    private var first: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    /// Kinds past the first four; empty (no allocation) while the spec declares no more.
    private var more: [UInt64] = []

    subscript(kind: TimerKind) -> UInt64 {
        get {
            let i = Int(kind.rawValue)
            if i < Self.inlineCount {
                return withUnsafeBytes(of: first) { $0.load(fromByteOffset: i * 8, as: UInt64.self) }
            }
            return i - Self.inlineCount < more.count ? more[i - Self.inlineCount] : 0
        }
        set {
            let i = Int(kind.rawValue)
            if i < Self.inlineCount {
                withUnsafeMutableBytes(of: &first) { $0.storeBytes(of: newValue, toByteOffset: i * 8, as: UInt64.self) }
                return
            }
            while more.count <= i - Self.inlineCount { more.append(0) }
            more[i - Self.inlineCount] = newValue
        }
    }
}

/// A snapshot of one client, for queries and tests.
public struct ClientInfo: Equatable, Sendable {
    public let handle: ClientHandle
    public let id: String
    public let state: ClientState
    public let userID: String?
    public let metadata: JSONValue?
    public let encrypted: Bool
    /// Joined rooms, sorted.
    public let rooms: [String]
    public let lastActivity: Int64
    /// When the client's credentials expire (wall-clock ms); nil: never.
    public let expiresAt: Int64?
}

/// The members of one room, split so that plain clients share one encoded payload and
/// encrypted ones go through the outbound transformer.
struct RoomMembers {
    var plain = MemberList()
    var encrypted = MemberList()
    var isEmpty: Bool { plain.isEmpty && encrypted.isEmpty }
    var count: Int { plain.count + encrypted.count }

    mutating func insert(_ handle: ClientHandle, encrypted isEncrypted: Bool) {
        if isEncrypted { encrypted.insert(handle) } else { plain.insert(handle) }
    }
    mutating func remove(_ handle: ClientHandle) {
        if !plain.remove(handle) { encrypted.remove(handle) }
    }
}
