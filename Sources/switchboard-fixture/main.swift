// switchboard-fixture: the black-box contract of docs/contract.md, built on the public
// library API only. Scripted hooks, the message routes (FixtureRouting, shared with the Sim's
// app) and hook probes (Probes.swift); LISTENING / CONNECTED / DISCONNECTED / BACKPRESSURE
// lines on stdout.
import Dispatch
import FixtureRouting
import Switchboard
import SwitchboardCrypto
import SwitchboardNIO
import SwitchboardURing
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One line on stdout, flushed at once; lines from concurrent hooks never interleave.
let stdoutLock = Mutex(())
func emit(_ line: String) {
    stdoutLock.withLock { _ in writeAll(1, line + "\n") }
}

func fail(_ message: String) -> Never {
    writeAll(2, message + "\n")
    exit(1)
}

// MARK: - Flags

struct Flags {
    var options = ServerOptions()
    var allowAllRooms = false
    /// `--broadcast-room NAME`: every client is in this room (a default room) and the
    /// `broadcast` route sends to it instead of to everyone (the fan-out bench of a room,
    /// e.g. one with history: scripts/callgrind fanout-redis-history).
    var broadcastRoom: String?
    var handshake = true
    var validateRoom = true
    var authenticate = true
    var tlsCert: String?
    var tlsKey: String?
    var perMessageDeflate = false
    /// `posix` (the library's default driver), `nio` (SwitchboardNIO's `NIODriver`) or `uring`
    /// (SwitchboardURing's `URingDriver`; epoll, with one line on stderr, where io_uring is not
    /// available).
    var driver = "posix"
    /// `--print-driver`: print `DRIVER <name>` (the driver chosen, after a fallback) and exit.
    var printDriver = false
    /// `--loops N`; nil: one per online CPU on the POSIX driver, 1 on the others (one driver
    /// runs one loop).
    var loops: Int?
}

func parseFlags(_ arguments: [String]) -> Flags {
    var flags = Flags()
    var rest = arguments[...]
    func value(_ name: String) -> String {
        guard let next = rest.popFirst() else { fail("\(name) needs a value") }
        return next
    }
    func number<T: FixedWidthInteger>(_ name: String, _: T.Type = T.self) -> T {
        let text = value(name)
        guard let parsed = T(text), parsed >= 0 else { fail("\(name): not a non-negative integer: \(text)") }
        return parsed
    }
    func list(_ text: String) -> [String] {
        text.split(separator: ",").map(String.init).filter { !$0.isEmpty }
    }
    while let flag = rest.popFirst() {
        switch flag {
        case "--host": flags.options.host = value(flag)
        case "--port": flags.options.port = number(flag, Int.self)
        case "--path": flags.options.path = value(flag)
        case "--redis":
            // Repeated --redis flags name the nodes of a cluster.
            let url = value(flag)
            if let previous = flags.options.redis, !previous.isEmpty, !url.isEmpty {
                flags.options.redis = previous + "," + (url.hasPrefix("redis://") ? String(url.dropFirst(8)) : url)
            } else {
                flags.options.redis = url
            }
        case "--auth-timeout-ms": flags.options.authTimeout = number(flag, Int64.self)
        case "--heartbeat-interval-ms": flags.options.heartbeatInterval = number(flag, Int64.self)
        case "--heartbeat-timeout-ms": flags.options.heartbeatTimeout = number(flag, Int64.self)
        case "--default-rooms": flags.options.defaultRooms = value(flag).split(separator: ",").map(String.init)
        case "--presence-rooms": flags.options.presenceRooms = list(value(flag))
        case "--presence-ttl-ms": flags.options.presenceTTL = number(flag, Int64.self)
        case "--history-rooms": flags.options.historyRooms = list(value(flag))
        case "--history-size": flags.options.historySize = number(flag, Int.self)
        case "--history-ttl-ms": flags.options.historyTTL = number(flag, Int64.self)
        case "--broadcast-room":
            let room = value(flag)
            flags.broadcastRoom = room
            flags.options.defaultRooms.append(room)
        case "--max-payload": flags.options.maxPayloadLength = number(flag, Int.self)
        case "--require-encryption": flags.options.requireEncryption = true
        case "--allow-all-rooms": flags.allowAllRooms = true
        case "--no-handshake": flags.handshake = false
        case "--no-validate-room": flags.validateRoom = false
        case "--no-authenticate": flags.authenticate = false
        case "--backpressure-limit": flags.options.backpressureLimit = number(flag, Int.self)
        case "--close-on-backpressure": flags.options.closeOnBackpressureLimit = true
        case "--raw-echo": flags.options.rawEcho = true
        case "--js-numbers": flags.options.numberStyle = .javascript
        case "--tls-cert": flags.tlsCert = value(flag)
        case "--tls-key": flags.tlsKey = value(flag)
        case "--per-message-deflate": flags.perMessageDeflate = true
        case "--driver":
            flags.driver = value(flag)
            guard ["posix", "nio", "uring"].contains(flags.driver) else {
                fail("--driver: posix, nio or uring, not \(flags.driver)")
            }
        case "--print-driver": flags.printDriver = true
        case "--idle-timeout-s": flags.options.idleTimeout = number(flag, Int64.self) * 1000
        case "--no-send-pings": flags.options.sendPings = false
        case "--allowed-origins": flags.options.allowedOrigins = list(value(flag))
        case "--max-connections-per-ip": flags.options.maxConnectionsPerIP = number(flag, Int.self)
        case "--trusted-proxies": flags.options.trustedProxies = list(value(flag))
        case "--loops": flags.loops = max(1, number(flag, Int.self))
        default: fail("unknown flag \(flag) (see docs/contract.md)")
        }
    }
    return flags
}

