import TestSupport
import Testing
import SwitchboardCodec

@Suite struct FrameDecoderTests {
    static let protocolError = WebSocketCloseCode.protocolError

    func failureCode(_ events: [FrameEvent]) -> UInt16? {
        if case .failure(let code, _)? = events.last { return code }
        return nil
    }

    /// Decodes `stream` whole, byte at a time, and at every split point; all must agree.
    func decodeEverySplit(_ stream: [UInt8], maxMessageBytes: Int = 1 << 20, allowsRSV1: Bool = false,
                          sourceLocation: SourceLocation = #_sourceLocation) -> [FrameEvent] {
        agreeingOnEverySplit(stream, sourceLocation: sourceLocation) { decode($0, maxMessageBytes: maxMessageBytes, allowsRSV1: allowsRSV1) }
    }

    // MARK: - Data frames

    @Test func maskedTextOfRFC6455Example() {
        #expect(decode([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]) == [.text(bytes("Hello"))])
    }

    @Test(arguments: [0, 1, 7, 8, 9, 15, 16, 17, 125, 126, 127, 65535, 65536, 70_000])
    func lengthEncodings(_ count: Int) {
        let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let frame = ClientFrame.binary(payload)
        #expect(frame.count == count + 6 + (count > 125 ? 2 : 0) + (count > 0xFFFF ? 6 : 0))
        #expect(decode(frame) == [.binary(payload)])
        #expect(decode(byteAtATime(frame)) == [.binary(payload)])
    }

    @Test(arguments: [ClientFrame.LengthForm.sixteen, .sixtyFour])
    func nonMinimalLengthsAreAccepted(_ form: ClientFrame.LengthForm) {
        let frame = ClientFrame.build(0x1, bytes("Hello"), length: form)
        #expect(decodeEverySplit(frame) == [.text(bytes("Hello"))])
    }

