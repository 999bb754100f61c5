@testable import Switchboard
import SwitchboardBus
import Synchronization
import Testing

/// A driver that records every write call the engine makes, one entry per call, so a test can
/// tell one batched write (several frames in one call) from a write per frame. A `stalled`
/// connection keeps everything queued (its `bufferedAmount` grows); the others drain at once.
final class RecordingDriver: Driver, @unchecked Sendable {
    /// How the engine handed the bytes over.
    enum Kind: Equatable {
        /// Shared bytes (`write(_:_:)`).
        case shared
        /// One copied piece (`write(_:copying:)`).
        case copied
        /// A frame header and its payload in one call.
        case twoPieces
    }

    struct Write {
        var kind: Kind
        var bytes: [UInt8]
    }

    private(set) var writes: [ConnectionID: [Write]] = [:]
    private(set) var closed: [ConnectionID: Bool] = [:]
    var stalled: Set<ConnectionID> = []
    var preloaded: [ConnectionID: Int] = [:]
    /// Called after each recorded write (to look at the engine mid-step).
    var onWrite: ((ConnectionID) -> Void)?
    /// Hook answers (`execute`). Locked: spawned hooks finish on the global pool, several at once.
    private let work = Mutex<[@Sendable () -> Void]>([])
    private var tasks: [Task<Void, Never>] = []

    func start(host: String, port: Int, events: DriverEvents) throws -> Int { 1 }
    func run() {}
    func stop() {}
    func stopAccepting() {}
    func execute(_ work: @escaping @Sendable () -> Void) { self.work.withLock { $0.append(work) } }
    var inLoop: Bool { true }
    /// The monotonic clock in ms; tests move it.
    var clock: Int64 = 1_000
    var now: Now { Now(monotonic: clock, wall: 1_700_000_000_000 + clock) }

    /// Connections the engine asked not to be read from.
    private(set) var readingPaused: Set<ConnectionID> = []
    func pauseReading(_ connection: ConnectionID) { readingPaused.insert(connection) }
    func resumeReading(_ connection: ConnectionID) { readingPaused.remove(connection) }

    func write(_ connection: ConnectionID, _ bytes: SharedBytes) { record(connection, .shared, bytes.bytes) }
    func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer) { record(connection, .copied, Array(bytes)) }
    func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer, ifBufferedAtMost limit: Int) -> Bool {
        guard bufferedAmount(connection) <= limit else { return false }
        record(connection, .copied, Array(bytes))
        return true
    }
    func write(_ connection: ConnectionID, _ bytes: SharedBytes, ifBufferedAtMost limit: Int) -> Bool {
        guard bufferedAmount(connection) <= limit else { return false }
        record(connection, .shared, bytes.bytes)
        return true
    }
    func write(_ connection: ConnectionID, copying first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
               ifBufferedAtMost limit: Int) -> Bool {
        guard bufferedAmount(connection) <= limit else { return false }
        record(connection, .twoPieces, Array(first) + Array(second))
        return true
    }
    func bufferedAmount(_ connection: ConnectionID) -> Int {
        stalled.contains(connection) ? preloaded[connection, default: 0] + written(connection).count : 0
    }
    func close(_ connection: ConnectionID, flushFirst: Bool) { closed[connection] = flushFirst }
    func schedule(_ token: UInt64, at deadline: Int64) {}
    func cancel(_ token: UInt64) {}
    func spawn(_ operation: @escaping @Sendable () async -> Void) { tasks.append(Task { await operation() }) }

    private func record(_ connection: ConnectionID, _ kind: Kind, _ bytes: [UInt8]) {
        writes[connection, default: []].append(Write(kind: kind, bytes: bytes))
        onWrite?(connection)
    }

    /// Forgets what was written so far.
    func clear() { writes = [:] }

    /// Everything written to `connection`, in order.
    func written(_ connection: ConnectionID) -> [UInt8] { (writes[connection] ?? []).flatMap(\.bytes) }

    /// Runs the spawned hooks to completion and their answers on the "loop".
    func settle() async {
        while true {
            let running = tasks
            tasks = []
            for task in running { await task.value }
            let pending = work.withLock { work in
                defer { work = [] }
                return work
            }
            if running.isEmpty, pending.isEmpty { return }
            for item in pending { item() }
        }
    }

    /// The text frames in `bytes` (server frames: unmasked).
    static func texts(_ bytes: [UInt8]) -> [String] {
        var texts: [String] = []
        var at = 0
        while at + 2 <= bytes.count {
            var length = Int(bytes[at + 1] & 0x7F)
            var header = 2
            if length == 126 {
                length = Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
                header = 4
            }
            texts.append(String(decoding: bytes[(at + header)..<(at + header + length)], as: UTF8.self))
            at += header + length
        }
        return texts
    }

    /// The text frames written to `connection`.
    func texts(_ connection: ConnectionID) -> [String] { Self.texts(written(connection)) }
}

/// An engine on a `RecordingDriver`, with helpers to speak to it as clients do.
struct EngineHarness {
    final class EngineBox: @unchecked Sendable { var engine: Engine? }

    let engine: Engine
    let driver: RecordingDriver

    /// `messageHandler` gets the engine (for `deliverNow`) and the message.
    init(options: ServerOptions = ServerOptions(), backpressureLimit: Int = 1 << 20,
         log: Logger = Logger(level: .error, sink: { _, _ in }),
         messageHandler: (@Sendable (Engine, ClientMessage) -> Void)? = nil) {
        let driver = RecordingDriver()
        let box = EngineBox()
        var hooks = Hooks(authenticate: { _ in AuthResult(userID: "u") })
        if let messageHandler {
            hooks.messageHandler = { message in messageHandler(box.engine!, message) }
        }
        var options = options
        options.backpressureLimit = backpressureLimit
        engine = Engine(options: options, hooks: hooks, driver: driver, bus: InProcessBus(), serverID: "test",
                        ids: IDGenerator(), log: log)
        box.engine = engine
        self.driver = driver
    }

    /// Opens, upgrades and authenticates clients with these connection ids; forgets their writes.
    func connect(_ ids: ClosedRange<ConnectionID>) async {
        for id in ids {
            engine.connectionOpened(id, peer: "test")
            Self.upgrade.withUnsafeBytes { engine.bytesReceived(id, $0) }
            receive(id, Self.clientText(#"{"event":"authenticate","data":{"token":"t"}}"#))
        }
        await driver.settle()
        driver.clear()
    }

    func receive(_ id: ConnectionID, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { engine.bytesReceived(id, $0) }
    }

    /// The client id the engine gave a connection.
    func clientID(_ id: ConnectionID) -> String { engine.links[id]!.clientID! }

    /// A client frame: masked, with a zero key (the payload reads as is).
    static func clientText(_ text: String) -> [UInt8] {
        let payload = Array(text.utf8)
        var frame: [UInt8] = [0x81]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        return frame + [0, 0, 0, 0] + payload
    }

    static let upgrade = Array(("GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8)
}
