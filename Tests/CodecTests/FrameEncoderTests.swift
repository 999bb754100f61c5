import Testing
import SwitchboardCodec

@Suite struct FrameEncoderTests {
    @Test func headerSizes() {
        #expect(FrameEncoder.headerSize(payloadCount: 0) == 2)
        #expect(FrameEncoder.headerSize(payloadCount: 125) == 2)
        #expect(FrameEncoder.headerSize(payloadCount: 126) == 4)
        #expect(FrameEncoder.headerSize(payloadCount: 65535) == 4)
        #expect(FrameEncoder.headerSize(payloadCount: 65536) == 10)
    }

    @Test func examplesOfRFC6455() {
        #expect(FrameEncoder.text("Hello") == [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
        #expect(FrameEncoder.ping(bytes("Hello")) == [0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
        #expect(FrameEncoder.pong(bytes("Hello")) == [0x8A, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
        var first: [UInt8] = []
        FrameEncoder.encode(opcode: .text, payload: bytes("Hel"), fin: false, into: &first)
        #expect(first == [0x01, 0x03, 0x48, 0x65, 0x6C])
        var second: [UInt8] = []
        FrameEncoder.encode(opcode: .continuation, payload: bytes("lo"), into: &second)
        #expect(second == [0x80, 0x02, 0x6C, 0x6F])
        let binary256 = FrameEncoder.binary([UInt8](repeating: 0xAB, count: 256))
        #expect(Array(binary256.prefix(4)) == [0x82, 0x7E, 0x01, 0x00])
        #expect(binary256.count == 260)
        let binary64k = FrameEncoder.binary([UInt8](repeating: 0xAB, count: 65536))
        #expect(Array(binary64k.prefix(10)) == [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0, 0])
        #expect(binary64k.count == 65546)
    }

    @Test func encodeAppendsAndSetsRSV1() {
        var out: [UInt8] = [0xEE]
        [UInt8](repeating: 1, count: 3).withUnsafeBytes {
            FrameEncoder.encode(opcode: .binary, payload: $0, rsv1: true, into: &out)
        }
        #expect(out == [0xEE, 0xC2, 0x03, 1, 1, 1])
    }

    @Test func writeHeaderIntoHeadroom() {
        var buffer = [UInt8](repeating: 0, count: 10)
        let written = buffer.withUnsafeMutableBytes {
            FrameEncoder.writeHeader(opcode: .text, payloadCount: 300, to: $0.baseAddress!)
        }
        #expect(written == 4)
        #expect(Array(buffer.prefix(4)) == [0x81, 0x7E, 0x01, 0x2C])
    }

    @Test func closeFrames() {
        #expect(FrameEncoder.close(code: 1000, reason: "bye") == [0x88, 0x05, 0x03, 0xE8, 0x62, 0x79, 0x65])
        #expect(FrameEncoder.close(code: 4001, reason: "") == [0x88, 0x02, 0x0F, 0xA1])
        #expect(FrameEncoder.close() == [0x88, 0x00])
        // Reasons are cut to 123 bytes at a character boundary.
        let long = String(repeating: "é", count: 100)  // 200 bytes
        let frame = FrameEncoder.close(code: 1001, reason: long)
        #expect(frame[1] == 2 + 122)
        #expect(UTF8Validator.isValid(frame[4...]))
        let ascii = FrameEncoder.close(code: 1001, reason: String(repeating: "a", count: 200))
        #expect(ascii[1] == 125)
    }

    @Test func roundTripThroughTheDecoder() {
        // Re-mask the server's frames as a client would and decode them.
        let messages: [[UInt8]] = [
            FrameEncoder.text("κόσμε"), FrameEncoder.binary((0..<70_000).map { UInt8(truncatingIfNeeded: $0) }),
            FrameEncoder.ping([1, 2]), FrameEncoder.close(code: 1000, reason: "done"),
        ]
        var stream: [UInt8] = []
        for frame in messages {
            let headerSize = frame[1] == 126 ? 4 : (frame[1] == 127 ? 10 : 2)
            let payload = Array(frame[headerSize...])
            stream += ClientFrame.build(frame[0] & 0x0F, payload)
        }
        #expect(decode(stream) == [
            .text(bytes("κόσμε")), .binary((0..<70_000).map { UInt8(truncatingIfNeeded: $0) }),
            .ping([1, 2]), .close(code: 1000, reason: "done"),
        ])
    }

    @Test func opcodes() {
        #expect(Opcode.allControl.allSatisfy { $0.isControl })
        #expect(![Opcode.continuation, .text, .binary].contains { $0.isControl })
        #expect(Opcode(rawValue: 3) == nil)
    }

    @Test func closeCodesValidOnWire() {
        let valid = (0...65535).filter { WebSocketCloseCode.isValidOnWire(UInt16($0)) }
        #expect(valid == Array(1000...1003) + Array(1007...1014) + Array(3000...4999))
        #expect(WebSocketCloseCode.normal == 1000 && WebSocketCloseCode.goingAway == 1001 && WebSocketCloseCode.protocolError == 1002)
        #expect(WebSocketCloseCode.unsupportedData == 1003 && WebSocketCloseCode.invalidPayload == 1007 && WebSocketCloseCode.policyViolation == 1008)
        #expect(WebSocketCloseCode.messageTooBig == 1009 && WebSocketCloseCode.internalError == 1011)
    }
}

/// The client-side writer the simulation and the test clients share, against RFC 6455 section 5.7.
@Suite struct ClientFrameTests {
    @Test func maskedHelloOfTheRFC() {
        var out: [UInt8] = []
        ClientFrame.write(0x1, Array("Hello".utf8), mask: [0x37, 0xFA, 0x21, 0x3D], into: &out)
        #expect(out == [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    }

    @Test func lengthFormsOfTheRFC() {
        var out: [UInt8] = []
        ClientFrame.write(0x2, [UInt8](repeating: 7, count: 256), mask: nil, into: &out)
        #expect(Array(out.prefix(4)) == [0x82, 0x7E, 0x01, 0x00] && out.count == 4 + 256)
        out.removeAll()
        ClientFrame.write(0x2, [UInt8](repeating: 7, count: 65536), mask: nil, into: &out)
        #expect(Array(out.prefix(10)) == [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0] && out.count == 10 + 65536)
        out.removeAll()
        ClientFrame.write(0x9, [], fin: true, rsv: 0b100, mask: nil, length: .sixteen, into: &out)
        #expect(out == [0xC9, 0x7E, 0x00, 0x00])
    }
}

extension Opcode {
    static let allControl: [Opcode] = [.close, .ping, .pong]
}