    @Test func masksWithEveryPhaseAndKey() {
        for mask: [UInt8] in [[0, 0, 0, 0], [0xFF, 0xFF, 0xFF, 0xFF], [1, 2, 3, 4], [0x80, 0x00, 0x7F, 0xAA]] {
            for count in 0...40 {
                let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 * 13 + 5) }
                let frame = ClientFrame.build(0x2, payload, mask: mask)
                #expect(decodeEverySplit(frame) == [.binary(payload)], "mask \(mask) count \(count)")
            }
        }
    }

    @Test func emptyMessages() {
        #expect(decodeEverySplit(ClientFrame.text("")) == [.text([])])
        #expect(decodeEverySplit(ClientFrame.binary([])) == [.binary([])])
        let fragments = ClientFrame.text("", fin: false) + ClientFrame.continuation([], fin: false) + ClientFrame.continuation([])
        #expect(decodeEverySplit(fragments) == [.text([])])
    }

    @Test func fragmentedMessageWithInterleavedControlFrames() {
        let stream = ClientFrame.text("Hel", fin: false) + ClientFrame.ping(bytes("p1"))
            + ClientFrame.continuation(bytes("lo, "), fin: false) + ClientFrame.pong(bytes("p2"))
            + ClientFrame.continuation(bytes("world"))
            + ClientFrame.binary([1, 2, 3], fin: false) + ClientFrame.continuation([4, 5])
        #expect(decodeEverySplit(stream) == [
            .ping(bytes("p1")), .pong(bytes("p2")), .text(bytes("Hello, world")), .binary([1, 2, 3, 4, 5]),
        ])
    }

    @Test func controlFrameIsDeliveredBeforeTheMessageEnds() {
        var decoder = FrameDecoder(maxMessageBytes: 100)
        (ClientFrame.text("Hel", fin: false) + ClientFrame.ping([9])).withUnsafeBytes { decoder.feed($0) }
        #expect(decoder.next() == .ping([9]))
        #expect(decoder.next() == nil)
        ClientFrame.continuation(bytes("lo")).withUnsafeBytes { decoder.feed($0) }
        #expect(decoder.next() == .text(bytes("Hello")))
        #expect(decoder.next() == nil)
    }

    @Test func mixedStreamAtEverySplit() {
        let big = (0..<300).map { UInt8(truncatingIfNeeded: $0) }
        let stream = ClientFrame.text("κόσμε", fin: false) + ClientFrame.continuation(bytes(" ok"))
            + ClientFrame.binary(big) + ClientFrame.ping() + ClientFrame.text("€")
            + ClientFrame.close(1000, bytes("bye"))
        #expect(decodeEverySplit(stream) == [
            .text(bytes("κόσμε ok")), .binary(big), .ping([]), .text(bytes("€")), .close(code: 1000, reason: "bye"),
        ])
    }

    @Test func partiallyDrainedQueueKeepsOrder() {
        var decoder = FrameDecoder(maxMessageBytes: 100)
        (ClientFrame.text("a") + ClientFrame.text("b")).withUnsafeBytes { decoder.feed($0) }
        #expect(decoder.next() == .text(bytes("a")))
        (ClientFrame.text("c")).withUnsafeBytes { decoder.feed($0) }
        #expect(decoder.next() == .text(bytes("b")))
        #expect(decoder.next() == .text(bytes("c")))
        #expect(decoder.next() == nil)
    }

    @Test func randomStreamsAtRandomSplits() {
        var random = SeededRandom(seed: 0xC0DEC)
        for _ in 0..<200 {
            var stream: [UInt8] = []
            var expected: [FrameEvent] = []
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let isText = Bool.random(using: &random)
                let count = [0, 3, 50, 125, 126, 200, 70_000].randomElement(using: &random)!
                let payload: [UInt8] = isText
                    ? (0..<count).map { _ in UInt8.random(in: 0x20...0x7E, using: &random) }
                    : (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
                var cuts = (0..<Int.random(in: 0...3, using: &random)).map { _ in Int.random(in: 0...count, using: &random) }
                cuts.sort()
                let bounds = [0] + cuts + [count]
                for index in 0..<(bounds.count - 1) {
                    let piece = Array(payload[bounds[index]..<bounds[index + 1]])
                    let fin = index == bounds.count - 2
                    let mask = (0..<4).map { _ in UInt8.random(in: 0...255, using: &random) }
                    stream += ClientFrame.build(index == 0 ? (isText ? 0x1 : 0x2) : 0x0, piece, fin: fin, mask: mask)
                    if fin { expected.append(isText ? .text(payload) : .binary(payload)) }
                    if Int.random(in: 0..<4, using: &random) == 0 {
                        stream += ClientFrame.ping([UInt8(index)])
                        expected.append(.ping([UInt8(index)]))
                    }
                }
            }
            var chunks: [[UInt8]] = []
            var start = 0
            while start < stream.count {
                let size = [1, 2, 3, 7, 100, 5000, 100_000].randomElement(using: &random)!
                chunks.append(Array(stream[start..<min(stream.count, start + size)]))
                start += size
            }
            let decoded = decode(chunks)
            #expect(decoded.count == expected.count && decoded == expected, "stream of \(stream.count) bytes")
        }
    }

    // MARK: - Protocol errors (1002)

    @Test func unmaskedFrameIs1002() {
        let events = decodeEverySplit(ClientFrame.text("Hello", mask: nil))
        #expect(events == [.failure(code: 1002, reason: "Unmasked client frame")])
    }

    @Test(arguments: [UInt8(1), 2, 4, 3, 7])
    func reservedBitsAre1002(_ rsv: UInt8) {
        #expect(failureCode(decodeEverySplit(ClientFrame.build(0x1, bytes("x"), rsv: rsv))) == Self.protocolError)
    }

    @Test func rsv1HookForPerMessageDeflate() {
        var decoder = FrameDecoder(maxMessageBytes: 100, allowsRSV1: true)
        let compressed: [UInt8] = [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]  // not UTF-8, must not be checked
        (ClientFrame.build(0x1, compressed, fin: false, rsv: 4) + ClientFrame.continuation([0x00])).withUnsafeBytes { decoder.feed($0) }
        #expect(decoder.next() == .text(compressed + [0x00]))
        #expect(decoder.lastMessageWasCompressed)
        ClientFrame.text("plain").withUnsafeBytes { decoder.feed($0) }
        #expect(decoder.next() == .text(bytes("plain")))
        #expect(!decoder.lastMessageWasCompressed)
        // RSV1 stays illegal on continuation and control frames, RSV2/RSV3 stay illegal everywhere.
        let bad: [[UInt8]] = [
            ClientFrame.text("a", fin: false) + ClientFrame.build(0x0, bytes("b"), rsv: 4),
            ClientFrame.build(0x9, [], rsv: 4),
            ClientFrame.build(0x1, bytes("a"), rsv: 2),
            ClientFrame.build(0x1, bytes("a"), rsv: 6),
        ]
        for stream in bad {
            #expect(failureCode(decode(stream, allowsRSV1: true)) == Self.protocolError)
        }
    }

    @Test(arguments: [UInt8(3), 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    func reservedOpcodesAre1002(_ opcode: UInt8) {
        #expect(decodeEverySplit(ClientFrame.build(opcode, [])) == [.failure(code: 1002, reason: "Reserved opcode")])
    }

    @Test func controlFrameRules() {
        // 126-byte control payloads: refused from the length byte, before the payload arrives.
        for opcode: UInt8 in [0x8, 0x9, 0xA] {
            let frame = ClientFrame.build(opcode, [UInt8](repeating: 0x61, count: 126))
            #expect(decode(Array(frame.prefix(2))) == [.failure(code: 1002, reason: "Control frame too large")])
            #expect(failureCode(decodeEverySplit(frame)) == Self.protocolError)
        }
        #expect(decodeEverySplit(ClientFrame.ping([UInt8](repeating: 1, count: 125))) == [.ping([UInt8](repeating: 1, count: 125))])
        #expect(decodeEverySplit(ClientFrame.build(0x9, [1], fin: false)) == [.failure(code: 1002, reason: "Fragmented control frame")])
    }

    @Test func fragmentationRules() {
        #expect(decodeEverySplit(ClientFrame.continuation(bytes("x"))) ==
            [.failure(code: 1002, reason: "Unexpected continuation frame")])
        #expect(decodeEverySplit(ClientFrame.text("a", fin: false) + ClientFrame.text("b")) ==
            [.failure(code: 1002, reason: "Expected continuation frame")])
        #expect(decodeEverySplit(ClientFrame.text("a", fin: false) + ClientFrame.binary([1])) ==
            [.failure(code: 1002, reason: "Expected continuation frame")])
        // A finished message leaves no message open.
        #expect(decodeEverySplit(ClientFrame.text("a") + ClientFrame.continuation(bytes("b"))) ==
            [.text(bytes("a")), .failure(code: 1002, reason: "Unexpected continuation frame")])
    }

    @Test func sixtyFourBitLengthWithTopBitSetIs1002() {
        let header: [UInt8] = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1]
        #expect(decodeEverySplit(header) == [.failure(code: 1002, reason: "Invalid payload length")])
    }

    // MARK: - Size limit (1009)

    @Test func oversizedMessageIsRefusedFromTheHeaderAlone() {
        // Only the header of a 1 TiB frame: no payload, and not even the mask key, has arrived.
        let header: [UInt8] = [0x82, 0xFF, 0, 0, 0x01, 0, 0, 0, 0, 0]
        #expect(decodeEverySplit(header, maxMessageBytes: 131_072) == [.failure(code: 1009, reason: "Message too big")])
        let withMask = header + [1, 2, 3, 4]
        #expect(decodeEverySplit(withMask, maxMessageBytes: 131_072) == [.failure(code: 1009, reason: "Message too big")])
        // 16-bit form, one byte over the limit.
        let frame = ClientFrame.binary([UInt8](repeating: 0, count: 1001))
        #expect(decode(Array(frame.prefix(8)), maxMessageBytes: 1000) == [.failure(code: 1009, reason: "Message too big")])
    }

    @Test func sizeLimitIsExactAndCumulative() {
        let limit = 10
        #expect(decodeEverySplit(ClientFrame.binary([UInt8](repeating: 7, count: 10)), maxMessageBytes: limit) ==
            [.binary([UInt8](repeating: 7, count: 10))])
        #expect(decodeEverySplit(ClientFrame.binary([UInt8](repeating: 7, count: 11)), maxMessageBytes: limit) ==
            [.failure(code: 1009, reason: "Message too big")])
        let exact = ClientFrame.text("12345", fin: false) + ClientFrame.continuation(bytes("67890"))
        #expect(decodeEverySplit(exact, maxMessageBytes: limit) == [.text(bytes("1234567890"))])
        let over = ClientFrame.text("123456", fin: false) + ClientFrame.ping() + ClientFrame.continuation(bytes("7890!"))
        #expect(decodeEverySplit(over, maxMessageBytes: limit) == [.ping([]), .failure(code: 1009, reason: "Message too big")])
        // The limit is per message: two messages of the limit each are fine.
        let two = ClientFrame.text("1234567890") + ClientFrame.text("abcdefghij")
        #expect(decodeEverySplit(two, maxMessageBytes: limit) == [.text(bytes("1234567890")), .text(bytes("abcdefghij"))])
        // Control frames do not count against it.
        #expect(decode(ClientFrame.ping([UInt8](repeating: 1, count: 20)), maxMessageBytes: limit) == [.ping([UInt8](repeating: 1, count: 20))])
    }

    // MARK: - UTF-8 (1007)

    @Test func invalidTextIs1007() {
        #expect(decodeEverySplit(ClientFrame.build(0x1, [0x61, 0xC0, 0xAF])) == [.failure(code: 1007, reason: "Invalid UTF-8")])
        #expect(decodeEverySplit(ClientFrame.build(0x1, [0xED, 0xA0, 0x80])) == [.failure(code: 1007, reason: "Invalid UTF-8")])
        #expect(decodeEverySplit(ClientFrame.build(0x2, [0xED, 0xA0, 0x80])) == [.binary([0xED, 0xA0, 0x80])])
    }

    @Test func sequenceSplitAcrossFragmentsIsFine() {
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        for cut in 1..<3 {
            let stream = ClientFrame.build(0x1, Array(euro[..<cut]), fin: false) + ClientFrame.continuation(Array(euro[cut...]))
            #expect(decodeEverySplit(stream) == [.text(euro)])
        }
    }

    @Test func messageEndingMidSequenceIs1007() {
        #expect(decodeEverySplit(ClientFrame.build(0x1, [0x61, 0xE2, 0x82])) == [.failure(code: 1007, reason: "Invalid UTF-8")])
        let fragments = ClientFrame.build(0x1, [0xE2], fin: false) + ClientFrame.continuation([0x82])
        #expect(decodeEverySplit(fragments) == [.failure(code: 1007, reason: "Invalid UTF-8")])
    }

    @Test func invalidTextFailsFastBeforeTheMessageEnds() {
        // First fragment holds an invalid byte; the message is still open but already refused.
        let first = ClientFrame.build(0x1, bytes("ok") + [0xFF] + bytes("more"), fin: false)
        #expect(decode(first) == [.failure(code: 1007, reason: "Invalid UTF-8")])
        // Within one frame: only part of the payload has arrived.
        let frame = ClientFrame.build(0x1, bytes("abc") + [0xC0] + [UInt8](repeating: 0x61, count: 500))
        #expect(decode(Array(frame.prefix(8 + 4))) == [.failure(code: 1007, reason: "Invalid UTF-8")])
    }

    // MARK: - Close frames

    @Test func closeFrames() {
        #expect(decodeEverySplit(ClientFrame.close(nil)) == [.close(code: nil, reason: "")])
        #expect(decodeEverySplit(ClientFrame.close(1000)) == [.close(code: 1000, reason: "")])
        #expect(decodeEverySplit(ClientFrame.close(1001, bytes("going ✓"))) == [.close(code: 1001, reason: "going ✓")])
        #expect(decodeEverySplit(ClientFrame.build(0x8, [0x03])) == [.failure(code: 1002, reason: "Invalid close frame")])
        #expect(decodeEverySplit(ClientFrame.close(1000, [0x61, 0xFF])) ==
            [.failure(code: 1007, reason: "Invalid UTF-8 in close reason")])
        #expect(decodeEverySplit(ClientFrame.close(1000, [0xE2, 0x82])) ==
            [.failure(code: 1007, reason: "Invalid UTF-8 in close reason")])
    }

    @Test(arguments: [UInt16(1000), 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999])
    func validCloseCodes(_ code: UInt16) {
        #expect(decode(ClientFrame.close(code, bytes("r"))) == [.close(code: code, reason: "r")])
    }

    @Test(arguments: [UInt16(0), 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
    func invalidCloseCodesAre1002(_ code: UInt16) {
        #expect(decode(ClientFrame.close(code)) == [.failure(code: 1002, reason: "Invalid close code")])
    }

    @Test func closeDuringFragmentedMessage() {
        let stream = ClientFrame.text("partial", fin: false) + ClientFrame.close(1000) + ClientFrame.continuation(bytes("!"))
        #expect(decodeEverySplit(stream) == [.close(code: 1000, reason: "")])
    }

    // MARK: - Terminal states

    @Test func nothingFollowsCloseOrFailure() {
        var decoder = FrameDecoder(maxMessageBytes: 100)
        (ClientFrame.text("a") + ClientFrame.close(1000) + ClientFrame.text("b")).withUnsafeBytes { decoder.feed($0) }
        ClientFrame.text("c").withUnsafeBytes { decoder.feed($0) }
        #expect(decoder.next() == .text(bytes("a")))
        #expect(decoder.next() == .close(code: 1000, reason: ""))
        #expect(decoder.next() == nil)
        #expect(decoder.isFinished)

        var failed = FrameDecoder(maxMessageBytes: 100)
        (ClientFrame.text("a", mask: nil) + ClientFrame.text("b")).withUnsafeBytes { failed.feed($0) }
        ClientFrame.text("c").withUnsafeBytes { failed.feed($0) }
        #expect(failed.next() == .failure(code: 1002, reason: "Unmasked client frame"))
        #expect(failed.next() == nil)
        #expect(failed.isFinished)
    }

    @Test func emptyFeedDoesNothing() {
        var decoder = FrameDecoder(maxMessageBytes: 10)
        [UInt8]().withUnsafeBytes { decoder.feed($0) }
        #expect(decoder.next() == nil)
        #expect(!decoder.isFinished)
    }
}
