import Testing
@testable import SwitchboardCodec

/// The engine's receive loop with permessage-deflate, exactly as documented for the lead:
/// feed, drain `next()`, and pass each `.text`/`.binary` flagged as compressed through
/// `inflateMessage`. Returns every event the engine would act on.
func receive(_ chunks: [[UInt8]], deflate parameters: DeflateParameters, maxMessageBytes: Int = 1 << 20) -> [FrameEvent] {
    var decoder = FrameDecoder(maxMessageBytes: maxMessageBytes, allowsRSV1: true)
    decoder.maxCompressedMessageBytes = PerMessageDeflate.compressedLimit(forMessageLimit: maxMessageBytes)
    var deflate = PerMessageDeflate(parameters: parameters)
    var events: [FrameEvent] = []
    for chunk in chunks {
        chunk.withUnsafeBytes { decoder.feed($0) }
        while var event = decoder.next() {
            if decoder.lastMessageWasCompressed {
                event = deflate.inflateMessage(event, maxOutput: maxMessageBytes)
            }
            events.append(event)
            if case .failure = event { return events }
            if case .close = event { return events }
        }
    }
    return events
}

@Suite struct DeflateDecoderTests {
    static let keepBoth = DeflateParameters()
    static let rsv1: UInt8 = 4   // `ClientFrame.build` shifts `rsv` by 4: 4 -> 0x40

    /// `receive` whole, byte at a time, and at every split point; all must agree.
    func receiveEverySplit(_ stream: [UInt8], _ parameters: DeflateParameters = keepBoth, maxMessageBytes: Int = 1 << 20,
                           sourceLocation: SourceLocation = #_sourceLocation) -> [FrameEvent] {
        agreeingOnEverySplit(stream, sourceLocation: sourceLocation) { receive($0, deflate: parameters, maxMessageBytes: maxMessageBytes) }
    }

