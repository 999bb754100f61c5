@testable import Switchboard
import SwitchboardCodec
import Testing

/// How `Upgrade` decides who may upgrade: `OriginPolicy`, `ProxyAddresses` and the registry's
/// per-address count of proxied clients.
@Suite("Upgrade admission")
struct UpgradeAdmissionUnitTests {
    static func head(_ headers: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(method: "GET", target: "/ws", version: .http1_1, headers: headers.map { (name: $0.0, value: $0.1) })
    }

    @Test("Origins match scheme, host (any case) and port; no list or no header admits")
    func origins() {
        let policy = OriginPolicy(["https://App.example.com", "http://localhost:3000/"])
        #expect(policy.admits("https://app.example.com"))
        #expect(policy.admits("HTTPS://APP.EXAMPLE.COM"))
        #expect(policy.admits("http://localhost:3000"))
        #expect(!policy.admits("http://localhost:3001"))
        #expect(!policy.admits("http://app.example.com"), "the scheme counts")
        #expect(!policy.admits("https://app.example.com.evil.example"))
        #expect(!policy.admits("https://app.example.com, https://evil.example"), "two Origin fields")
        #expect(policy.admits(nil))
        #expect(OriginPolicy(nil).admits("https://anything.example"))
        #expect(OriginPolicy([]).admits("https://anything.example"))
    }

    @Test("The client is the rightmost untrusted X-Forwarded-For entry, else Forwarded's for=")
    func clientAddress() {
        let proxies = ProxyAddresses(["10.0.0.1", "10.0.0.2", "::1"])
        func client(_ headers: [(String, String)]) -> String { proxies.clientAddress(peer: "10.0.0.1", head: Self.head(headers)) }
        #expect(client([("X-Forwarded-For", "203.0.113.7")]) == "203.0.113.7")
        #expect(client([("X-Forwarded-For", "1.1.1.1, 203.0.113.7, 10.0.0.2")]) == "203.0.113.7")
        #expect(client([("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "203.0.113.7")]) == "203.0.113.7", "fields joined in order")
        #expect(client([("X-Forwarded-For", "10.0.0.2, 10.0.0.1")]) == "10.0.0.2", "all trusted: the leftmost")
        #expect(client([("X-Forwarded-For", "203.0.113.7:5000")]) == "203.0.113.7")
        #expect(client([("X-Forwarded-For", "[2001:DB8::1]:443")]) == "2001:db8::1")
        #expect(client([("X-Forwarded-For", "2001:db8::1")]) == "2001:db8::1")
        #expect(client([("Forwarded", #"for="[2001:db8::17]:4711";proto=https, for=203.0.113.9;by=10.0.0.1"#)]) == "203.0.113.9")
        #expect(client([("Forwarded", #"for="[2001:db8::17]:4711", For=10.0.0.2"#)]) == "2001:db8::17")
        #expect(client([("Forwarded", "for=1.1.1.1"), ("X-Forwarded-For", "203.0.113.7")]) == "203.0.113.7",
                "X-Forwarded-For first")
        #expect(client([]) == "10.0.0.1", "no header: the proxy itself")
        #expect(proxies.isTrusted("::ffff:10.0.0.1"))
        #expect(proxies.isTrusted("::1") && !proxies.isTrusted("10.0.0.3"))
        #expect(!ProxyAddresses([]).isTrusted("127.0.0.1"))
    }

    @Test("A proxied connection is counted under its client, once, and freed when it closes")
    func proxiedCount() {
        let links = LinkRegistry(maxHeaderBytes: 1_024, maxConnectionsPerIP: 1)
        #expect(links.open(1, peer: "proxy", now: 0, countPeer: false) != nil)
        #expect(links.open(2, peer: "proxy", now: 0, countPeer: false) != nil, "the proxy itself is not limited")
        #expect(links.count(1, as: "client"))
        #expect(links.count(1, as: "client"), "counted once")
        #expect(!links.count(2, as: "client"))
        #expect(links.count(2, as: "other"))
        _ = links.remove(1)
        #expect(links.open(3, peer: "proxy", now: 0, countPeer: false) != nil)
        #expect(links.count(3, as: "client"))
    }

    @Test("The engine answers a foreign Origin with the spec's 403 and a proxied client over its limit with 429")
    func engineAnswers() {
        var options = ServerOptions()
        options.allowedOrigins = ["https://app.example.com"]
        options.maxConnectionsPerIP = 1
        options.trustedProxies = ["test"]
        let world = EngineHarness(options: options)
        let upgrade = "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        func answer(_ id: ConnectionID, _ headers: String) -> String {
            world.engine.connectionOpened(id, peer: "test")
            world.receive(id, Array((upgrade + headers + "\r\n").utf8))
            return String(decoding: world.driver.written(id), as: UTF8.self)
        }
        #expect(answer(1, "Origin: https://evil.example\r\n") == SpecAnswerTests.expected(ConnectionPolicy.originForbiddenAnswer))
        #expect(answer(2, "X-Forwarded-For: 192.0.2.1\r\n").hasPrefix("HTTP/1.1 101 "))
        #expect(answer(3, "X-Forwarded-For: 192.0.2.1\r\n") == SpecAnswerTests.expected(ConnectionPolicy.tooManyConnectionsAnswer))
        #expect(answer(4, "X-Forwarded-For: 192.0.2.2\r\nOrigin: https://app.example.com\r\n").hasPrefix("HTTP/1.1 101 "))
    }
}