// MARK: - Scripted hooks (docs/contract.md, "The scripted hooks")

/// Encryption sessions of encrypted clients, by client id; dropped when the client leaves.
let sessions = Mutex<[String: EncryptionSession]>([:])

struct HookFailure: Error, CustomStringConvertible {
    let description: String
}

/// `slow:<ms>:<rest>` waits, then returns `<rest>`; other tokens pass through.
func unwrapSlow(_ token: String) async -> String {
    guard token.hasPrefix("slow:") else { return token }
    let parts = token.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
    let milliseconds = parts.count > 1 ? UInt64(parts[1]) ?? 0 : 0
    try? await Task.sleep(nanoseconds: milliseconds * 1_000_000)
    return parts.count > 2 ? String(parts[2]) : ""
}

func authenticate(_ data: JSONValue) async throws -> AuthResult? {
    // Only a `slow:` token awaits: every other one is answered without a suspension point.
    let raw = data["token"]?.stringValue ?? ""
    let (token, throwConnected) = splitThrowConnected(raw.hasPrefix("slow:") ? await unwrapSlow(raw) : raw)
    let result = try authenticate(token: token)
    return throwConnected ? result.map(markThrowConnected) : result
}

func authenticate(token: String) throws -> AuthResult? {
    if token.hasPrefix("user:") {
        return AuthResult(userID: String(token.dropFirst(5)), metadata: .object(JSONObject([("role", .string("member"))])))
    }
    switch token {
    case "anon": return AuthResult()
    case "throw": throw HookFailure(description: "scripted authenticate failure")
    default: return nil  // "reject", "false" and anything else fail
    }
}

func handshake(_ request: HandshakeRequest) async throws -> HandshakeResult? {
    guard let key = request.data["publicKey"]?.stringValue else { return nil }
    if key.hasPrefix("slow:") {
        _ = await unwrapSlow(key + ":")
        return nil
    }
    guard let decoded = try? Base64.decode(key), decoded.count == 65,
          let result = try? EncryptionSession.handshake(clientPublicKeyBase64: key)
    else { return nil }
    sessions.withLock { $0[request.clientID] = result.session }
    return HandshakeResult(serverPublicKey: result.serverPublicKeyBase64, salt: result.saltBase64)
}

