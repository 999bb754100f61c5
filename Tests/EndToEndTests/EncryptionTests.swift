// PROTOCOL.md 9 end to end: a real P-256 client against `--require-encryption`.
import Foundation
import Switchboard
import SwitchboardCrypto
import TestSupport
import Testing

extension EndToEnd {
    @Suite("Encryption (PROTOCOL.md 9)") struct Encryption {
        @Test("connected carries serverPublicKey and salt in plain; later messages arrive encrypted")
        func encryptedEcho() throws {
            try withFixture(["--require-encryption"]) { server in
                let keys = try P256KeyPair.generate()
                let client = try server.client()
                let info = try client.authenticate(token: "user:a", extra: [("publicKey", .string(keys.publicKeyBase64))])
                #expect(info.data.objectValue?.keys.sorted() == ["id", "salt", "serverPublicKey", "time", "userId"],
                        "connected: \(info.data)")
                #expect(try server.waitForLine(prefix: "CONNECTED ") == "CONNECTED \(info.id) a")
                guard let serverKey = info.data["serverPublicKey"]?.stringValue, let salt = info.data["salt"]?.stringValue else {
                    Issue.record("connected lacks serverPublicKey/salt: \(info.data)")
                    return
                }
                let rawKey = try Base64.decode(serverKey)
                #expect(rawKey.count == 65 && rawKey.first == 0x04, "serverPublicKey is not an uncompressed P-256 point")
                #expect(try Base64.decode(salt).count == 32)
                let session = try EncryptionSession.client(keyPair: keys, serverPublicKeyBase64: serverKey, saltBase64: salt)

                let data = object([("secret", "attack at dawn ✓"), ("n", 1)])
                var ivs: Set<String> = []
                for _ in 0..<2 {
                    try client.send("echo", data)
                    let message = try client.receiveJSON()
                    #expect(message.event == "encrypted", "expected an encrypted echo, got \(message)")
                    #expect(message.data?.objectValue?.keys.sorted() == ["ct", "iv"], "encrypted data: \(message)")
                    guard let iv = message.data?["iv"]?.stringValue, let ct = message.data?["ct"]?.stringValue else { return }
                    #expect(try Base64.decode(iv).count == 12)
                    ivs.insert(iv)
                    let plaintext = try session.decrypt(ivBase64: iv, ctBase64: ct)
                    let inner = try JSONValue.parse(plaintext)
                    #expect(inner == object([("event", "echo"), ("data", data)]), "decrypted: \(String(decoding: plaintext, as: UTF8.self))")
                }
                #expect(ivs.count == 2, "the IV was reused")

                try client.toRoom(info.id, "own room")
                let roomMessage = try client.receiveJSON()
                guard roomMessage.event == "encrypted", let iv = roomMessage.data?["iv"]?.stringValue,
                      let ct = roomMessage.data?["ct"]?.stringValue else {
                    Issue.record("expected an encrypted room-message, got \(roomMessage)")
                    return
                }
                let inner = try JSONValue.parse(try session.decrypt(ivBase64: iv, ctBase64: ct))
                #expect(inner == object([("event", "room-message"), ("data", "own room")]))
            }
        }

        @Test("While handshakeFn runs the client is not authenticated")
        func notAuthenticatedDuringHandshake() throws {
            try withFixture(["--require-encryption"]) { server in
                let client = try server.client()
                try client.sendAuthenticate(token: "user:a", extra: [("publicKey", "slow:400")])
                try client.send("echo", "too early")
                try client.expectError("Not authenticated")
                try client.sendAuthenticate(token: "user:a")
                try client.expectError("Already authenticated")
                try client.expectError("Encryption handshake failed")
                try client.expectClose(code: 4004, reason: "Encryption required")
            }
        }
    }
}
