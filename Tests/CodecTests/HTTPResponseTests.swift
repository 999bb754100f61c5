import Testing
import SwitchboardCodec
import SwitchboardCrypto

@Suite struct HTTPResponseTests {
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// RFC 6455 section 1.3: SHA-1 b37a4f2c...c4ea, base64 `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`
    /// (same as `openssl sha1 -binary | base64` over key + GUID).
    @Test func acceptKeyOfRFC6455Example() throws {
        let accept = webSocketAccept(key: "dGhlIHNhbXBsZSBub25jZQ==")
        #expect(accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(try Base64.decode(accept) == [0xB3, 0x7A, 0x4F, 0x2C, 0xC0, 0x62, 0x4F, 0x16, 0x90, 0xF6,
                                          0x46, 0x06, 0xCF, 0x38, 0x59, 0x45, 0xB2, 0xBE, 0xC4, 0xEA])
        #expect(webSocketAccept(key: "x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=")
    }

    @Test func switchingProtocols() {
        #expect(text(HTTPResponse.switchingProtocols(key: "dGhlIHNhbXBsZSBub25jZQ==")) ==
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
        #expect(text(HTTPResponse.switchingProtocols(key: "dGhlIHNhbXBsZSBub25jZQ==",
                                                     extraHeaders: [(name: "Sec-WebSocket-Protocol", value: "chat")])) ==
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n")
    }

    @Test func upgradeRequired() {
        #expect(text(HTTPResponse.upgradeRequired()) ==
            "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }

    @Test func upgradeFailed() {
        #expect(text(HTTPResponse.upgradeFailed()) ==
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: 24\r\nConnection: close\r\n\r\nWebSocket upgrade failed")
    }

    @Test func simpleResponses() {
        #expect(text(HTTPResponse.simple(status: 404, reason: "Not Found", body: "Not Found")) ==
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 9\r\n"
            + "Connection: close\r\n\r\nNot Found")
        #expect(text(HTTPResponse.simple(status: 200, reason: "OK", contentType: "application/json", body: bytes("{}"))) ==
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        #expect(text(HTTPResponse.parseFailure(.headTooLarge)) ==
            "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(text(HTTPResponse.parseFailure(.invalidHeader)) ==
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }

    @Test func headerInjectionIsImpossible() {
        let response = text(HTTPResponse.simple(status: 400, reason: "Bad\r\nX-Evil: 1", body: "",
                                                extraHeaders: [(name: "A", value: "b\r\nSet-Cookie: x")]))
        #expect(response == "HTTP/1.1 400 BadX-Evil: 1\r\nA: bSet-Cookie: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }
}
