import Testing
import SwitchboardCodec

@Suite struct UpgradeTests {
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    func request(method: String = "GET", target: String = "/ws", version: String = "HTTP/1.1",
                 headers: [(String, String)]) -> HTTPRequestHead {
        var text = "\(method) \(target) \(version)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        guard case .complete(let head, _) = parse([bytes(text)]).0 else {
            Issue.record("request did not parse: \(text)")
            return HTTPRequestHead(method: "", target: "", version: .http1_1, headers: [])
        }
        return head
    }

    func standard(dropping: String? = nil, replacing: (String, String)? = nil) -> [(String, String)] {
        var headers: [(String, String)] = [
            ("Host", "server.example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", Self.key), ("Sec-WebSocket-Version", "13"),
        ]
        headers.removeAll { $0.0 == dropping }
        if let replacing {
            headers.removeAll { $0.0 == replacing.0 }
            headers.append(replacing)
        }
        return headers
    }

    @Test func validHandshake() {
        let head = request(target: "/ws?token=abc", headers: standard() + [
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits, x-custom"),
            ("Sec-WebSocket-Protocol", "chat, superChat"),
        ])
        #expect(classifyUpgrade(head, path: "/ws") == .upgrade(
            key: Self.key, extensions: ["permessage-deflate; client_max_window_bits", "x-custom"],
            protocols: ["chat", "superChat"]))
    }

    @Test func tokensAreCaseInsensitiveAndListed() {
        let head = request(headers: standard(replacing: ("Connection", "keep-alive, UPGRADE"))
            .map { $0.0 == "Upgrade" ? ("upgrade", "h2c, WebSocket") : $0 })
        #expect(classifyUpgrade(head, path: "/ws") == .upgrade(key: Self.key, extensions: [], protocols: []))
    }

    @Test func versionMissingOrWrongIs426() {
        #expect(classifyUpgrade(request(headers: standard(dropping: "Sec-WebSocket-Version")), path: "/ws") == .versionNotSupported)
        for version in ["8", "12", "14", "13, 8", ""] {
            let head = request(headers: standard(replacing: ("Sec-WebSocket-Version", version)))
            #expect(classifyUpgrade(head, path: "/ws") == .versionNotSupported, "version \(version)")
        }
        // The version is checked first: a POST without a version still gets 426.
        let post = request(method: "POST", headers: standard(dropping: "Sec-WebSocket-Version"))
        #expect(classifyUpgrade(post, path: "/ws") == .versionNotSupported)
    }

    @Test func otherFailuresAreUpgradeFailed() {
        let cases: [HTTPRequestHead] = [
            request(method: "POST", headers: standard()),
            request(method: "get", headers: standard()),
            request(version: "HTTP/1.0", headers: standard()),
            request(headers: standard(dropping: "Connection")),
            request(headers: standard(replacing: ("Connection", "keep-alive"))),
            request(headers: standard(dropping: "Sec-WebSocket-Key")),
            request(headers: standard(replacing: ("Sec-WebSocket-Key", "short"))),
            request(headers: standard(replacing: ("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA="))),  // 17 bytes
            request(headers: standard(replacing: ("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"))),  // 15 bytes
            request(headers: standard(replacing: ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ*="))),
            request(headers: standard() + [("Sec-WebSocket-Key", Self.key)]),  // repeated key
        ]
        for head in cases {
            #expect(classifyUpgrade(head, path: "/ws") == .upgradeFailed, "\(head)")
        }
    }

    @Test func otherRequestsAreNotUpgrades() {
        #expect(classifyUpgrade(request(target: "/other", headers: standard()), path: "/ws") == .notAnUpgrade)
        #expect(classifyUpgrade(request(target: "/ws/x", headers: standard()), path: "/ws") == .notAnUpgrade)
        #expect(classifyUpgrade(request(headers: standard(dropping: "Upgrade")), path: "/ws") == .notAnUpgrade)
        #expect(classifyUpgrade(request(headers: standard(replacing: ("Upgrade", "h2c"))), path: "/ws") == .notAnUpgrade)
        #expect(classifyUpgrade(request(method: "POST", headers: [("Host", "h")]), path: "/ws") == .notAnUpgrade)
        #expect(classifyUpgrade(request(target: "/", headers: [("Host", "h")]), path: "/ws") == .notAnUpgrade)
    }

    @Test func keyValidation() {
        #expect(isValidWebSocketKey(Self.key))
        #expect(isValidWebSocketKey("AAAAAAAAAAAAAAAAAAAAAA=="))
        // Nonzero bits under the padding: still 16 bytes, still accepted.
        #expect(isValidWebSocketKey("AAAAAAAAAAAAAAAAAAAAAB=="))
        #expect(!isValidWebSocketKey("AAAAAAAAAAAAAAAAAAAAAAB="))  // 17 bytes
        #expect(!isValidWebSocketKey(""))
        #expect(!isValidWebSocketKey("dGhlIHNhbXBsZSBub25jZQ"))
        #expect(!isValidWebSocketKey("dGhlIHNhbXBsZSBub25jZQ==="))
    }
}
