@testable import Switchboard
import SwitchboardCodec
import SwitchboardKernel
import Testing

/// What the connection says on the wire outside the client machine comes from the spec: HTTP
/// answers (`http`, `connection`) and the reasons of the codec's close codes (`origin: codec`).
@Suite("Spec answers on the wire")
struct SpecAnswerTests {
    /// The bytes the engine writes for a request head, as text.
    static func answer(to head: String) -> String {
        let world = EngineHarness()
        world.engine.connectionOpened(1, peer: "p")
        world.receive(1, Array(head.utf8))
        return String(decoding: world.driver.written(1), as: UTF8.self)
    }

    /// The status line, headers and body the spec's answer should produce.
    static func expected(_ answer: HTTPAnswer) -> String {
        var text = "HTTP/1.1 \(answer.status) \(answer.reason)\r\n"
        if !answer.body.isEmpty { text += "Content-Type: text/plain; charset=utf-8\r\n" }
        for header in answer.headers { text += "\(header.name): \(header.value)\r\n" }
        return text + "Content-Length: \(answer.body.utf8.count)\r\nConnection: close\r\n\r\n\(answer.body)"
    }

    @Test("Each failed handshake gets the spec's answer, byte for byte")
    func handshakeAnswers() {
        let upgrade = "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        #expect(Self.answer(to: upgrade + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            == Self.expected(.upgradeRequired))
        #expect(Self.answer(to: upgrade + "Sec-WebSocket-Version: 13\r\n\r\n") == Self.expected(.upgradeFailed))
        #expect(Self.answer(to: "GET /elsewhere HTTP/1.1\r\nHost: t\r\n\r\n")
            == Self.expected(ConnectionPolicy.notFoundAnswer))
        #expect(Self.answer(to: "GET /ws HTTP/2.0\r\nHost: t\r\n\r\n") == Self.expected(.versionNotSupported))
        #expect(Self.answer(to: "GET /ws HTTP/1.1\r\nBad Header\r\n\r\n") == Self.expected(.badRequest))
    }

    @Test("The spec's upgrade_required carries Sec-WebSocket-Version: 13")
    func upgradeRequiredHeader() {
        #expect(HTTPAnswer.upgradeRequired.headers.map(\.name) == ["Sec-WebSocket-Version"])
        #expect(HTTPAnswer.upgradeRequired.headers.map(\.value) == ["13"])
    }

    @Test("Every code the codec raises is a spec close code of origin codec")
    func codecCodesAreInTheSpec() throws {
        for code in [WebSocketCloseCode.protocolError, WebSocketCloseCode.invalidPayload, WebSocketCloseCode.messageTooBig] {
            let spec = try #require(CloseCode(codec: code), "\(code) is not in close_codes")
            #expect(spec.origin == .codec && spec.code == code)
        }
        #expect(CloseCode(codec: CloseCode.authTimeout.code) == nil, "kernel codes are not the codec's")
    }

    @Test("A frame that breaks RFC 6455 closes with the spec's code and reason, not the codec's detail")
    func codecCloseReason() async {
        let world = EngineHarness()
        await world.connect(1...1)
        world.receive(1, [0x83, 0x80, 0, 0, 0, 0])  // opcode 3 is reserved
        let close = FrameEncoder.close(code: CloseCode.protocolError.code, reason: CloseCode.protocolError.reason)
        #expect(world.driver.written(1) == close)
        #expect(CloseCode.protocolError.reason != "Reserved opcode")
    }
}
