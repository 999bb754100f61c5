import COpenSSL
import Foundation
import Glibc
import SwitchboardDriverSupport
import SwitchboardPOSIX
import TestSupport
import Testing

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

private func pattern(_ count: Int, seed: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 131) ^ ($0 >> 9) &+ seed) }
}

@Suite("TLS", .serialized)
struct TLSTests {
    @Test("echo round trips through a verifying OpenSSL client, 1 byte to 1 MiB; ALPN http/1.1")
    func echoSizes() throws {
        let fixture = try TLSFixture.shared.get()
        let server = try LoopServer(tls: fixture.server)
        let client = try TLSClient(port: server.port, context: fixture.client)
        #expect(SSL_get_verify_result(client.ssl) == X509_V_OK)
        #expect(client.alpn == "http/1.1")
        let id = try #require(server.recorder.waitForAccept(peerPort: client.localPort))

        var expected: [UInt8] = []
        for (i, size) in [1, 100, 16383, 16384, 16385, 65536, 65537, 300_000, 1 << 20].enumerated() {
            let message = pattern(size, seed: i)
            #expect(client.send(message))
            #expect(client.receive(count: size) == message, "size \(size)")
            expected += message
        }
        #expect(server.recorder.with { $0.received[id] } == expected)  // the handler saw plaintext
        client.sendCloseNotify()
        #expect(server.recorder.wait { !$0.closes(of: id).isEmpty })
        _ = server.onLoop { _ in }
        let events = server.recorder.with { $0 }
        #expect(events.closes(of: id) == [.peerClosed])
        #expect(!events.reentered && !events.notOnLoopThread)
        #expect(server.onLoop { $0.connectionCount } == 0)
        #expect(server.shutdown())
    }

    @Test("openssl s_client negotiates http/1.1 by ALPN; no ALPN is accepted; only h2 is refused")
    func sClient() throws {
        let fixture = try TLSFixture.shared.get()
        let server = try LoopServer(tls: fixture.server)
        let common = ["s_client", "-connect", "127.0.0.1:\(server.port)", "-servername", "localhost",
                      "-CAfile", fixture.certificate, "-verify_return_error"]

        let withALPN = try runOpenSSL(common + ["-alpn", "http/1.1"])
        #expect(withALPN.status == 0, "\(withALPN.output)")
        #expect(withALPN.output.contains("ALPN protocol: http/1.1"), "\(withALPN.output)")
        #expect(withALPN.output.contains("Verify return code: 0 (ok)"))

        let without = try runOpenSSL(common)
        #expect(without.status == 0, "\(without.output)")
        #expect(without.output.contains("No ALPN negotiated"), "\(without.output)")

        let h2Only = try runOpenSSL(common + ["-alpn", "h2"])
        #expect(h2Only.status != 0)
        #expect(h2Only.output.contains("no application protocol"), "\(h2Only.output)")

        #expect(server.recorder.wait { $0.closed.count == 3 })
        let events = server.recorder.with { $0 }
        #expect(events.accepted.count == 3)
        #expect(events.closed.filter { $0.reason == .peerClosed }.count == 2)
        #expect(events.closed.compactMap(\.reason.tlsReason).count == 1)
        #expect(server.shutdown())
    }

