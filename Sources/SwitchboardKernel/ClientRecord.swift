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
    @exclusivity(unchecked) var rooms: Set<String> = []
    @exclusivity(unchecked) var lastActivity: Int64
    /// The current hook attempt; answers for another one are stale.
    var attempt: AttemptID?
    /// The latest `refresh` call: kept apart from `attempt`, which a `join` replaces.
    var refreshAttempt: AttemptID?
    /// When the client's credentials expire (wall-clock ms), as authenticateFn or refreshFn
    /// answered; nil: never. The `token_expiry` timer runs until it.
    var expiresAt: Int64?
    /// Generation of each armed timer by `TimerKind.rawValue`; 0 = not armed.
    @exclusivity(unchecked) var timers = TimerGenerations()
    /// The rooms authenticateFn answered, joined by `admit` (kept across the handshake).
    var admissionRooms: [String] = []
    /// The `authenticate` data, kept for handshakeFn until the handshake is called.
    var authData: JSONValue?
    var serverPublicKey: String?
    var salt: String?
    /// Rooms with history this client joined whose store answer has not come (empty: none).
    /// Unchecked, as `floors`: both are tested for every room a client leaves.
    @exclusivity(unchecked) var recoveries: [String: Recovery] = [:]
    /// Rooms whose recovery ended at this position: live messages up to it are dropped for this
    /// client (it got them from the store) until one past it arrives.
    @exclusivity(unchecked) var floors: [String: HistoryPosition] = [:]
    /// The `since` of the join whose validateRoomFn answer is awaited, and the room it names.
    var joinSince: (attempt: AttemptID, room: String, position: HistoryPosition)?
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

/// A client's timer generations, one per `TimerKind`, held in the record itself: an array was
/// one more allocation per connection (and a bounds and uniqueness check per access). Room for
/// four kinds; the spec has three, and a fifth stops at its first use.
struct TimerGenerations {
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    subscript(kind: Int) -> UInt64 {
        get {
            switch kind {
            case 0: words.0
            case 1: words.1
            case 2: words.2
            case 3: words.3
            default: preconditionFailure("timer kind \(kind): TimerGenerations holds four")
            }
        }
        set {
            switch kind {
            case 0: words.0 = newValue
            case 1: words.1 = newValue
            case 2: words.2 = newValue
            case 3: words.3 = newValue
            default: preconditionFailure("timer kind \(kind): TimerGenerations holds four")
            }
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
