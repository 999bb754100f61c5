import Foundation
import Switchboard
import SwitchboardNIO
import Testing
import TestSupport

/// `wss://` on `NIODriver`: its options as the POSIX driver's, and a certificate reload that new
/// handshakes see. (Authenticated clients and ALPN over wss:// are the end-to-end suite's
/// `wssServesAuthenticatedClientsWithALPN`, run on this driver by `make test-nio`.)
@Suite("NIODriver TLS", .serialized)
struct NIOTLSTests {
    /// A self-signed P-256 certificate for 127.0.0.1, written to `cert`/`key` (replacing them).
    static func makeCertificate(cert: String, key: String) throws {
        let result = try runProgram("/usr/bin/env", [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days",
            "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert,
        ])
        guard result.status == 0 else { throw TestFailure("openssl req: \(result.output)") }
    }

    /// Connects over TLS trusting only `cafile`, offers ALPN http/1.1 and asks for an upgrade:
    /// prints the ALPN answer and the status line, or `untrusted` when the server's
    /// certificate is not the one in `cafile`.
    static let client = #"""
import socket, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[2])
context.set_alpn_protocols(["http/1.1"])
request = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                head += chunk
            print(tls.selected_alpn_protocol(), head.split(b"\r\n")[0].decode())
except ssl.SSLCertVerificationError:
    print("untrusted")
"""#

    static func connect(port: Int, trusting cafile: String) throws -> String {
        let result = try runProgram("/usr/bin/env", ["python3", "-c", client, String(port), cafile], timeout: 20)
        guard result.status == 0 else { throw TestFailure("python: \(result.output)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("the POSIX driver's TLS options: .tls declared, both files or neither, a bad path named")
    func options() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cert = directory + "/cert.pem", key = directory + "/key.pem"
        try Self.makeCertificate(cert: cert, key: key)
        #expect(try NIODriver(tlsCertificateFile: cert, tlsKeyFile: key).capabilities.contains(.tls))
        #expect(try !NIODriver(tlsCertificateFile: nil, tlsKeyFile: nil).capabilities.contains(.tls))
        #expect(throws: StartupError(message: "TLS needs both a certificate file and a key file")) {
            try NIODriver(tlsCertificateFile: cert, tlsKeyFile: nil)
        }
        #expect(throws: StartupError(message: "TLS: cannot load certificate /nonexistent/cert.pem: No such file or directory")) {
            try NIODriver(tlsCertificateFile: "/nonexistent/cert.pem", tlsKeyFile: key)
        }
        // A key of another certificate.
        let otherKey = directory + "/other-key.pem"
        try Self.makeCertificate(cert: directory + "/other-cert.pem", key: otherKey)
        do {
            _ = try NIODriver(tlsCertificateFile: cert, tlsKeyFile: otherKey)
            Issue.record("a key that does not match the certificate was accepted")
        } catch let error as StartupError {
            #expect(error.message.hasPrefix("TLS: cannot load private key \(otherKey): "))
        }
    }

    @Test("reload: new handshakes present the new certificate; a failed reload keeps the old one")
    func reload() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cert = directory + "/cert.pem", key = directory + "/key.pem", first = directory + "/first.pem"
        try Self.makeCertificate(cert: cert, key: key)
        try FileManager.default.copyItem(atPath: cert, toPath: first)
        let driver = try NIODriver(tlsCertificateFile: cert, tlsKeyFile: key)
        let server = try Server(hooks: Hooks(authenticate: { _ in AuthResult(userID: "u") }), driver: driver)
        let port = try server.start()
        defer { stop(server) }
        #expect(try Self.connect(port: port, trusting: first) == "http/1.1 HTTP/1.1 101 Switching Protocols")

        try Self.makeCertificate(cert: cert, key: key)  // renewed: a new key pair
        #expect(try Self.connect(port: port, trusting: first) == "http/1.1 HTTP/1.1 101 Switching Protocols")
        try #require(driver.tls).reload()
        #expect(try Self.connect(port: port, trusting: first) == "untrusted")
        #expect(try Self.connect(port: port, trusting: cert) == "http/1.1 HTTP/1.1 101 Switching Protocols")

        try "not a key".write(toFile: key, atomically: true, encoding: .utf8)
        #expect(throws: NIOTLSError.self) { try driver.tls?.reload() }
        #expect(try Self.connect(port: port, trusting: cert) == "http/1.1 HTTP/1.1 101 Switching Protocols")
    }

    private func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sb-nio-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func stop(_ server: Server) {
        let done = DispatchSemaphore(value: 0)
        Task {
            await server.shutdown()
            done.signal()
        }
        _ = done.wait(timeout: .now() + 10)
    }
}
