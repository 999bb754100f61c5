import Foundation
import SwitchboardCrypto
import TestSupport
import Testing

/// Interoperability with an independent implementation: Python's `cryptography` package,
/// doing exactly what the browser WebCrypto helper does. These tests require `python3`
/// with `cryptography` installed (CI installs it) and fail, not skip, without it.
@Suite struct PythonInteropTests {
    /// Modes:
    ///   pub <d>                                   -> {"publicKey"}
    ///   client-decrypt <d> <spub> <salt> <iv> <ct> -> {"plaintext"}  (hex)
    ///   client-encrypt <d> <spub> <salt> <pt>      -> {"iv", "ct"}
    ///   server <cpub> <pt>                          -> {"serverPublicKey", "salt", "iv", "ct"}
    /// <d> is a hex private scalar, <pt> hex plaintext, the rest base64.
    static let script = #"""
        import base64, json, os, sys
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        INFO = b"ignis-ecdh-p256-aes-256-gcm-v1"
        b64d = lambda s: base64.b64decode(s, validate=True)
        b64e = lambda b: base64.b64encode(b).decode("ascii")

        def raw_public(private):
            return private.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

        def session_key(private, peer_b64, salt):
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(peer_b64))
            shared = private.exchange(ec.ECDH(), peer)
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO).derive(shared)

        def client(d_hex):
            return ec.derive_private_key(int(d_hex, 16), ec.SECP256R1())

        mode, args = sys.argv[1], sys.argv[2:]
        if mode == "pub":
            out = {"publicKey": b64e(raw_public(client(args[0])))}
        elif mode == "client-decrypt":
            key = session_key(client(args[0]), args[1], b64d(args[2]))
            out = {"plaintext": AESGCM(key).decrypt(b64d(args[3]), b64d(args[4]), None).hex()}
        elif mode == "client-encrypt":
            key = session_key(client(args[0]), args[1], b64d(args[2]))
            iv = os.urandom(12)
            out = {"iv": b64e(iv), "ct": b64e(AESGCM(key).encrypt(iv, bytes.fromhex(args[3]), None))}
        elif mode == "server":
            private = ec.generate_private_key(ec.SECP256R1())
            salt = os.urandom(32)
            key = session_key(private, args[0], salt)
            iv = os.urandom(12)
            out = {"serverPublicKey": b64e(raw_public(private)), "salt": b64e(salt),
                   "iv": b64e(iv), "ct": b64e(AESGCM(key).encrypt(iv, bytes.fromhex(args[1]), None))}
        else:
            sys.exit("unknown mode " + mode)
        print(json.dumps(out))
        """#

    let message = Array(
        (#"{"event":"chat","data":{"text":"h\u00e9llo ✓","n":42}}"# + String(repeating: "x", count: 3000)).utf8)

    @Test func swiftServerEncryptsPythonClientDecrypts() throws {
        let scalar = try Self.randomScalar()
        let clientPublic = try Self.python("pub", hexString(scalar))["publicKey"]
        // Swift's own derivation of the client's public key agrees with Python's.
        #expect(try P256KeyPair(privateKey: scalar).publicKeyBase64 == clientPublic)

        let hello = try EncryptionSession.handshake(clientPublicKeyBase64: try #require(clientPublic))
        let envelope = hello.session.encryptEnvelope(json: message)
        let reply = try Self.python(
            "client-decrypt", hexString(scalar), hello.serverPublicKeyBase64, hello.saltBase64,
            envelope.ivBase64, envelope.ctBase64)
        #expect(reply["plaintext"] == hexString(message))
    }

    @Test func pythonClientEncryptsSwiftServerDecrypts() throws {
        let scalar = try Self.randomScalar()
        let clientPublic = try #require(try Self.python("pub", hexString(scalar))["publicKey"])
        let hello = try EncryptionSession.handshake(clientPublicKeyBase64: clientPublic)
        let sealed = try Self.python(
            "client-encrypt", hexString(scalar), hello.serverPublicKeyBase64, hello.saltBase64, hexString(message))
        let iv = try #require(sealed["iv"])
        let ct = try #require(sealed["ct"])
        #expect(try hello.session.decrypt(ivBase64: iv, ctBase64: ct) == message)

        var tampered = try Base64.decode(ct)
        tampered[0] ^= 0x80
        #expect(throws: CryptoError.authenticationFailed) {
            try hello.session.decrypt(ivBase64: iv, ctBase64: Base64.encode(tampered))
        }
    }

    @Test func pythonServerSwiftClient() throws {
        let keys = try P256KeyPair.generate()
        let answer = try Self.python("server", keys.publicKeyBase64, hexString(message))
        let session = try EncryptionSession.client(
            keyPair: keys, serverPublicKeyBase64: try #require(answer["serverPublicKey"]),
            saltBase64: try #require(answer["salt"]))
        #expect(try session.decrypt(ivBase64: try #require(answer["iv"]), ctBase64: try #require(answer["ct"])) == message)
    }

    // MARK: - Running Python

    struct PythonFailure: Error, CustomStringConvertible {
        let description: String
    }

    static func randomScalar() throws -> [UInt8] {
        for _ in 0..<8 {
            let scalar = SecureRandom.bytes(32)
            if (try? P256KeyPair(privateKey: scalar)) != nil { return scalar }
        }
        throw PythonFailure(description: "no valid P-256 scalar in 8 draws")
    }

    /// Runs the script in `mode` and returns its JSON object of strings.
    static func python(_ arguments: String...) throws -> [String: String] {
        try requireCryptography()
        let scriptURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchboard-crypto-interop-\(UUID().uuidString).py")
        try script.write(to: scriptURL, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: scriptURL) }
        let (status, stdout, stderr) = try run(["python3", scriptURL.path] + arguments)
        guard status == 0 else {
            throw PythonFailure(description: "python3 interop script (\(arguments[0])) exited \(status): \(stderr)")
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: String] else {
            throw PythonFailure(description: "python3 interop script printed unexpected output: \(stdout)")
        }
        return object
    }

    /// Fails the test with instructions when python3 or `cryptography` is missing.
    static func requireCryptography() throws {
        let probe = try? run(["python3", "-c", "import cryptography"])
        guard let probe, probe.status == 0 else {
            let detail = probe.map { "exit \($0.status): \($0.stderr)" } ?? "python3 could not be started"
            throw PythonFailure(description: """
                Crypto interop tests need python3 with the 'cryptography' package \
                (install: `pip install cryptography` or `apt-get install python3-cryptography`); \(detail)
                """)
        }
    }

    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        // stderr goes to a file so that only one pipe is read and neither can block the child.
        let errURL = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchboard-crypto-interop-\(UUID().uuidString).err")
        guard FileManager.default.createFile(atPath: errURL.path, contents: nil) else {
            throw PythonFailure(description: "cannot create \(errURL.path)")
        }
        defer { try? FileManager.default.removeItem(at: errURL) }
        let errHandle = try FileHandle(forWritingTo: errURL)
        let out = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = out
        process.standardError = errHandle
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try errHandle.close()
        let stderr = try Data(contentsOf: errURL)
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }
}
