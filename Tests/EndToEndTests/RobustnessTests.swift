// Bad and slow peers: garbage, non-readers, slow handshakes, oversize and unmasked frames.
import Foundation
import Switchboard
import TestSupport
import Testing

extension EndToEnd {
    @Suite("Bad input and slow peers") struct Robustness {
        @Test("Garbage instead of an upgrade request gets HTTP 400; others are still served")
        func garbageHandshake() throws {
            try withFixture { server in
                let (existing, _) = try server.authenticatedClient(token: "user:e")
                let garbage: [[UInt8]] = [
                    [0x16, 0x03, 0x01, 0x00, 0xFF, 0x00, 0x80] + Array(" garbage\r\n\r\n".utf8),
                    Array("NOT HTTP AT ALL\r\n\r\n".utf8),
                ]
                for bytes in garbage {
                    let reply = try rawHTTP(port: server.port, bytes: bytes)
                    #expect(reply.status == 400, "garbage \(bytes.prefix(8)): \(reply)")
                }
                try existing.expectEcho("still served")
                let (fresh, _) = try server.authenticatedClient(token: "user:f")
                try fresh.expectEcho("new client served")
            }
        }

        @Test("Garbage frame bytes after the upgrade close with 1002")
        func garbageFrames() throws {
            try withFixture { server in
                let (client, _) = try server.authenticatedClient()
                try client.sendRaw([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
                try client.expectClose(code: 1002, reason: nil)
                let (other, _) = try server.authenticatedClient(token: "user:b")
                try other.expectEcho("unharmed")
            }
        }

        @Test("A non-reading client loses messages, the reader gets all, the server stays responsive")
        func backpressureDrops() throws {
            try withFixture(["--backpressure-limit", "65536"]) { server in
                let (reader, _) = try server.authenticatedClient(token: "user:r")
                let stalled = try server.client(receiveBuffer: 4096)
                _ = try stalled.authenticate(token: "user:n")
                try flood(reader: reader, room: "ws-default", count: floodCount)

                let (fresh, _) = try server.authenticatedClient(token: "user:f")
                try fresh.expectEcho("responsive")

                // Read what was queued for the stalled client until the server has nothing more,
                // then prove it is open: the probe's echo is the next message after the backlog.
                var received = try readFloodBacklog(stalled)
                let nonce = stalled.nextNonce()
                try stalled.send("echo", .string(nonce))
                while true {
                    let message = try stalled.receiveJSON()
                    if message.event == "echo" {
                        #expect(message.data == .string(nonce))
                        break
                    }
                    received.append(try floodSequence(message))
                }
                #expect(received.count < floodCount, "the stalled client got all \(floodCount) messages: nothing was dropped")
                #expect(received.count > 0)
                #expect(received == received.sorted() && Set(received).count == received.count,
                        "messages out of order or repeated")

                try reader.toRoom("ws-default", "after drain")
                try stalled.expectRoomMessage("after drain")
            }
        }

        @Test("--close-on-backpressure closes a non-reading client with 1008")
        func backpressureCloses() throws {
            try withFixture(["--backpressure-limit", "65536", "--close-on-backpressure"]) { server in
                let (reader, _) = try server.authenticatedClient(token: "user:r")
                let stalled = try server.client(receiveBuffer: 4096)
                let stalledInfo = try stalled.authenticate(token: "user:n")
                // Stop flooding once the server has closed the stalled client (its DISCONNECTED
                // line), and read at once: a closing connection's queue is flushed for at most
                // the driver's linger (2 s), after which it is dropped without the close frame.
                try flood(reader: reader, room: "ws-default", count: floodCount) {
                    server.stdoutLines.contains { $0.hasPrefix("DISCONNECTED \(stalledInfo.id) ") }
                }
                let skipped = try stalled.expectClose(code: 1008, reason: "Backpressure limit exceeded", timeout: 3,
                                                      skippingMessages: true)
                #expect(skipped < floodCount)

                let (fresh, _) = try server.authenticatedClient(token: "user:f")
                try fresh.expectEcho("responsive")
                try server.waitForLine(prefix: "DISCONNECTED \(stalledInfo.id) n")
                try reader.expectEcho("reader kept")
            }
        }

        @Test("A handshake trickled one byte every 20 ms is served, and others are served meanwhile")
        func trickledHandshake() throws {
            try withFixture { server in
                let (other, _) = try server.authenticatedClient(token: "user:o")
                let key = randomWebSocketKey()
                let bytes = Array(upgradeRequest(port: server.port, key: key).utf8)
                let slow = try TCPConnection(port: server.port)
                for (index, byte) in bytes.enumerated() {
                    try slow.write([byte])
                    if index + 1 < bytes.count, !slow.staysSilent(for: 0.02) {
                        Issue.record("the server answered or closed after \(index + 1) of \(bytes.count) bytes")
                        return
                    }
                    if index % 16 == 0 { try other.expectEcho(.number(JSONNumber(index))) }
                }
                let client = try WSClient(connection: slow, port: server.port, key: key)
                _ = try client.authenticate(token: "user:t")
                try client.expectEcho("trickled")
            }
        }

        @Test("A message larger than --max-payload closes with 1009 (single frame and fragmented)")
        func oversizeMessage() throws {
            try withFixture(["--max-payload", "1024"]) { server in
                let (client, _) = try server.authenticatedClient()
                let prefix = #"{"event":"echo","data":""#
                let suffix = #""}"#
                let fill = 1024 - prefix.utf8.count - suffix.utf8.count
                try client.sendText(prefix + repeated("x", fill) + suffix)
                #expect(try client.receiveEvent("echo") == .string(repeated("x", fill)), "a 1024-byte message is allowed")
                try client.sendText(prefix + repeated("x", fill + 1) + suffix)
                try client.expectClose(code: 1009, reason: nil)

                let fragmented = try server.client()
                try fragmented.sendFrame(opcode: 0x1, payload: Array(repeated("y", 600).utf8), fin: false)
                try fragmented.sendFrame(opcode: 0x0, payload: Array(repeated("y", 600).utf8), fin: true)
                try fragmented.expectClose(code: 1009, reason: nil)
            }
        }

        @Test("An unmasked client frame closes with 1002")
        func unmaskedFrame() throws {
            try withFixture { server in
                let (client, _) = try server.authenticatedClient()
                try client.sendFrame(opcode: 0x1, payload: Array(#"{"event":"echo","data":1}"#.utf8), masked: false)
                try client.expectClose(code: 1002, reason: nil)
            }
        }
    }
}

/// Messages in a flood; about 1 KB each, 4 MB in all.
let floodCount = 4000

/// `reader` sends `count` `to-room` messages to `room` (which it is in) in batches and
/// requires every one back, in order.
func flood(reader: WSClient, room: String, count: Int, batch: Int = 20, until done: () -> Bool = { false }) throws {
    let padding = JSONValue.string(repeated("x", 1000))
    for start in stride(from: 0, to: count, by: batch) where !done() {
        let end = min(count, start + batch)
        for sequence in start..<end {
            try reader.toRoom(room, object([("seq", .number(JSONNumber(sequence))), ("pad", padding)]))
        }
        for sequence in start..<end {
            let message = try reader.receiveJSON()
            guard message.event == "room-message", message.data?["seq"]?.numberValue?.int == sequence else {
                throw E2EError("the reader expected room-message seq \(sequence), got \(message.raw.prefix(200))")
            }
        }
    }
}

func floodSequence(_ message: Message) throws -> Int {
    guard message.event == "room-message", let sequence = message.data?["seq"]?.numberValue?.int else {
        throw E2EError("expected a flood room-message, got \(message.raw.prefix(200))")
    }
    return sequence
}

/// The flood messages that reach `client` until the server has sent everything it queued
/// (no frame for 300 ms).
func readFloodBacklog(_ client: WSClient) throws -> [Int] {
    var sequences: [Int] = []
    while let frame = try client.receiveIfAny(timeout: 0.3) {
        guard case .text(let text) = frame, let value = try? JSONValue.parse(text),
              let event = value["event"]?.stringValue else {
            throw E2EError("expected a flood room-message, got \(frame)")
        }
        sequences.append(try floodSequence(Message(event: event, data: value["data"], raw: text)))
    }
    return sequences
}
