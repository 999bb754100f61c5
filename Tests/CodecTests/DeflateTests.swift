import CZlib
import TestSupport
import Testing
@testable import SwitchboardCodec

/// The client's side of a connection: the same parameters with the roles swapped, so that its
/// `deflate` compresses like the client and its `inflate` decompresses what the server sent.
func clientSide(of parameters: DeflateParameters) -> PerMessageDeflate {
    PerMessageDeflate(parameters: DeflateParameters(
        serverNoContextTakeover: parameters.clientNoContextTakeover,
        clientNoContextTakeover: parameters.serverNoContextTakeover,
        serverMaxWindowBits: parameters.clientMaxWindowBits,
        clientMaxWindowBits: parameters.serverMaxWindowBits,
        compressionLevel: parameters.compressionLevel, memoryLevel: parameters.memoryLevel))
}

/// Text-like bytes that compress well.
func sampleText(_ count: Int, seed: Int = 0) -> [UInt8] {
    let words = ["channel", "message", "\"event\":", "{\"data\":", "lobby", "hello", "world", "\u{00e9}t\u{00e9}", "42,", " "]
    var out: [UInt8] = []
    out.reserveCapacity(count + 16)
    var index = seed
    while out.count < count {
        out.append(contentsOf: words[(index &* 7 &+ index / 3) % words.count].utf8)
        index += 1
    }
    return Array(out.prefix(count))
}