/// Encrypts `{event, data}` for an encrypted client (PROTOCOL.md 9).
func encrypt(_ message: OutboundMessage) throws -> (event: String, data: JSONValue?)? {
    guard let session = sessions.withLock({ $0[message.clientID] }) else { return nil }
    let plaintext = OutboundEnvelope.encode(event: message.event, data: message.data)
    let (iv, ct) = session.encryptEnvelope(json: plaintext)
    return ("encrypted", .object(JSONObject([("iv", .string(iv)), ("ct", .string(ct))])))
}

// MARK: - Main

Logger.bootstrapStandardError()
let flags = parseFlags(Array(CommandLine.arguments.dropFirst()))
var options = flags.options
options.tlsCertificateFile = flags.tlsCert
options.tlsKeyFile = flags.tlsKey
options.perMessageDeflate = flags.perMessageDeflate

var hooks = Hooks()
if flags.authenticate { hooks.authenticate = authenticate }
if flags.handshake { hooks.handshake = handshake }
if flags.validateRoom {
    let allowAll = flags.allowAllRooms
    hooks.validateRoom = { request in try validateRoom(request, allowAll: allowAll) }
}
hooks.clientConnected = clientConnected
hooks.clientDisconnected = { client in emit("DISCONNECTED \(client.clientID) \(client.userID ?? "-")") }
hooks.backpressureDropped = { clientID, dropped in emit("BACKPRESSURE \(clientID) \(dropped)") }
// Keys are dropped when the client leaves, in any state (also mid-handshake).
hooks.clientReleased = { clientID in sessions.withLock { _ = $0.removeValue(forKey: clientID) } }
if options.requireEncryption { hooks.outboundTransformer = encrypt }

let server: Server
do {
    let box = Mutex<Server?>(nil)
    let broadcastRoom = flags.broadcastRoom
    hooks.messageHandler = { message in
        guard let server = box.withLock({ $0 }) else { return }
        if let room = broadcastRoom, message.message.event == "broadcast" {
            return try server.send(destination: room, topic: "broadcast", data: message.message.data)
        }
        if try !FixtureRouting.route(message, on: server) {
            _ = try handleProbe(message.message.event, message, server: server)
        }
    }
    // nil: the library's default, the POSIX driver. It and the NIO driver serve --tls-cert/--tls-key.
    var driver: (any Driver)?
    switch flags.driver {
    case "nio":
        driver = try NIODriver(tlsCertificateFile: options.tlsCertificateFile, tlsKeyFile: options.tlsKeyFile,
                               hooksOnLoop: options.hooksOnLoop)
    case "uring":
        do {
            driver = try URingDriver(hooksOnLoop: options.hooksOnLoop)
        } catch {
            writeAll(2, "switchboard-fixture: \(error); using the epoll driver\n")
        }
    default:
        break
    }
    if flags.printDriver {
        emit("DRIVER \(driver is URingDriver ? "uring" : driver is NIODriver ? "nio" : "posix")")
        exit(0)
    }
    options.loops = flags.loops ?? (driver == nil ? ServerOptions.onlineCPUs : 1)
    server = try Server(options: options, hooks: hooks, driver: driver, logger: Logger(level: .warning))
    box.withLock { $0 = server }
} catch {
    fail(String(describing: error))
}

/// SIGTERM and SIGINT shut a server on another driver than POSIX down gracefully, through
/// Dispatch signal sources (the caller keeps them). A function of its own: a closure written
/// in top-level code would be main-actor isolated, and Dispatch calls it off the main thread.
func shutDownOnSignals(_ server: Server) -> [DispatchSourceSignal] {
    [SIGTERM, SIGINT].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { Task.detached { await server.shutdown() } }
        source.resume()
        return source
    }
}

var signalSources: [DispatchSourceSignal] = []
if let driver = server.driver as? POSIXDriver {
    driver.onSignal([SIGTERM, SIGINT]) {
        Task.detached { await server.shutdown() }
    }
} else {
    signalSources = shutDownOnSignals(server)
}
do {
    try server.run { port in emit("LISTENING \(port)") }
} catch {
    fail(String(describing: error))
}
exit(0)
