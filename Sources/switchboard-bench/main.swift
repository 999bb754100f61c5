// switchboard-bench: kernel throughput for a realistic input mix, no I/O (`make bench`).
//
// 10,000 clients connect and authenticate, each joins a few of 100 rooms, then a mix of
// inputs runs through the kernel: chat messages to the messageHandler, heartbeats,
// pings, room deliveries (about 300 members each), user deliveries, bus messages, joins
// and leaves, and heartbeat sweeps. Reports inputs per second and nanoseconds per input; then
// the per-recipient cost of plain vs encrypted fan-out, and the JSON of one echo round trip
// (`switchboard-bench envelope [ROUNDS]` runs that last part alone, e.g. under callgrind).
import Foundation
import SwitchboardCodec
import SwitchboardCrypto
import SwitchboardJSON
import SwitchboardKernel
#if canImport(Glibc)
import Glibc
#endif

func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// SplitMix64: a fixed sequence for every run.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func runBench() {
    let clientCount = 10_000
    let roomCount = 100
    let inputCount = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 1_000_000

    var kernel = Kernel(serverID: "bench")
    var effects: [Effect] = []
    effects.reserveCapacity(4096)
    var now = Now(monotonic: 0, wall: 1_764_000_000_000)
    var random = SplitMix(state: 42)
    var effectCount = 0

    func feed(_ input: KernelInput) {
        effects.removeAll(keepingCapacity: true)
        kernel.handle(input, now: now, into: &effects)
        effectCount += effects.count
    }

    // Set-up: connect, authenticate, join rooms (validateRoom answers allow all).
    feed(.started)
    for index in 0..<clientCount {
        let handle = ClientHandle(UInt64(index + 1))
        feed(.opened(handle, id: "client-\(index)"))
        feed(.message(handle, Array(#"{"event":"authenticate","data":{"token":"user:u\#(index % 5000)"}}"#.utf8)))
        guard case .callAuthenticate(_, let attempt, _)? = effects.last else { fatalError("no authenticate call") }
        feed(.authenticateReturned(handle, attempt, .ok(userID: "u\(index % 5000)", metadata: nil)))
        let rooms = (0..<3).map { _ in "\"room-\(Int.random(in: 0..<roomCount, using: &random))\"" }.joined(separator: ",")
        feed(.message(handle, Array(#"{"event":"join","data":{"rooms":[\#(rooms)]}}"#.utf8)))
        if case .callValidateRoom(_, let attempt, _, _, let names)? = effects.last {
            feed(.validateRoomReturned(handle, attempt, .ok(names)))
        }
    }

    let chat = Array(#"{"event":"chat","data":{"text":"hello, room","n":42},"id":"m-1"}"#.utf8)
    let heartbeat = Array(#"{"event":"heartbeat"}"#.utf8)
    let leaveJoin = [Array(#"{"event":"leave","data":{"rooms":["room-7"]}}"#.utf8),
                     Array(#"{"event":"join","data":{"rooms":["room-7"]}}"#.utf8)]
    let bus = Array(#"{"serverId":"other","type":"room","target":"room-3","event":"news","data":{"headline":"x"}}"#.utf8)

    // The mix, drawn up front so drawing costs nothing in the timed loop.
    enum Op { case chat, heartbeat, ping, room, user, bus, joinLeave }
    let weights: [(Op, Int)] = [(.chat, 55), (.heartbeat, 20), (.ping, 10), (.room, 5), (.user, 5), (.bus, 3), (.joinLeave, 2)]
    var plan: [(Op, ClientHandle)] = []
    plan.reserveCapacity(inputCount)
    for _ in 0..<inputCount {
        var pick = Int.random(in: 0..<100, using: &random)
        var op = Op.chat
        for (candidate, weight) in weights {
            if pick < weight { op = candidate; break }
            pick -= weight
        }
        plan.append((op, ClientHandle(UInt64.random(in: 1...UInt64(clientCount), using: &random))))
    }

    var deliveries = 0
    effectCount = 0
    let start = monotonicNanoseconds()
    for (index, (op, handle)) in plan.enumerated() {
        now.monotonic += index % 64 == 0 ? 1 : 0
        switch op {
        case .chat: feed(.message(handle, chat))
        case .heartbeat: feed(.message(handle, heartbeat))
        case .ping: feed(.activity(handle))
        case .room: feed(.deliver(.toRoom(room: "room-\(index % roomCount)", event: "news", data: ["n": .number(JSONNumber(index))], exclude: [])))
        case .user: feed(.deliver(.toUser(userID: "u\(index % 5000)", event: "dm", data: "hi")))
        case .bus: feed(.busMessage(channel: "ws:room:room-3", message: bus))
        case .joinLeave:
            feed(.message(handle, leaveJoin[index & 1]))
            if case .callValidateRoom(_, let attempt, _, _, let names)? = effects.last {
                feed(.validateRoomReturned(handle, attempt, .ok(names)))
            }
        }
        for effect in effects {
            switch effect {
            case .fanOut(let handles, _): deliveries += handles.count
            case .send: deliveries += 1
            default: break
            }
        }
    }
    let elapsed = Double(monotonicNanoseconds() - start)
    let seconds = elapsed / 1e9

    print("kernel: \(clientCount) clients, \(roomCount) rooms, \(inputCount) inputs (chat 55%, heartbeat 20%, ping 10%, room 5%, user 5%, bus 3%, join/leave 2%)")
    print(String(format: "kernel: %.0f inputs/s, %.0f ns/input, %.0f effects/s, %.0f deliveries/s (recipients), %.2f s",
                 Double(inputCount) / seconds, elapsed / Double(inputCount), Double(effectCount) / seconds,
                 Double(deliveries) / seconds, seconds))
}

// `switchboard-bench envelope [ROUNDS]`: the envelope measurement alone (e.g. under callgrind).
let envelopeOnly = CommandLine.arguments.dropFirst().first == "envelope"
if !envelopeOnly { runBench() }

/// The cost of fan-out per recipient, plain vs encrypted (PROTOCOL.md 9), CPU only (no
/// sockets): a plain recipient shares one encoded frame (the per-recipient cost is handing it
/// over); an encrypted one needs its own serialization, AES-256-GCM, base64, envelope and frame.
func encryptedFanOutBench() {
    let recipients = 1000
    let rounds = 20
    let data: JSONValue = .object(JSONObject([
        ("user", "alice"), ("text", .string(String(repeating: "hello room ", count: 6))),
        ("n", .number(JSONNumber(42))), ("tags", .array(["a", "b", "c"])),
    ]))
    var sessions: [EncryptionSession] = []
    for _ in 0..<recipients {
        let client = try! P256KeyPair.generate()
        let server = try! EncryptionSession.handshake(clientPublicKeyBase64: client.publicKeyBase64)
        sessions.append(server.session)
    }
    var sink = 0

    var start = monotonicNanoseconds()
    for _ in 0..<rounds {
        let payload = Payload(event: "news", data: data)
        var frame: [UInt8] = []
        payload.bytes.withUnsafeBytes { FrameEncoder.encode(opcode: .text, payload: $0, into: &frame) }
        var queues = [[UInt8]](repeating: [], count: recipients)
        for index in 0..<recipients { queues[index] = frame }  // share the buffer, as the driver does
        sink &+= queues.count
    }
    let plain = Double(monotonicNanoseconds() - start) / Double(rounds * recipients)

    start = monotonicNanoseconds()
    for _ in 0..<rounds {
        for session in sessions {
            let plaintext = OutboundEnvelope.encode(event: "news", data: data)
            let (iv, ct) = session.encryptEnvelope(json: plaintext)
            let payload = Payload(event: "encrypted", data: .object(JSONObject([("iv", .string(iv)), ("ct", .string(ct))])))
            var frame: [UInt8] = []
            payload.bytes.withUnsafeBytes { FrameEncoder.encode(opcode: .text, payload: $0, into: &frame) }
            sink &+= frame.count
        }
    }
    let encrypted = Double(monotonicNanoseconds() - start) / Double(rounds * recipients)
    print(String(format: "fan-out per recipient (%d recipients, %d-byte data): plain %.0f ns, encrypted %.0f ns (%.0fx)%@",
                 recipients, OutboundEnvelope.encode(event: "news", data: data).count, plain, encrypted, encrypted / plain,
                 sink == 0 ? "!" : ""))
}

if !envelopeOnly { encryptedFanOutBench() }

/// The JSON work of one echo round trip, CPU only: reading wsload's `echo` message (64-byte
/// `data`) and encoding the reply with that `data`, as a handler passing it on does.
func envelopeBench() {
    let message = Array(#"{"event":"echo","data":{"s":123456,"t":1733318400123456789,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#.utf8)
    let rounds = envelopeOnly ? Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 2_000_000 : 2_000_000
    var sink = 0
    var data: JSONValue?
    var start = monotonicNanoseconds()
    for _ in 0..<rounds {
        guard case .message(_, let read, _) = InboundEnvelope.read(message) else { fatalError("echo message unread") }
        data = read
    }
    let read = Double(monotonicNanoseconds() - start) / Double(rounds)
    start = monotonicNanoseconds()
    for _ in 0..<rounds { sink &+= OutboundEnvelope.encode(event: "echo", data: data).count }
    let encode = Double(monotonicNanoseconds() - start) / Double(rounds)
    print(String(format: "echo envelope (%d bytes): read %.0f ns, encode the reply %.0f ns%@", message.count, read, encode,
                 sink == 0 ? "!" : ""))
}

envelopeBench()
