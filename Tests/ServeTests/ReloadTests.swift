import Foundation
import Switchboard
import TestSupport
import Testing
@testable import SwitchboardServe
#if canImport(Glibc)
import Glibc
#endif

/// `switchboard serve` as an operator runs it: a real process, real signals.
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    let out: OutputCollector
    let err: OutputCollector
    /// The public port, read from the banner.
    let port: Int

    init(config: String) throws {
        guard FileManager.default.isExecutableFile(atPath: switchboardBinary) else {
            throw TestFailure("no switchboard binary at \(switchboardBinary); build it (swift build --build-tests)")
        }
        process.executableURL = URL(fileURLWithPath: switchboardBinary)
        process.arguments = ["serve", "--config", config]
        process.environment = ["PATH": "/usr/bin:/bin"]
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = FileHandle.nullDevice
        out = OutputCollector(pipe: outPipe)
        err = OutputCollector(pipe: errPipe)
        try process.run()
        guard let banner = out.takeLine(prefix: "switchboard listening on ", timeout: 30),
              let port = banner.split(separator: ":").last.flatMap({ Int($0) }) else {
            process.terminate()
            throw TestFailure("no banner; stderr: \(err.text)")
        }
        self.port = port
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for a log line containing `text` (the log is the only outside sign of a reload),
    /// without holding a thread of the pool.
    func logged(_ text: String) async throws -> Bool {
        try await eventually { err.allLines.contains { $0.contains(text) } }
    }

    /// SIGTERM, then the exit status.
    func stop() throws -> Int32 {
        signal(SIGTERM)
        guard out.waitForEnd(timeout: 20) else {
            process.terminate()
            throw TestFailure("switchboard serve did not exit after SIGTERM")
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

@Suite(.serialized) struct ReloadTests {
    static let openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A self-signed certificate for `localhost` and its key, as `NAME-cert.pem`, `NAME-key.pem`.
    static func makeCertificate(_ name: String, in dir: TempDir) throws {
        try run([openssl!, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                 "-subj", "/CN=localhost", "-keyout", "\(dir.path)/\(name)-key.pem", "-out", "\(dir.path)/\(name)-cert.pem"])
    }

    /// Replaces `name` in `dir` by a rename, as a deployment tool does (never half-written).
    static func install(_ text: String, as name: String, in dir: TempDir) throws {
        try dir.write(name + ".new", text)
        guard rename("\(dir.path)/\(name).new", "\(dir.path)/\(name)") == 0 else { throw TestFailure("rename failed") }
    }

    static func token(_ user: String, secret: String) -> String {
        JWTSigner.hs256(payload: ["sub": .string(user), "exp": .number(JSONNumber(unixSeconds() + 3600))], secret: Array(secret.utf8))
    }

    /// Joins `room` and checks that the client is served: its own message to the room comes back.
    static func roundTrip(_ client: WSSClient, room: String = "news") throws {
        for _ in 0..<100 {
            try client.send("send", ["room": .string(room), "event": "probe", "data": 1])
            while let message = try client.next() {
                if message.event == "probe" { return }
                if message.event == "error", message.data == ["message": .string("Not in room \(room)")] { break }
            }
        }
        throw TestFailure("no round trip in \(room)")
    }

    /// SIGHUP swaps the certificate for new handshakes and the JWT secret for new logins; an
    /// established `wss://` client stays connected and served throughout; a broken certificate
    /// file is refused and the one in use kept.
    @Test(.enabled(if: openssl != nil, "openssl is not installed"))
    func sighupReloadsTheCertificateAndTheJWTKeyWithoutDroppingClients() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        try await offThePool {
            try Self.makeCertificate("old", in: dir)
            try Self.makeCertificate("new", in: dir)
        }
        let (oldSecret, newSecret) = (String(repeating: "o", count: 40), String(repeating: "n", count: 40))
        for name in ["cert", "key"] {
            try Self.install(String(contentsOfFile: "\(dir.path)/old-\(name).pem", encoding: .utf8), as: "\(name).pem", in: dir)
        }
        try dir.write("secret", oldSecret + "\n")
        try dir.write("tokens.yaml", "alice-token: alice\n")
        let config = try dir.write("serve.yaml", """
            listen:
              port: 0
            tls:
              cert: cert.pem
              key: key.pem
            auth:
              tokens_file: tokens.yaml
              jwt:
                hs256_secret_file: secret
            """)
        let serve = try ServeProcess(config: config)
        let port = serve.port
        let (oldCA, newCA) = ("\(dir.path)/old-cert.pem", "\(dir.path)/new-cert.pem")

        let alice = try await offThePool { () -> WSSClient in
            let alice = try WSSClient(port: port, trusting: oldCA)
            try alice.send("authenticate", ["token": "alice-token"])
            guard try alice.receive(event: "connected") != nil else { throw TestFailure("alice not connected") }
            try alice.send("join", ["rooms": ["news"]])
            try Self.roundTrip(alice)
            return alice
        }
        #expect(throws: (any Error).self) { try WSSClient(port: port, trusting: newCA) }

        for name in ["cert", "key"] {
            try Self.install(String(contentsOfFile: "\(dir.path)/new-\(name).pem", encoding: .utf8), as: "\(name).pem", in: dir)
        }
        try Self.install(newSecret, as: "secret", in: dir)
        serve.signal(SIGHUP)
        #expect(try await serve.logged("reload: TLS certificate"))
        #expect(try await serve.logged("reload: authentication keys loaded"))

        try await offThePool {
            try Self.roundTrip(alice)  // the established connection, still on the old certificate
            #expect(throws: (any Error).self) { try WSSClient(port: port, trusting: oldCA) }
            let carol = try WSSClient(port: port, trusting: newCA)
            try carol.send("authenticate", ["token": .string(Self.token("carol", secret: newSecret))])
            #expect(try carol.receive(event: "connected") != nil)
            let mallory = try WSSClient(port: port, trusting: newCA)
            try mallory.send("authenticate", ["token": .string(Self.token("mallory", secret: oldSecret))])
            #expect(try mallory.receive(event: "connected") == nil)
            #expect(mallory.closeCode == 4003)
        }

        try Self.install("not a certificate\n", as: "cert.pem", in: dir)
        serve.signal(SIGHUP)
        #expect(try await serve.logged("the previous certificate stays in use"))
        try await offThePool {
            _ = try WSSClient(port: port, trusting: newCA)
            try Self.roundTrip(alice)
        }

        #expect(try await offThePool { try serve.stop() } == 0)
        #expect(try await offThePool { try alice.receive(event: "connected") } == nil)
        #expect(alice.closeCode == 1001)
    }
}