    @Test("plain HTTP to the TLS port is closed with a TLS reason; TLS clients still work")
    func plainHTTPIsClosed() throws {
        let fixture = try TLSFixture.shared.get()
        let server = try LoopServer(tls: fixture.server)
        let bystander = try TLSClient(port: server.port, context: fixture.client)
        #expect(bystander.send(bytes("before")))
        #expect(bystander.receive(count: 6) == bytes("before"))

        let fd = Client.connect(port: server.port)
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        let id = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(fd)))
        #expect(Client.send(fd, bytes("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")))
        let (reply, eof) = Client.receiveToEnd(fd)
        #expect(eof && reply.isEmpty)  // FIN, not RST, and no bytes
        #expect(server.recorder.wait { !$0.closes(of: id).isEmpty })
        _ = server.onLoop { _ in }
        let reasons = server.recorder.with { $0.closes(of: id) }
        #expect(reasons.count == 1)
        #expect(reasons.first?.tlsReason == "http request", "\(reasons)")
        #expect(server.recorder.with { $0.received[id] } == nil)

        #expect(bystander.send(bytes("after")))
        #expect(bystander.receive(count: 5) == bytes("after"))
        let fresh = try TLSClient(port: server.port, context: fixture.client)
        #expect(fresh.send(bytes("fresh")))
        #expect(fresh.receive(count: 5) == bytes("fresh"))
        #expect(server.onLoop { $0.connectionCount } == 2)
        #expect(server.shutdown())
    }

    @Test("a client that rejects the certificate fails the handshake: closed once with the alert")
    func untrustedCertificate() throws {
        let fixture = try TLSFixture.shared.get()
        let server = try LoopServer(tls: fixture.server)
        let distrustful = try TLSFixture.clientContext(trusting: nil)
        defer { SSL_CTX_free(distrustful) }
        let fd = try TLSClient.connectSocket(port: server.port)
        let id = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(fd)))
        #expect(throws: TestFailure.self) { try TLSClient(socket: fd, context: distrustful) }
        #expect(server.recorder.wait { !$0.closes(of: id).isEmpty })
        _ = server.onLoop { _ in }
        let reasons = server.recorder.with { $0.closes(of: id) }
        #expect(reasons.count == 1)
        #expect(reasons.first?.tlsReason?.contains("unknown ca") == true, "\(reasons)")
        #expect(server.shutdown())
    }

    @Test("TLS 1.2 (ECDHE, AEAD) works; client-initiated renegotiation is refused")
    func tls12AndRenegotiation() throws {
        let fixture = try TLSFixture.shared.get()
        let server = try LoopServer(tls: fixture.server)
        let fd = try TLSClient.connectSocket(port: server.port)
        let old = try TLSFixture.clientContext(trusting: fixture.certificate)
        defer { SSL_CTX_free(old) }
        #expect(SSL_CTX_ctrl(old, SSL_CTRL_SET_MAX_PROTO_VERSION, Int(TLS1_2_VERSION), nil) == 1)
        let client = try TLSClient(socket: fd, context: old)
        #expect(SSL_version(client.ssl) == TLS1_2_VERSION)
        let cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(client.ssl)).map { String(cString: $0) } ?? ""
        #expect(cipher.hasPrefix("ECDHE-ECDSA-") && (cipher.contains("GCM") || cipher.contains("CHACHA20")), "\(cipher)")
        #expect(client.alpn == "http/1.1")
        #expect(client.send(bytes("twelve")))
        #expect(client.receive(count: 6) == bytes("twelve"))

        #expect(SSL_renegotiate(client.ssl) == 1)
        ERR_clear_error()
        let renegotiated = SSL_do_handshake(client.ssl)
        let code = ERR_get_error()
        ERR_clear_error()
        #expect(renegotiated != 1)  // the server answers no_renegotiation
        #expect(ERR_reason_error_string(code).map { String(cString: $0) } == "no renegotiation")
        let other = try TLSClient(port: server.port, context: fixture.client)
        #expect(other.send(bytes("still up")))
        #expect(other.receive(count: 8) == bytes("still up"))
        #expect(server.shutdown())
    }

    @Test("a TLS 1.3 KeyUpdate from the client (update requested) is processed; echo continues")
    func keyUpdate() throws {
        let fixture = try TLSFixture.shared.get()
        let server = try LoopServer(tls: fixture.server)
        let client = try TLSClient(port: server.port, context: fixture.client)
        #expect(SSL_version(client.ssl) == TLS1_3_VERSION)
        for round in 0..<3 {
            #expect(SSL_key_update(client.ssl, SSL_KEY_UPDATE_REQUESTED) == 1)
            let message = pattern(70_000, seed: round)
            #expect(client.send(message))  // sends the KeyUpdate first
            #expect(client.receive(count: message.count) == message)
        }
        #expect(server.shutdown())
    }

    @Test("a handshake that does not finish in time is closed with 'handshake timed out'")
    func handshakeTimeout() throws {
        let fixture = try TLSFixture.shared.get()
        let quick = try TLSContext(certificateChainFile: fixture.certificate, privateKeyFile: fixture.key,
                                   handshakeTimeoutMilliseconds: 100)
        #expect(quick.handshakeTimeoutMilliseconds == 100)
        let server = try LoopServer(tls: quick)
        let started = Date()
        let fd = Client.connect(port: server.port)
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        let id = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(fd)))
        #expect(Client.send(fd, [0x16, 0x03, 0x01]))  // the start of a record header, then silence
        #expect(server.recorder.wait { !$0.closes(of: id).isEmpty })
        #expect(Date().timeIntervalSince(started) >= 0.1)
        #expect(server.recorder.with { $0.closes(of: id) } == [.tlsFailed("handshake timed out")])
        #expect(Client.receiveToEnd(fd).eof)
        // A completed handshake is not timed out later.
        let client = try TLSClient(port: server.port, context: fixture.client)
        let clientID = try #require(server.recorder.waitForAccept(peerPort: client.localPort))
        _ = server.onLoop { $0.schedule(1, at: $0.now + 300) }
        #expect(server.recorder.wait { !$0.fired.isEmpty })
        #expect(server.recorder.with { $0.closes(of: clientID) }.isEmpty)
        #expect(client.send(bytes("alive")))
        #expect(client.receive(count: 5) == bytes("alive"))
        #expect(server.shutdown())
    }

    @Test("bad certificate or key files: TLSError names the file and the OpenSSL reason, never key bytes")
    func contextErrors() throws {
        let fixture = try TLSFixture.shared.get()
        let missing = fixture.directory + "/missing.pem"
        do {
            _ = try TLSContext(certificateChainFile: missing, privateKeyFile: fixture.key)
            Issue.record("a missing certificate was accepted")
        } catch {
            #expect(error.file == missing && error.operation == "load certificate")
            #expect(error.description == "cannot load certificate \(missing): No such file or directory")
        }
        do {
            _ = try TLSContext(certificateChainFile: fixture.certificate, privateKeyFile: missing)
            Issue.record("a missing key was accepted")
        } catch {
            #expect(error.description == "cannot load private key \(missing): No such file or directory")
        }
        do {
            _ = try TLSContext(certificateChainFile: fixture.certificate, privateKeyFile: fixture.otherKey)
            Issue.record("a mismatched key was accepted")
        } catch {
            #expect(error.file == fixture.otherKey)
            #expect(error.description.hasPrefix("cannot load private key \(fixture.otherKey): "))
            #expect(error.reason.contains("mismatch"), "\(error)")
        }
        let garbage = fixture.directory + "/garbage.pem"
        let secret = "c2VjcmV0LWtleS1tYXRlcmlhbA"
        try "-----BEGIN PRIVATE KEY-----\n\(secret)\n-----END PRIVATE KEY-----\n"
            .write(toFile: garbage, atomically: true, encoding: .utf8)
        do {
            _ = try TLSContext(certificateChainFile: fixture.certificate, privateKeyFile: garbage)
            Issue.record("a garbage key was accepted")
        } catch {
            #expect(error.description.hasPrefix("cannot load private key \(garbage): "))
            #expect(!error.description.contains(secret))
        }
        do {
            _ = try TLSContext(certificateChainFile: garbage, privateKeyFile: fixture.key)
            Issue.record("a garbage certificate was accepted")
        } catch {
            #expect(error.description.hasPrefix("cannot load certificate \(garbage): "))
            #expect(!error.description.contains(secret))
        }
        #expect(ERR_peek_error() == 0)  // nothing left on this thread's error queue
    }

    @Test("200 concurrent TLS connections echo, then one SharedBytes is encrypted for each")
    func concurrentConnections() throws {
        let fixture = try TLSFixture.shared.get()
        let server = try LoopServer(tls: fixture.server)
        let count = 200
        final class Clients: @unchecked Sendable {
            let lock = NSLock()
            var clients: [Int: TLSClient] = [:]
            var failures: [String] = []
        }
        let made = Clients()
        DispatchQueue.concurrentPerform(iterations: count) { i in
            do {
                let client = try TLSClient(port: server.port, context: fixture.client)
                made.lock.withLock { made.clients[i] = client }
            } catch {
                made.lock.withLock { made.failures.append("\(error)") }
            }
        }
        #expect(made.failures.isEmpty, "\(made.failures.prefix(3))")
        let clients = (0..<count).compactMap { made.clients[$0] }
        try #require(clients.count == count)
        #expect(server.recorder.wait { $0.accepted.count == count })
        #expect(server.onLoop { $0.connectionCount } == count)

        for (i, client) in clients.enumerated() { #expect(client.send(bytes("message \(i);"))) }
        let mismatches = clients.enumerated().filter { i, client in
            client.receive(count: bytes("message \(i);").count) != bytes("message \(i);")
        }
        #expect(mismatches.isEmpty)

        let broadcast = pattern(40_000, seed: 7)
        let ids = server.broadcastToAll(broadcast)
        #expect(clients.filter { $0.receive(count: broadcast.count) != broadcast }.isEmpty)

        for client in clients { client.sendCloseNotify() }
        made.clients = [:]
        server.expectAllClosedByPeers(ids)
    }

    @Test("a TLS client that never reads: bufferedAmount grows, another TLS client is served, drained follows")
    func backpressure() throws {
        let fixture = try TLSFixture.shared.get()
        let server = try LoopServer(tls: fixture.server)
        let slow = try TLSClient(port: server.port, context: fixture.client, receiveBuffer: 65536)
        let fast = try TLSClient(port: server.port, context: fixture.client)
        let slowID = try #require(server.recorder.waitForAccept(peerPort: slow.localPort))
        _ = try #require(server.recorder.waitForAccept(peerPort: fast.localPort))

        let chunkSize = 1 << 20
        let chunkBytes = pattern(chunkSize, seed: 3)
        let chunk = SharedBytes(chunkBytes)
        let batches = 16
        let first = try server.queue(chunk, times: batches, for: slowID)
        let second = try server.queue(chunk, times: batches, for: slowID)
        #expect(first > 8 << 20, "bufferedAmount after 16 MiB: \(first)")
        #expect(second > first + (8 << 20), "bufferedAmount after 32 MiB: \(second)")

        #expect(fast.send(bytes("ping")))
        #expect(fast.receive(count: 4) == bytes("ping"))
        #expect(server.recorder.with { $0.drained.isEmpty })

        var corrupt = 0
        var received = 0
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        for _ in 0..<(2 * batches) {
            let n = buffer.withUnsafeMutableBytes { slow.receive(into: $0) }
            received += n
            if n != chunkSize || buffer != chunkBytes { corrupt += 1 }
        }
        #expect(received == 2 * batches * chunkSize)
        #expect(corrupt == 0)
        server.expectDrainedOnce(slowID)
        #expect(server.shutdown())
    }

    @Test("writes before the handshake are queued and arrive encrypted after it")
    func writeBeforeHandshake() throws {
        let fixture = try TLSFixture.shared.get()
        let server = try LoopServer(onInput: .record, tls: fixture.server)
        let fd = try TLSClient.connectSocket(port: server.port)
        let id = try #require(server.recorder.waitForAccept(peerPort: Client.localPort(fd)))
        let greeting = pattern(50_000, seed: 9)
        let queued = server.onLoop { loop -> Int in
            greeting.withUnsafeBytes { loop.write(id, copying: $0) }
            return loop.bufferedAmount(id)
        }
        #expect(queued == greeting.count)
        let client = try TLSClient(socket: fd, context: fixture.client)
        #expect(client.receive(count: greeting.count) == greeting)
        #expect(server.recorder.wait { $0.drained == [id] })
        #expect(server.shutdown())
    }

    @Test("close(flushFirst: true) delivers everything, then close_notify; closedLocally after the peer closes")
    func flushFirstClose() throws {
        let fixture = try TLSFixture.shared.get()
        let server = try LoopServer(onInput: .record, tls: fixture.server)
        let client = try TLSClient(port: server.port, context: fixture.client)
        let id = try #require(server.recorder.waitForAccept(peerPort: client.localPort))
        let payload = pattern(3 << 20, seed: 5)
        server.writeThenCloseFlushing(payload, to: id)
        let (received, clean) = client.receiveToEnd()
        #expect(clean)  // ended by close_notify
        LoopServer.expectFlushedBeforeClose(received, payload)
        client.sendCloseNotify()
        #expect(server.recorder.wait { !$0.closes(of: id).isEmpty })
        #expect(server.recorder.with { $0.closes(of: id) } == [.closedLocally])
        #expect(server.shutdown())
    }

    @Test("a peer that closes without close_notify is .peerClosed; close(flushFirst: false) is abrupt")
    func peerCloseVariants() throws {
        let fixture = try TLSFixture.shared.get()
        let server = try LoopServer(tls: fixture.server)
        let rude = try TLSClient(port: server.port, context: fixture.client)
        let rudeID = try #require(server.recorder.waitForAccept(peerPort: rude.localPort))
        #expect(rude.send(bytes("x")))
        #expect(rude.receive(count: 1) == bytes("x"))
        shutdown(rude.fd, Int32(SHUT_RDWR))  // FIN without close_notify
        #expect(server.recorder.wait { !$0.closes(of: rudeID).isEmpty })
        #expect(server.recorder.with { $0.closes(of: rudeID) } == [.peerClosed])

        let dropped = try TLSClient(port: server.port, context: fixture.client)
        let droppedID = try #require(server.recorder.waitForAccept(peerPort: dropped.localPort))
        _ = server.onLoop { $0.close(droppedID, flushFirst: false) }
        let (received, clean) = dropped.receiveToEnd()
        #expect(received.isEmpty && !clean)
        // The close is reported at the end of the loop turn, which may come after the client saw it.
        #expect(server.recorder.wait { !$0.closes(of: droppedID).isEmpty })
        #expect(server.recorder.with { $0.closes(of: droppedID) } == [.closedLocally])
        #expect(server.onLoop { $0.connectionCount } == 0)
        #expect(server.shutdown())
    }

    @Test("pauseReading holds TLS input, including what OpenSSL already buffered, until resumed")
    func pauseReading() throws {
        let fixture = try TLSFixture.shared.get()
        let server = try LoopServer(onInput: .record, tls: fixture.server)
        let client = try TLSClient(port: server.port, context: fixture.client)
        let id = try #require(server.recorder.waitForAccept(peerPort: client.localPort))
        _ = server.onLoop { $0.pauseReading(id, true) }
        let message = pattern(200_000, seed: 11)
        #expect(client.send(message))
        _ = server.onLoop { _ in }
        _ = server.onLoop { _ in }
        #expect(server.recorder.with { $0.received[id] } == nil)
        _ = server.onLoop { $0.pauseReading(id, false) }
        #expect(server.recorder.wait { $0.received[id]?.count == message.count })
        #expect(server.recorder.with { $0.received[id] } == message)
        #expect(server.shutdown())
    }

    @Test("echo throughput (informational): 64 round trips of 1 MiB over TLS and over plain TCP")
    func throughput() throws {
        let fixture = try TLSFixture.shared.get()
        let message = pattern(1 << 20, seed: 1)
        let rounds = 64
        func measure(_ name: String, send: ([UInt8]) -> Bool, receive: (UnsafeMutableRawBufferPointer) -> Int) -> Bool {
            func cpuSeconds() -> Double {
                var usage = rusage()
                getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
                return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
                    + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
            }
            var buffer = [UInt8](repeating: 0, count: message.count)
            let start = Date()
            let cpuStart = cpuSeconds()
            var ok = true
            for _ in 0..<rounds {
                ok = ok && send(message)
                ok = ok && buffer.withUnsafeMutableBytes { receive($0) } == message.count
            }
            let seconds = Date().timeIntervalSince(start)
            let cpu = cpuSeconds() - cpuStart
            print("\(name) echo: \(rounds) MiB each way in \(String(format: "%.3f", seconds)) s = "
                  + "\(String(format: "%.0f", Double(rounds) / seconds)) MiB/s each way; "
                  + "CPU (client and server) \(String(format: "%.2f", cpu * 1000 / Double(rounds))) ms per MiB round trip")
            return ok && buffer == message
        }

        let tlsServer = try LoopServer(onInput: .echoOnly, tls: fixture.server)
        let client = try TLSClient(port: tlsServer.port, context: fixture.client)
        let cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(client.ssl)).map { String(cString: $0) } ?? "?"
        #expect(measure("TLS (\(cipher))", send: client.send, receive: client.receive(into:)))
        #expect(tlsServer.shutdown())

        let plainServer = try LoopServer(onInput: .echoOnly)
        let fd = Client.connect(port: plainServer.port)
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        #expect(measure("plain TCP", send: { Client.send(fd, $0) }, receive: { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = recv(fd, buffer.baseAddress! + offset, buffer.count - offset, 0)
                guard n > 0 else { break }
                offset += n
            }
            return offset
        }))
        #expect(plainServer.shutdown())
    }
}