    @Test func websocketsClientFrames() {
        let events = receiveEverySplit(PythonFixtures.websocketsFrames)
        #expect(events == [
            .text(PythonFixtures.message1),
            .text(PythonFixtures.message2),
            .ping(Array("mid".utf8)),
            .text(Array(PythonFixtures.fragmentedText.utf8)),
            .binary((0..<4).flatMap { _ in (0...255).map { UInt8($0) } }),
        ])
    }

    @Test func fragmentedCompressedMessageSetsRSV1OnlyOnTheFirstFrame() {
        let message = sampleText(3000, seed: 5)
        var client = clientSide(of: Self.keepBoth)
        let compressed = client.deflate(message)
        let cut1 = compressed.count / 3
        let cut2 = 2 * compressed.count / 3
        let stream = ClientFrame.build(0x1, Array(compressed[..<cut1]), fin: false, rsv: Self.rsv1)
            + ClientFrame.ping([7])
            + ClientFrame.build(0x0, Array(compressed[cut1..<cut2]), fin: false)
            + ClientFrame.build(0x0, [], fin: false)
            + ClientFrame.build(0x0, Array(compressed[cut2...]))
            + ClientFrame.text("plain")        // RSV1 clear: not compressed, even with the extension
        #expect(receiveEverySplit(stream) == [.ping([7]), .text(message), .text(Array("plain".utf8))])

        var decoder = FrameDecoder(maxMessageBytes: 1 << 20, allowsRSV1: true)
        stream.withUnsafeBytes { decoder.feed($0) }
        #expect(decoder.next() == .ping([7]))
        #expect(decoder.next() == .text(compressed))   // delivered compressed, not UTF-8 checked
        #expect(decoder.lastMessageWasCompressed)
        #expect(decoder.next() == .text(Array("plain".utf8)))
        #expect(!decoder.lastMessageWasCompressed)
    }

    @Test func rsv1OnAContinuationFrameIsAProtocolError() {
        let stream = ClientFrame.build(0x1, [0xF2, 0x48], fin: false, rsv: Self.rsv1)
            + ClientFrame.build(0x0, [0xCD, 0xC9, 0xC9, 0x07, 0x00], rsv: Self.rsv1)
        #expect(receive([stream], deflate: Self.keepBoth).last?.failureCode == WebSocketCloseCode.protocolError)
    }

    @Test func contextCarriesAcrossMessagesWithControlFramesBetween() {
        var client = clientSide(of: Self.keepBoth)
        var stream: [UInt8] = []
        var expected: [FrameEvent] = []
        for index in 0..<5 {
            let message = sampleText(400, seed: index % 2)
            stream += ClientFrame.build(index % 2 == 0 ? 0x1 : 0x2, client.deflate(message), rsv: Self.rsv1)
            stream += ClientFrame.pong([UInt8(index)])
            expected.append(index % 2 == 0 ? .text(message) : .binary(message))
            expected.append(.pong([UInt8(index)]))
        }
        #expect(receive([stream], deflate: Self.keepBoth) == expected)
        #expect(receive(byteAtATime(stream), deflate: Self.keepBoth) == expected)
    }

    @Test func compressedTextIsValidatedAfterInflating() {
        var client = clientSide(of: Self.keepBoth)
        let stream = ClientFrame.build(0x1, client.deflate([0xED, 0xA0, 0x80]), rsv: Self.rsv1)   // a surrogate
        #expect(receiveEverySplit(stream) == [.failure(code: WebSocketCloseCode.invalidPayload, reason: "Invalid UTF-8")])
    }

    @Test func invalidCompressedDataCloses1007() {
        let stream = ClientFrame.build(0x2, [0x06, 0x00, 0x00], rsv: Self.rsv1)
        #expect(receive([stream], deflate: Self.keepBoth)
                == [.failure(code: WebSocketCloseCode.invalidPayload, reason: "Invalid compressed data")])
    }

    @Test func bombInAFrameCloses1009() {
        let bomb = DeflateTests.zipBomb(mebibytes: 4)
        let stream = ClientFrame.build(0x2, bomb, rsv: Self.rsv1) + ClientFrame.text("never seen")
        #expect(receive([stream], deflate: Self.keepBoth, maxMessageBytes: 1 << 20)
                == [.failure(code: WebSocketCloseCode.messageTooBig, reason: "Message too big")])
    }

    @Test func inflatedSizeLimitIsTheMessageLimit() {
        var client = clientSide(of: Self.keepBoth)
        let message = sampleText(1000)
        let compressed = client.deflate(message)
        #expect(compressed.count < 500)
        let frame = ClientFrame.build(0x1, compressed, rsv: Self.rsv1)
        #expect(receive([frame], deflate: Self.keepBoth, maxMessageBytes: 1000) == [.text(message)])
        var again = clientSide(of: Self.keepBoth)
        let frame2 = ClientFrame.build(0x1, again.deflate(message), rsv: Self.rsv1)
        #expect(receive([frame2], deflate: Self.keepBoth, maxMessageBytes: 999).last?.failureCode == WebSocketCloseCode.messageTooBig)
    }

    @Test func compressedSizeHasItsOwnLimit() {
        // Incompressible data grows a little when compressed: a message at the limit still fits.
        let limit = 4000
        let message = sampleRandom(limit, seed: 11)
        var client = clientSide(of: Self.keepBoth)
        let compressed = client.deflate(message)
        #expect(compressed.count > limit)
        let frame = ClientFrame.build(0x2, compressed, rsv: Self.rsv1)
        #expect(receive([frame], deflate: Self.keepBoth, maxMessageBytes: limit) == [.binary(message)])

        // The decoder applies maxCompressedMessageBytes to RSV1 messages, over all fragments ...
        var decoder = FrameDecoder(maxMessageBytes: 100, allowsRSV1: true)
        decoder.maxCompressedMessageBytes = 150
        (ClientFrame.build(0x2, [UInt8](repeating: 0, count: 100), fin: false, rsv: Self.rsv1)
            + ClientFrame.build(0x0, [UInt8](repeating: 0, count: 50))).withUnsafeBytes { decoder.feed($0) }
        #expect(decoder.next() == .binary([UInt8](repeating: 0, count: 150)))
        (ClientFrame.build(0x2, [UInt8](repeating: 0, count: 100), fin: false, rsv: Self.rsv1)
            + ClientFrame.build(0x0, [UInt8](repeating: 0, count: 51))).withUnsafeBytes { decoder.feed($0) }
        #expect(decoder.next()?.failureCode == WebSocketCloseCode.messageTooBig)
        // ... and maxMessageBytes to the others.
        var plain = FrameDecoder(maxMessageBytes: 100, allowsRSV1: true)
        plain.maxCompressedMessageBytes = 150
        ClientFrame.build(0x2, [UInt8](repeating: 0, count: 101)).withUnsafeBytes { plain.feed($0) }
        #expect(plain.next()?.failureCode == WebSocketCloseCode.messageTooBig)
        #expect(FrameDecoder(maxMessageBytes: 100).maxCompressedMessageBytes == 100)
    }

    @Test func serverFrameCarriesRSV1() {
        var server = PerMessageDeflate(parameters: Self.keepBoth)
        let payload = server.deflate(Array("Hello".utf8))
        var frame: [UInt8] = []
        FrameEncoder.encode(opcode: .text, payload: payload, rsv1: true, into: &frame)
        #expect(frame == [0xC1, 0x07, 0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
    }
}

extension FrameEvent {
    var failureCode: UInt16? {
        if case .failure(let code, _) = self { return code }
        return nil
    }
}
