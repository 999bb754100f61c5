import Foundation
import TestSupport
import Testing

/// `wss://` with a certificate made at test time, and permessage-deflate, driven by a real
/// independent client: Python `websockets` (installed by scripts/install-deps).
@Suite(.serialized) struct TLSAndDeflateTests {
    /// Runs a Python script with `arguments`; returns its stdout lines, failing on a non-zero exit.
    static func python(_ script: String, _ arguments: [String]) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw E2EError("python exited \(process.terminationStatus): \(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// A self-signed P-256 certificate for 127.0.0.1 in a temporary directory.
    static func makeCertificate() throws -> (directory: URL, cert: String, key: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sb-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cert = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                             "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                             "-keyout", key, "-out", cert]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw E2EError("openssl req failed") }
        return (directory, cert, key)
    }

    static let wssClient = #"""
import asyncio, json, ssl, sys
import websockets
async def main(port, cafile):
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["http/1.1"])
    async with websockets.connect(f"wss://127.0.0.1:{port}/ws", ssl=context) as ws:
        print("alpn", ws.transport.get_extra_info("ssl_object").selected_alpn_protocol())
        await ws.send(json.dumps({"event": "authenticate", "data": {"token": "user:tls"}}))
        print(json.loads(await ws.recv())["event"])
        await ws.send(json.dumps({"event": "echo", "data": {"over": "tls", "big": "x" * 100000}}))
        reply = json.loads(await ws.recv())
        print(reply["event"], reply["data"]["over"], len(reply["data"]["big"]))
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""#

    @Test func wssServesAuthenticatedClientsWithALPN() throws {
        let tls = try Self.makeCertificate()
        defer { try? FileManager.default.removeItem(at: tls.directory) }
        try withFixture(["--tls-cert", tls.cert, "--tls-key", tls.key]) { server in
            let lines = try Self.python(Self.wssClient, [String(server.port), tls.cert])
            #expect(lines == ["alpn http/1.1", "connected", "echo tls 100000"])
            _ = try server.waitForLine(prefix: "CONNECTED ")
        }
    }

    @Test func badCertificatePathIsAStartupError() throws {
        let result = try Fixture.runToExit(["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("/nonexistent/cert.pem"))
        #expect(result.stdout.isEmpty)
    }

    static let deflateClient = #"""
import asyncio, json, sys
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
async def main(port):
    uri = f"ws://127.0.0.1:{port}/ws"
    factory = ClientPerMessageDeflateFactory(client_max_window_bits=True)
    async with websockets.connect(uri, extensions=[factory], compression=None) as a, \
               websockets.connect(uri, compression=None) as b:
        print("extensions", a.response.headers.get("Sec-WebSocket-Extensions"))
        print("plain", b.response.headers.get("Sec-WebSocket-Extensions"))
        for ws, token in ((a, "user:a"), (b, "user:b")):
            await ws.send(json.dumps({"event": "authenticate", "data": {"token": token}}))
            assert json.loads(await ws.recv())["event"] == "connected"
        text = "all work and no play " * 2000
        await a.send(json.dumps({"event": "broadcast", "data": text}))
        for ws in (a, b):
            reply = json.loads(await ws.recv())
            print(reply["event"], len(reply["data"]) == len(text))
        # A compressed message that inflates past --max-payload closes with 1009.
        await a.send(json.dumps({"event": "echo", "data": "z" * 200000}))
        try:
            await a.recv()
            print("no close")
        except websockets.ConnectionClosed as closed:
            print("closed", closed.rcvd.code)
asyncio.run(main(int(sys.argv[1])))
"""#

    @Test func deflateIsNegotiatedAndBothKindsOfClientsReceive() throws {
        try withFixture(["--per-message-deflate", "--max-payload", "65536"]) { server in
            let lines = try Self.python(Self.deflateClient, [String(server.port)])
            #expect(lines.count == 5, "\(lines)")
            #expect(lines.first?.hasPrefix("extensions permessage-deflate") == true, "\(lines)")
            #expect(lines.dropFirst().first == "plain None")
            #expect(Array(lines.dropFirst(2)) == ["broadcast True", "broadcast True", "closed 1009"])
        }
    }
}
