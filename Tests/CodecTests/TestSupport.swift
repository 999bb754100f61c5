import SwitchboardCodec
import Testing

/// Test frames: masked with a fixed key unless told otherwise.
extension ClientFrame {
    static let defaultMask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]

    static func build(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0,
                      mask: [UInt8]? = defaultMask, length: LengthForm = .minimal) -> [UInt8] {
        var out: [UInt8] = []
        write(opcode, payload, fin: fin, rsv: rsv, mask: mask, length: length, into: &out)
        return out
    }

    static func text(_ s: String, fin: Bool = true, mask: [UInt8]? = defaultMask) -> [UInt8] {
        build(0x1, Array(s.utf8), fin: fin, mask: mask)
    }
    static func binary(_ b: [UInt8], fin: Bool = true) -> [UInt8] { build(0x2, b, fin: fin) }
    static func continuation(_ b: [UInt8], fin: Bool = true) -> [UInt8] { build(0x0, b, fin: fin) }
    static func ping(_ b: [UInt8] = []) -> [UInt8] { build(0x9, b) }
    static func pong(_ b: [UInt8] = []) -> [UInt8] { build(0xA, b) }
    static func close(_ code: UInt16?, _ reason: [UInt8] = []) -> [UInt8] {
        guard let code else { return build(0x8, []) }
        return build(0x8, [UInt8(code >> 8), UInt8(code & 0xFF)] + reason)
    }
}

/// Feeds `chunks` in order, draining after each, and returns every event.
func decode(_ chunks: [[UInt8]], maxMessageBytes: Int = 1 << 20, allowsRSV1: Bool = false) -> [FrameEvent] {
    var decoder = FrameDecoder(maxMessageBytes: maxMessageBytes, allowsRSV1: allowsRSV1)
    var events: [FrameEvent] = []
    for chunk in chunks {
        chunk.withUnsafeBytes { decoder.feed($0) }
        while let event = decoder.next() { events.append(event) }
    }
    return events
}

func decode(_ bytes: [UInt8], maxMessageBytes: Int = 1 << 20, allowsRSV1: Bool = false) -> [FrameEvent] {
    decode([bytes], maxMessageBytes: maxMessageBytes, allowsRSV1: allowsRSV1)
}

func byteAtATime(_ bytes: [UInt8]) -> [[UInt8]] { bytes.map { [$0] } }

/// Every way of cutting `bytes` in two (including empty halves).
func twoWaySplits(_ bytes: [UInt8]) -> [[[UInt8]]] {
    (0...bytes.count).map { [Array(bytes[..<$0]), Array(bytes[$0...])] }
}

/// What `run` makes of `stream` fed whole, returned after expecting the same of it fed byte at
/// a time and cut in two at every point: a decoder must not depend on how reads cut its input.
/// A disagreement is reported at `sourceLocation`, the test that asked.
func agreeingOnEverySplit<Event: Equatable>(_ stream: [UInt8], sourceLocation: SourceLocation,
                                            _ run: ([[UInt8]]) -> [Event]) -> [Event] {
    let whole = run([stream])
    #expect(run(byteAtATime(stream)) == whole, "byte at a time", sourceLocation: sourceLocation)
    for split in twoWaySplits(stream) {
        #expect(run(split) == whole, "split at \(split[0].count)", sourceLocation: sourceLocation)
    }
    return whole
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Runs the parser over `chunks`; returns the last result and the total bytes it consumed.
func parse(_ chunks: [[UInt8]], maxHeaderBytes: Int = 16384, maxHeaderCount: Int = 100) -> (HTTPParseResult, Int) {
    var parser = HTTPRequestParser(maxHeaderBytes: maxHeaderBytes, maxHeaderCount: maxHeaderCount)
    var consumedBefore = 0
    var last = HTTPParseResult.needMore
    for chunk in chunks {
        last = chunk.withUnsafeBytes { parser.feed($0) }
        switch last {
        case .needMore: consumedBefore += chunk.count
        case .complete(_, let consumed): return (last, consumedBefore + consumed)
        case .failed: return (last, consumedBefore)
        }
    }
    return (last, consumedBefore)
}