/// Bytes that do not compress.
func sampleRandom(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededRandom(seed: seed)
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

/// `PythonFixtures.window10Compressed`'s plain text: 2000 bytes repeating every 700.
func window10Message() -> [UInt8] {
    let block = (0..<700).map { (i: Int) -> UInt8 in
        let value: Int = (i * i * 31 + i * 7 + 3) % 95
        return UInt8(32 + value)
    }
    return Array((block + block + block).prefix(2000))
}

extension InflateResult {
    var bytes: [UInt8]? {
        if case .ok(let bytes) = self { return bytes }
        return nil
    }
}

@Suite struct DeflateTests {
    static let keepBoth = DeflateParameters()
    static let keepNone = DeflateParameters(serverNoContextTakeover: true, clientNoContextTakeover: true)

    // MARK: - RFC 7692 section 7.2.3 examples

    @Test func rfcExamplesInflate() {
        let hello = Array("Hello".utf8)
        let examples: [[UInt8]] = [
            [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00],                                   // 7.2.3.1
            [0x00, 0x05, 0x00, 0xFA, 0xFF, 0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x00],           // 7.2.3.3 stored
            [0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00],                             // 7.2.3.4 BFINAL
            [0xF2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xCA, 0xC9, 0xC9, 0x07, 0x00], // 7.2.3.5 two blocks
        ]
        for example in examples {
            var codec = PerMessageDeflate(parameters: Self.keepBoth)
            #expect(codec.inflate(example, maxOutput: 100) == .ok(hello), "\(example)")
            // The context survives (or, after BFINAL, restarts) cleanly for a next message.
            #expect(codec.inflate([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00], maxOutput: 100) == .ok(hello))
        }
        var empty = PerMessageDeflate(parameters: Self.keepBoth)
        #expect(empty.inflate([0x00], maxOutput: 0) == .ok([]))                       // 7.2.3.6
    }

    @Test func rfcSharedWindowExample() {
        var codec = PerMessageDeflate(parameters: Self.keepBoth)
        #expect(codec.inflate([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00], maxOutput: 5) == .ok(Array("Hello".utf8)))
        #expect(codec.inflate([0xF2, 0x00, 0x11, 0x00, 0x00], maxOutput: 5) == .ok(Array("Hello".utf8)))
        // Without the first message's window the second one refers to nothing.
        var fresh = PerMessageDeflate(parameters: Self.keepBoth)
        #expect(fresh.inflate([0xF2, 0x00, 0x11, 0x00, 0x00], maxOutput: 5) == .invalid)
    }

    @Test func deflateProducesTheRFCBytes() {
        var codec = PerMessageDeflate(parameters: Self.keepBoth)
        #expect(codec.deflate(Array("Hello".utf8)) == [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
        #expect(codec.deflate(Array("Hello".utf8)) == [0xF2, 0x00, 0x11, 0x00, 0x00])
        #expect(codec.deflate([UInt8]()) == [0x00])
        var noContext = PerMessageDeflate(parameters: Self.keepNone)
        #expect(noContext.deflate(Array("Hello".utf8)) == [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
        #expect(noContext.deflate(Array("Hello".utf8)) == [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
    }

    // MARK: - Round trips

    static let sizes = [0, 1, 5, 125, 126, 1000, 16_384, 65_535, 65_536, 262_144]

    @Test(arguments: [keepBoth, keepNone,
                      DeflateParameters(serverNoContextTakeover: true),
                      DeflateParameters(clientNoContextTakeover: true),
                      DeflateParameters(serverMaxWindowBits: 9, clientMaxWindowBits: 10),
                      DeflateParameters(serverMaxWindowBits: 8, clientMaxWindowBits: 8, compressionLevel: 1, memoryLevel: 1)])
    func roundTripsBothWays(_ parameters: DeflateParameters) {
        var server = PerMessageDeflate(parameters: parameters)
        var client = clientSide(of: parameters)
        for (index, size) in Self.sizes.enumerated() {
            for message in [sampleText(size, seed: index), sampleRandom(size, seed: UInt64(index))] {
                let down = server.deflate(message)
                #expect(client.inflate(down, maxOutput: size) == .ok(message), "server -> client, \(size) bytes")
                let up = client.deflate(message)
                #expect(server.inflate(up, maxOutput: size) == .ok(message), "client -> server, \(size) bytes")
            }
        }
    }

    @Test func contextTakeoverShrinksRepeatedMessages() {
        let message = sampleRandom(2000, seed: 3)
        var keeping = PerMessageDeflate(parameters: Self.keepBoth)
        let first = keeping.deflate(message)
        let second = keeping.deflate(message)
        #expect(second.count < 40 && second.count < first.count / 10, "\(first.count) then \(second.count)")
        var receiver = clientSide(of: Self.keepBoth)
        #expect(receiver.inflate(first, maxOutput: 2000) == .ok(message))
        #expect(receiver.inflate(second, maxOutput: 2000) == .ok(message))

        var resetting = PerMessageDeflate(parameters: Self.keepNone)
        let again = resetting.deflate(message)
        #expect(resetting.deflate(message) == again)
        #expect(again == first)
    }

    @Test func clientNoContextTakeoverForgetsTheWindow() {
        // With client_no_context_takeover the server may not rely on the previous message.
        var client = PerMessageDeflate(parameters: Self.keepBoth)   // compresses with context
        let first = client.deflate(Array("Hello".utf8))
        let second = client.deflate(Array("Hello".utf8))
        var server = PerMessageDeflate(parameters: DeflateParameters(clientNoContextTakeover: true))
        #expect(server.inflate(first, maxOutput: 10) == .ok(Array("Hello".utf8)))
        #expect(server.inflate(second, maxOutput: 10) == .invalid)
    }

    @Test func manyMessagesWithContextInBothDirections() {
        var server = PerMessageDeflate(parameters: Self.keepBoth)
        var client = clientSide(of: Self.keepBoth)
        for index in 0..<300 {
            let message = sampleText(50 + index * 13 % 700, seed: index)
            #expect(client.inflate(server.deflate(message), maxOutput: 1000).bytes == message)
            #expect(server.inflate(client.deflate(message), maxOutput: 1000).bytes == message)
        }
    }

    /// Every negotiable window: the server's output fits a receiver whose window is exactly
    /// that size (8 included, though zlib compresses it with 9), across messages with context.
    @Test(arguments: 8...15)
    func outputFitsTheNegotiatedWindow(_ bits: Int) {
        var server = PerMessageDeflate(parameters: DeflateParameters(serverMaxWindowBits: bits))
        var strict = StrictInflater(windowBits: bits)
        var once: [([UInt8], [UInt8])] = []
        for index in 0..<6 {
            // Repeats at distances around the window size, in one message and across messages.
            let period = (1 << bits) - 8 + index * 5
            let block = sampleRandom(period, seed: UInt64(bits * 100 + index))
            let message = block + block + Array(block.prefix(300))
            let compressed = server.deflate(message)
            #expect(strict.inflate(compressed) == message, "\(bits) bits, message \(index)")
            once.append((message, PerMessageDeflate.deflateOnce(message, windowBits: bits)))
        }
        for (index, (message, compressed)) in once.enumerated() {
            var fresh = StrictInflater(windowBits: bits)
            #expect(fresh.inflate(compressed) == message, "deflateOnce \(bits) bits, message \(index)")
        }
    }

    // MARK: - Interoperability (fixtures from Python's zlib and websockets)

    @Test func inflatesPythonZlibStreamWithContext() {
        var server = PerMessageDeflate(parameters: Self.keepBoth)
        #expect(server.inflate(PythonFixtures.compressed1, maxOutput: 1 << 20) == .ok(PythonFixtures.message1))
        #expect(server.inflate(PythonFixtures.compressed2, maxOutput: 1 << 20) == .ok(PythonFixtures.message2))
        #expect(server.inflate(PythonFixtures.compressed3, maxOutput: 1 << 20) == .ok(PythonFixtures.message3))
        // The second message only makes sense after the first.
        #expect(PythonFixtures.compressed2.count < PythonFixtures.message2.count / 4)
        var fresh = PerMessageDeflate(parameters: Self.keepBoth)
        #expect(fresh.inflate(PythonFixtures.compressed2, maxOutput: 1 << 20) == .invalid)
    }

    @Test func inflatesPythonZlibWindow10() {
        let expected = window10Message()
        var server = PerMessageDeflate(parameters: DeflateParameters(clientMaxWindowBits: 10))
        #expect(server.inflate(PythonFixtures.window10Compressed, maxOutput: expected.count) == .ok(expected))
        #expect(PythonFixtures.window10Compressed.count < 1000)
    }

    // MARK: - Limits

    /// Decompresses to `blocks` MiB of zeros from about a kilobyte per MiB.
    static func zipBomb(mebibytes blocks: Int) -> [UInt8] {
        var client = PerMessageDeflate(parameters: keepBoth)
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        let flush: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]   // what deflate removed from each message
        var bomb = client.deflate(zeros)
        let more = client.deflate(zeros)   // refers only to zeros: repeatable
        for _ in 1..<blocks { bomb += flush + more }
        return bomb
    }

    @Test func zipBombStopsAtTheLimit() throws {
        let bomb = Self.zipBomb(mebibytes: 1024)   // 1 GiB of zeros
        #expect(bomb.count < 2 << 20)
        let maxOutput = 1 << 20
        for parameters in [Self.keepBoth, Self.keepNone] {
            var server = PerMessageDeflate(parameters: parameters)
            #expect(server.inflate(bomb, maxOutput: maxOutput) == .tooBig)
            let outcome = try #require(server.streams.lastInflate)
            // No output buffer beyond the limit, and most of the input never touched.
            #expect(outcome.peakCapacity <= maxOutput + 1)
            #expect(outcome.unconsumedInput > bomb.count * 9 / 10)
            // The codec is usable afterwards (the engine closes anyway).
            #expect(server.inflate([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00], maxOutput: 5) == .ok(Array("Hello".utf8)))
        }
    }

    @Test func smallFrameLargeOutput() throws {
        // About 1 KiB on the wire, 1 MiB inflated, with a 64 KiB limit.
        let bomb = Self.zipBomb(mebibytes: 1)
        #expect(bomb.count < 2048)
        var server = PerMessageDeflate(parameters: Self.keepNone)
        #expect(server.inflateMessage(.binary(bomb), maxOutput: 65_536)
                == .failure(code: WebSocketCloseCode.messageTooBig, reason: "Message too big"))
        let outcome = try #require(server.streams.lastInflate)
        #expect(outcome.peakCapacity <= 65_537)
    }

    @Test(arguments: [0, 1, 511, 512, 513, 4096, 100_000])
    func limitIsExact(_ size: Int) throws {
        let message = sampleText(size, seed: size)
        var client = clientSide(of: Self.keepNone)
        let compressed = client.deflate(message)
        var server = PerMessageDeflate(parameters: Self.keepNone)
        #expect(server.inflate(compressed, maxOutput: size) == .ok(message))
        #expect(try #require(server.streams.lastInflate).peakCapacity <= size + 1)
        if size > 0 {
            #expect(server.inflate(compressed, maxOutput: size - 1) == .tooBig)
        }
    }

    // MARK: - Invalid data

    static let invalidData: [[UInt8]] = [
        [0x06],                                     // BTYPE 11 (reserved)
        [0x07, 0x00],                               // BFINAL, BTYPE 11
        [0xFF, 0xFF, 0xFF, 0xFF],
        [0x00, 0x05, 0x00, 0x00, 0x00, 0x48],       // stored block, NLEN != ~LEN
        [0xF2, 0x00, 0x11, 0x00, 0x00],             // distance before the start of the window
        [0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0xFF],  // after the final block, a reserved block type
        Array("not deflate at all, just text".utf8),
    ]

    @Test(arguments: invalidData)
    func invalidDataIsRejected(_ data: [UInt8]) {
        for parameters in [Self.keepBoth, Self.keepNone] {
            var server = PerMessageDeflate(parameters: parameters)
            #expect(server.inflate(data, maxOutput: 1 << 20) == .invalid)
            #expect(server.inflateMessage(.text(data), maxOutput: 1 << 20)
                    == .failure(code: WebSocketCloseCode.invalidPayload, reason: "Invalid compressed data"))
        }
    }

    @Test func truncatedRandomDataNeverCrashes() {
        var generator = SeededRandom(seed: 77)
        let valid = clientSide(of: Self.keepNone).deflateCopy(sampleText(3000))
        for _ in 0..<500 {
            var data = valid
            let flips = Int.random(in: 1...4, using: &generator)
            for _ in 0..<flips { data[Int.random(in: 0..<data.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator) }
            var server = PerMessageDeflate(parameters: Self.keepNone)
            switch server.inflate(data.prefix(Int.random(in: 0...data.count, using: &generator)), maxOutput: 4000) {
            case .ok(let bytes): #expect(bytes.count <= 4000)
            case .tooBig, .invalid: break
            }
        }
    }

    @Test func inflateMessageValidatesTextAfterInflating() {
        var client = clientSide(of: Self.keepNone)
        let notUTF8 = client.deflate([0x48, 0xC3, 0x28, 0x21])   // valid DEFLATE, invalid UTF-8
        var server = PerMessageDeflate(parameters: Self.keepNone)
        #expect(server.inflateMessage(.text(notUTF8), maxOutput: 100)
                == .failure(code: WebSocketCloseCode.invalidPayload, reason: "Invalid UTF-8"))
        #expect(server.inflateMessage(.binary(notUTF8), maxOutput: 100) == .binary([0x48, 0xC3, 0x28, 0x21]))
        let text = client.deflate(Array("h\u{00e9}llo \u{1F600}".utf8))
        #expect(server.inflateMessage(.text(text), maxOutput: 100) == .text(Array("h\u{00e9}llo \u{1F600}".utf8)))
        #expect(server.inflateMessage(.ping([1]), maxOutput: 100) == .ping([1]))
        #expect(server.inflateMessage(.close(code: 1000, reason: ""), maxOutput: 100) == .close(code: 1000, reason: ""))
    }

    // MARK: - Fan-out

    @Test func deflateOnceMatchesANoContextConnection() {
        let message = sampleText(5000, seed: 9)
        var connection = PerMessageDeflate(parameters: DeflateParameters(serverNoContextTakeover: true, serverMaxWindowBits: 12))
        let shared = PerMessageDeflate.deflateOnce(message, windowBits: 12)
        #expect(connection.deflate(message) == shared)
        #expect(PerMessageDeflate.deflateOnce(message, windowBits: 8) == PerMessageDeflate.deflateOnce(message, windowBits: 9))
    }

    @Test func deflateOnceInflatesOnAContextKeepingReceiver() {
        // A client that keeps its window (server_no_context_takeover not negotiated on its side)
        // decodes a mix of shared payloads and its connection's own no-context payloads.
        var receiver = clientSide(of: Self.keepBoth)
        var connection = PerMessageDeflate(parameters: DeflateParameters(serverNoContextTakeover: true))
        for index in 0..<40 {
            let message = sampleText(100 + index * 37, seed: index % 3)
            let payload = index % 2 == 0 ? PerMessageDeflate.deflateOnce(message, windowBits: 15) : connection.deflate(message)
            #expect(receiver.inflate(payload, maxOutput: 10_000) == .ok(message), "message \(index)")
        }
    }

    @Test func deflateOnceIsThreadSafe() async {
        let messages = (0..<64).map { sampleText(200 + $0 * 31, seed: $0) }
        let results = await withTaskGroup(of: (Int, [UInt8]).self) { group in
            for (index, message) in messages.enumerated() {
                group.addTask { (index, PerMessageDeflate.deflateOnce(message, windowBits: 9 + index % 7)) }
            }
            var out: [(Int, [UInt8])] = []
            for await result in group { out.append(result) }
            return out
        }
        #expect(results.count == messages.count)
        for (index, compressed) in results {
            var receiver = clientSide(of: Self.keepBoth)
            #expect(receiver.inflate(compressed, maxOutput: 10_000) == .ok(messages[index]))
        }
    }

    // MARK: - Lifetime

    @Test func streamsAreFreedWithTheLastCopy() {
        weak var streams: PerMessageDeflate.Streams?
        do {
            var codec = PerMessageDeflate(parameters: Self.keepBoth)
            streams = codec.streams
            _ = codec.deflate(Array("Hello".utf8))
            _ = codec.inflate([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00], maxOutput: 5)
            #expect(codec.streams.inflater != nil && codec.streams.deflater != nil)
            let copy = codec
            #expect(copy.streams === streams)
        }
        #expect(streams == nil)
    }

    @Test func noContextDirectionsHoldNoStream() {
        var codec = PerMessageDeflate(parameters: Self.keepNone)
        _ = codec.deflate(sampleText(1000))
        _ = codec.inflate([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00], maxOutput: 5)
        #expect(codec.streams.inflater == nil && codec.streams.deflater == nil)
    }
}

