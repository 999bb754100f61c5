@testable import Switchboard
import SwitchboardBus
import Synchronization
import Testing

/// The engine batches the small broadcasts of one read into one write per recipient. The
/// simulation feeds the engine message by message, so these tests drive the engine directly
/// with a recording driver: several frames in one `bytesReceived`.
@Suite("Fan-out batching")
struct FanOutBatchTests {
    /// Records what the engine writes. A `stalled` connection keeps everything queued (its
    /// `bufferedAmount` grows); the others drain at once.
    final class RecordingDriver: Driver, @unchecked Sendable {
        var written: [ConnectionID: [UInt8]] = [:]
        var stalled: Set<ConnectionID> = []
        var preloaded: [ConnectionID: Int] = [:]
        var work: [@Sendable () -> Void] = []
        var tasks: [Task<Void, Never>] = []

        func start(host: String, port: Int, events: DriverEvents) throws -> Int { 1 }
        func run() {}
        func stop() {}
        func stopAccepting() {}
        func execute(_ work: @escaping @Sendable () -> Void) { self.work.append(work) }
        var inLoop: Bool { true }
        var now: Now { Now(monotonic: 1_000, wall: 1_700_000_000_000) }
        func write(_ connection: ConnectionID, _ bytes: SharedBytes) { written[connection, default: []] += bytes.bytes }
        func write(_ connection: ConnectionID, copying bytes: UnsafeRawBufferPointer) {
            written[connection, default: []] += bytes
        }
        func bufferedAmount(_ connection: ConnectionID) -> Int {
            stalled.contains(connection) ? preloaded[connection, default: 0] + (written[connection]?.count ?? 0) : 0
        }
        func close(_ connection: ConnectionID, flushFirst: Bool) {}
        func schedule(_ token: UInt64, at deadline: Int64) {}
        func cancel(_ token: UInt64) {}
        func spawn(_ operation: @escaping @Sendable () async -> Void) { tasks.append(Task { await operation() }) }

        /// Runs the spawned hooks to completion and their answers on the "loop".
        func settle() async {
            while !tasks.isEmpty || !work.isEmpty {
                let running = tasks
                tasks = []
                for task in running { await task.value }
                let pending = work
                work = []
                for item in pending { item() }
            }
        }

        /// The text frames written to `connection` since `offset` (server frames: unmasked).
        func texts(_ connection: ConnectionID, from offset: Int = 0) -> [String] {
            let bytes = Array((written[connection] ?? []).dropFirst(offset))
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
    }

    final class EngineBox: @unchecked Sendable { var engine: Engine? }

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

    /// An engine whose `broadcast` custom event fans out to every client, with three clients
    /// authenticated: 1 publishes, 2 is stalled with `preload` bytes already queued, 3 reads.
    static func world(limit: Int, preload: Int) async -> (Engine, RecordingDriver) {
        let driver = RecordingDriver()
        let box = EngineBox()
        var hooks = Hooks(authenticate: { _ in AuthResult(userID: "u") })
        hooks.messageHandler = { message in
            box.engine?.deliverNow(.broadcast(event: "broadcast", data: message.message.data, exclude: []))
        }
        var options = ServerOptions()
        options.backpressureLimit = limit
        let engine = Engine(options: options, hooks: hooks, driver: driver, bus: InProcessBus(), serverID: "test",
                            ids: IDGenerator(), log: Logger(level: .error, sink: { _, _ in }))
        box.engine = engine
        for id: ConnectionID in 1...3 {
            engine.connectionOpened(id, peer: "test")
            upgrade.withUnsafeBytes { engine.bytesReceived(id, $0) }
            clientText(#"{"event":"authenticate","data":{"token":"t"}}"#).withUnsafeBytes { engine.bytesReceived(id, $0) }
        }
        await driver.settle()
        driver.stalled = [2]
        driver.preloaded[2] = preload
        driver.written = [:]
        return (engine, driver)
    }

    static func broadcast(_ index: Int) -> [UInt8] {
        clientText(#"{"event":"broadcast","data":{"n":\#(index),"pad":""# + String(repeating: "x", count: 400) + #""}}"#)
    }

    @Test("Eight broadcasts in one read: each recipient gets them in order, one write each")
    func batchedInOrder() async {
        let (engine, driver) = await Self.world(limit: 1 << 20, preload: 0)
        let burst = (0..<8).flatMap(Self.broadcast)
        burst.withUnsafeBytes { engine.bytesReceived(1, $0) }
        for id: ConnectionID in 1...3 {
            let numbers = driver.texts(id).compactMap { (try? JSONValue.parse($0))?["data"]?["n"]?.numberValue?.int }
            #expect(numbers == Array(0..<8), "client \(id): \(numbers)")
        }
    }

    @Test("A batch crossing the backpressure limit drops exactly what message-by-message delivery drops",
          arguments: [0, 1500, 3600, 3900, 4096, 4097])
    func batchKeepsPerMessageBackpressure(preload: Int) async {
        let limit = 4096
        // Together, in one read ...
        let (batchedEngine, batched) = await Self.world(limit: limit, preload: preload)
        (0..<8).flatMap(Self.broadcast).withUnsafeBytes { batchedEngine.bytesReceived(1, $0) }
        // ... and one read per message.
        let (singleEngine, single) = await Self.world(limit: limit, preload: preload)
        for index in 0..<8 { Self.broadcast(index).withUnsafeBytes { singleEngine.bytesReceived(1, $0) } }

        let frameSize = (batched.written[3]?.count ?? 0) / 8
        #expect(frameSize > 400)
        // PROTOCOL.md 7: message j is queued iff what is queued before it is within the limit.
        let expected = (0..<8).filter { preload + $0 * frameSize <= limit }.count
        #expect(batched.texts(2).count == expected, "batched: \(batched.texts(2).count), expected \(expected)")
        #expect(single.texts(2) == batched.texts(2))
        #expect(batched.texts(3).count == 8 && single.texts(3) == batched.texts(3))
        #expect(batchedEngine.stats.backpressureDrops == 8 - expected)
        #expect(singleEngine.stats.backpressureDrops == 8 - expected)
    }
}
