// Who may upgrade, over real sockets against the fixture: allowed origins (403 otherwise) and
// the per-address connection limit behind a trusted proxy (429 at upgrade).
import Switchboard
import TestSupport
import Testing

@Suite("Upgrade admission: origins and the per-address limit behind a proxy", .serialized)
struct UpgradeAdmissionTests {
    /// The spec's answers as the wire carries them (spec/protocol.yaml `http`).
    static let forbiddenOrigin = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + "Content-Length: 16\r\nConnection: close\r\n\r\nForbidden origin"
    static let tooManyConnections = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + "Content-Length: 20\r\nConnection: close\r\n\r\nToo Many Connections"

    /// An upgrade request for `port` with `headers` added (each a full `Name: value` line).
    static func request(port: UInt16, key: String, headers: [String]) -> String {
        let plain = upgradeRequest(port: port, key: key)
        precondition(plain.hasSuffix("\r\n\r\n"))
        return String(plain.utf8.dropLast(2))! + headers.map { $0 + "\r\n" }.joined() + "\r\n"
    }

    /// Upgrades with `headers`; throws unless the answer is 101 with the right accept key.
    static func upgrade(_ fixture: Fixture, headers: [String]) throws -> WSClient {
        let connection = try TCPConnection(port: fixture.port)
        let key = randomWebSocketKey()
        try connection.write(Array(request(port: fixture.port, key: key, headers: headers).utf8))
        return try WSClient(connection: connection, port: fixture.port, key: key)
    }

    /// The whole HTTP answer to an upgrade request with `headers`.
    static func refused(_ fixture: Fixture, headers: [String]) throws -> String {
        try rawHTTP(port: fixture.port, request: request(port: fixture.port, key: randomWebSocketKey(), headers: headers)).raw
    }

    @Test("The spec's answers are the bytes these tests expect")
    func specAnswers() {
        #expect(ConnectionPolicy.originForbiddenAnswer.status == 403)
        #expect(ConnectionPolicy.originForbiddenAnswer.body == "Forbidden origin")
        #expect(ConnectionPolicy.tooManyConnectionsAnswer.status == 429)
        #expect(ConnectionPolicy.tooManyConnectionsAnswer.body == "Too Many Connections")
    }

    @Test("A foreign Origin gets 403, an allowed one (any case of host) and none upgrade")
    func allowedOrigins() throws {
        try withFixture(["--allowed-origins", "https://app.example.com,http://localhost:3000"]) { fixture in
            #expect(try Self.refused(fixture, headers: ["Origin: https://evil.example"]) == Self.forbiddenOrigin)
            #expect(try Self.refused(fixture, headers: ["Origin: https://app.example.com:8443"]) == Self.forbiddenOrigin,
                    "the port is part of the origin")
            #expect(try Self.refused(fixture, headers: ["Origin: null"]) == Self.forbiddenOrigin)

            let allowed = try Self.upgrade(fixture, headers: ["Origin: https://APP.Example.com"])
            #expect(try allowed.authenticate(token: "user:a").id.isEmpty == false)
            let local = try Self.upgrade(fixture, headers: ["Origin: http://localhost:3000"])
            let noOrigin = try fixture.client()
            #expect(try noOrigin.authenticate(token: "user:b").id.isEmpty == false)
            local.close()
            allowed.close()
            noOrigin.close()
        }
    }

    @Test("Without allowed origins, any Origin upgrades")
    func anyOriginByDefault() throws {
        try withFixture([]) { fixture in
            let client = try Self.upgrade(fixture, headers: ["Origin: https://anywhere.example"])
            client.close()
        }
    }

    @Test("Through a trusted proxy the forwarded client is limited, not the proxy")
    func trustedProxy() throws {
        try withFixture(["--max-connections-per-ip", "1", "--trusted-proxies", "127.0.0.1"]) { fixture in
            let first = try Self.upgrade(fixture, headers: ["X-Forwarded-For: 203.0.113.7"])
            #expect(try Self.refused(fixture, headers: ["X-Forwarded-For: 203.0.113.7"]) == Self.tooManyConnections)
            // The client wrote the left entry itself; the proxy appended 203.0.113.7.
            #expect(try Self.refused(fixture, headers: ["X-Forwarded-For: 198.51.100.1, 203.0.113.7"]) == Self.tooManyConnections)
            // Another client through the same proxy is not affected.
            let other = try Self.upgrade(fixture, headers: ["X-Forwarded-For: 203.0.113.8"])
            // RFC 7239, when there is no X-Forwarded-For: a quoted address with a port.
            let forwarded = try Self.upgrade(fixture, headers: ["Forwarded: for=\"203.0.113.9:4711\";proto=http"])
            #expect(try Self.refused(fixture, headers: ["Forwarded: for=203.0.113.9"]) == Self.tooManyConnections)

            // The address is free again once its connection has gone.
            first.close()
            var again: WSClient?
            #expect(pollUntil(timeout: 3) {
                again = try? Self.upgrade(fixture, headers: ["X-Forwarded-For: 203.0.113.7"])
                return again != nil
            }, "203.0.113.7 could not connect again after its connection closed")
            again?.close()
            other.close()
            forwarded.close()
        }
    }

    @Test("An untrusted peer's X-Forwarded-For is ignored: the peer itself is limited at accept")
    func untrustedPeer() throws {
        try withFixture(["--max-connections-per-ip", "1", "--trusted-proxies", "10.255.0.1"]) { fixture in
            let first = try Self.upgrade(fixture, headers: ["X-Forwarded-For: 203.0.113.7"])
            // Another forwarded address from the same peer: closed at accept, nothing answered.
            let second = try TCPConnection(port: fixture.port)
            // The server may have closed it already: then the write fails, and that is fine.
            try? second.write(Array(Self.request(port: fixture.port, key: randomWebSocketKey(),
                                                 headers: ["X-Forwarded-For: 203.0.113.8"]).utf8))
            var buffer: [UInt8] = []
            let count = try second.read(into: &buffer, deadline: deadline(after: 2), what: "the end of the refused connection")
            #expect(count == 0, "the second connection was answered: \(String(decoding: buffer, as: UTF8.self))")
            second.close()
            first.close()
        }
    }
}