extension PerMessageDeflate {
    /// `deflate` on a copy (for use on a `let`).
    func deflateCopy(_ message: [UInt8]) -> [UInt8] {
        var copy = self
        return copy.deflate(message)
    }
}

/// A raw-DEFLATE inflater with exactly the given window (8 allowed), producing at most 7 bytes
/// per call, so that every back-reference outside the current call must come from the window.
struct StrictInflater {
    final class Box {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        init(windowBits: Int) {
            stream.initialize(to: z_stream())
            let status = inflateInit2_(stream, -Int32(windowBits), zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            precondition(status == Z_OK)
        }
        deinit {
            inflateEnd(stream)
            stream.deallocate()
        }
    }
    let box: Box

    init(windowBits: Int) { box = Box(windowBits: windowBits) }

    /// The decompressed message, or [] on an error.
    mutating func inflate(_ compressed: [UInt8]) -> [UInt8] {
        let input = compressed + [0x00, 0x00, 0xFF, 0xFF]
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 7)
        let strm = box.stream
        return input.withUnsafeBytes { raw in
            strm.pointee.next_in = UnsafeMutablePointer(mutating: raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
            strm.pointee.avail_in = UInt32(raw.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { buffer in
                    strm.pointee.next_out = buffer.baseAddress
                    strm.pointee.avail_out = UInt32(buffer.count)
                    let status = CZlib.inflate(strm, Z_NO_FLUSH)
                    return (status, buffer.count - Int(strm.pointee.avail_out))
                }
                output += chunk.prefix(produced)
                if status != Z_OK && status != Z_BUF_ERROR { return [] }
                if strm.pointee.avail_in == 0 && produced < chunk.count { return output }
            }
        }
    }
}
