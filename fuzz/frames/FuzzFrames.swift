// fuzz/frames: FrameDecoder (server role) fed client bytes in chunks, drained after every feed.
//
// Input: two seed bytes, then the byte stream. Seed bits 0-2: chunking (see `SplitPlan`);
// bits 3-5: maxMessageBytes (0, 1, 2, 16, 125, 126, 1024, 1 MiB); bit 6: allowsRSV1.
//
// Invariants:
// - nothing comes out after `.close` or `.failure`, also when more bytes are fed; `isFinished`
//   is true exactly when one of them came out;
// - failure codes are 1002, 1007 or 1009; close codes are nil or valid on the wire; close
//   reasons are UTF-8 of at most 123 bytes; ping/pong payloads at most 125 bytes;
// - messages are at most maxMessageBytes; uncompressed text is UTF-8; RSV1 only when allowed;
// - the events equal those of an independent whole-buffer reference decoder written from
//   RFC 6455 (failure reasons not compared, only codes), whatever the chunking.
import SwitchboardCodec

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrames(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let (seed, stream) = splitSeed(UnsafeRawBufferPointer(start: data, count: size))
    let maxMessageBytes = [0, 1, 2, 16, 125, 126, 1024, 1 << 20][Int(seed >> 3 & 7)]
    let allowsRSV1 = seed & 0x40 != 0
    var plan = SplitPlan(seed: seed)

    var decoder = FrameDecoder(maxMessageBytes: maxMessageBytes, allowsRSV1: allowsRSV1)
    var events: [Decoded] = []
    var finished = false
    var offset = 0
    func drain() {
        while let event = decoder.next() {
            let compressed = decoder.lastMessageWasCompressed
            require(!finished, "\(event) came out after .close/.failure")
            check(event, compressed: compressed, maxMessageBytes: maxMessageBytes, allowsRSV1: allowsRSV1)
            switch event {
            case .close, .failure: finished = true
            default: break
            }
            events.append(Decoded(event, compressed: compressed))
        }
        require(decoder.isFinished == finished, "isFinished \(decoder.isFinished) after \(events.count) events, finished \(finished)")
    }
    for length in plan.chunks(count: stream.count) {
        decoder.feed(UnsafeRawBufferPointer(rebasing: stream[offset..<offset + length]))
        offset += length
        drain()
    }
    // More input after the end changes nothing once finished.
    if finished {
        let extra: [UInt8] = [0x89, 0x80, 1, 2, 3, 4, 0x81, 0x80, 0, 0, 0, 0]
        extra.withUnsafeBytes { decoder.feed($0) }
        drain()
    }
    require(decoder.next() == nil, "next() after draining")

    let expected = referenceDecode(stream, maxMessageBytes: maxMessageBytes, allowsRSV1: allowsRSV1)
    require(events == expected, "decoder gave \(events), reference gives \(expected)")
    return 0
}

/// An event as compared: failure reasons left out.
struct Decoded: Equatable, CustomStringConvertible {
    var event: FrameEvent
    var compressed: Bool

    init(_ event: FrameEvent, compressed: Bool) {
        if case .failure(let code, _) = event { self.event = .failure(code: code, reason: "") } else { self.event = event }
        switch event {
        case .text, .binary: self.compressed = compressed
        default: self.compressed = false
        }
    }

    var description: String {
        switch event {
        case .text(let bytes): "text(\(hex(bytes, limit: 32))\(compressed ? ", rsv1" : ""))"
        case .binary(let bytes): "binary(\(bytes.count) bytes\(compressed ? ", rsv1" : ""))"
        case .ping(let bytes): "ping(\(hex(bytes, limit: 16)))"
        case .pong(let bytes): "pong(\(hex(bytes, limit: 16)))"
        case .close(let code, let reason): "close(\(code.map(String.init) ?? "nil"), \(hex(reason.utf8, limit: 16)))"
        case .failure(let code, _): "failure(\(code))"
        }
    }
}

func check(_ event: FrameEvent, compressed: Bool, maxMessageBytes: Int, allowsRSV1: Bool) {
    switch event {
    case .text(let bytes):
        require(bytes.count <= maxMessageBytes, "text of \(bytes.count) bytes, limit \(maxMessageBytes)")
        require(compressed || isWellFormedUTF8(bytes), "uncompressed text is not UTF-8: \(hex(bytes))")
        require(allowsRSV1 || !compressed, "RSV1 message without allowsRSV1")
    case .binary(let bytes):
        require(bytes.count <= maxMessageBytes, "binary of \(bytes.count) bytes, limit \(maxMessageBytes)")
        require(allowsRSV1 || !compressed, "RSV1 message without allowsRSV1")
    case .ping(let bytes), .pong(let bytes):
        require(bytes.count <= 125, "control payload of \(bytes.count) bytes")
    case .close(let code, let reason):
        if let code { require(WebSocketCloseCode.isValidOnWire(code), "close code \(code) is not valid on the wire") }
        require(code != nil || reason.isEmpty, "close reason without a code")
        require(reason.utf8.count <= 123, "close reason of \(reason.utf8.count) bytes")
    case .failure(let code, let reason):
        require([1002, 1007, 1009].contains(code), "failure code \(code) (\(reason))")
        require(WebSocketCloseCode.isValidOnWire(code), "failure code \(code) is not valid on the wire")
    }
}

/// Whether `bytes` is UTF-8 up to a last, incomplete character that some bytes could still complete.
func isUTF8Prefix(_ bytes: [UInt8]) -> Bool {
    if isWellFormedUTF8(bytes) { return true }
    // Complete the last (at most three-byte) tail: the second byte's range depends on the lead.
    for tailLength in 1...3 where tailLength <= bytes.count {
        let lead = bytes[bytes.count - tailLength]
        let needed: Int
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0...0xEF: needed = 3
        case 0xF0...0xF4: needed = 4
        default: continue
        }
        guard needed > tailLength else { continue }
        for second: UInt8 in [0x80, 0x90, 0xA0] {
            var completed = bytes
            if tailLength == 1 { completed.append(second) }
            while completed.count < bytes.count - tailLength + needed { completed.append(0x80) }
            if isWellFormedUTF8(completed) { return true }
        }
    }
    return false
}

/// RFC 6455 server-side decoding of the whole `stream`, failing as soon as the bytes that show a
/// violation are present (truncated frames produce nothing, unless what is present is already wrong).
func referenceDecode(_ stream: UnsafeRawBufferPointer, maxMessageBytes: Int, allowsRSV1: Bool) -> [Decoded] {
    let b = Array(stream)
    let n = b.count
    var out: [Decoded] = []
    var pos = 0
    var messageOpcode: UInt8?
    var messageCompressed = false
    var message: [UInt8] = []
    func failure(_ code: UInt16) -> [Decoded] { out + [Decoded(.failure(code: code, reason: ""), compressed: false)] }

    while true {
        guard pos + 2 <= n else { return out }
        let fin = b[pos] & 0x80 != 0, rsv1 = b[pos] & 0x40 != 0, opcode = b[pos] & 0x0F
        guard [0, 1, 2, 8, 9, 10].contains(opcode) else { return failure(1002) }
        if b[pos] & 0x30 != 0 || (rsv1 && !allowsRSV1) { return failure(1002) }
        let control = opcode >= 8
        if rsv1 && (control || opcode == 0) { return failure(1002) }
        if control && !fin { return failure(1002) }
        if opcode == 0 && messageOpcode == nil { return failure(1002) }
        if (opcode == 1 || opcode == 2) && messageOpcode != nil { return failure(1002) }
        if b[pos + 1] & 0x80 == 0 { return failure(1002) }
        let short = Int(b[pos + 1] & 0x7F)
        if control && short > 125 { return failure(1002) }
        var length = short
        var headerSize = 2
        if short == 126 {
            guard pos + 4 <= n else { return out }
            length = Int(b[pos + 2]) << 8 | Int(b[pos + 3])
            headerSize = 4
        } else if short == 127 {
            guard pos + 10 <= n else { return out }
            var wide: UInt64 = 0
            for i in 2..<10 { wide = wide << 8 | UInt64(b[pos + i]) }
            if wide >> 63 != 0 { return failure(1002) }
            length = Int(wide)
            headerSize = 10
        }
        if !control && length > maxMessageBytes - (opcode == 0 ? message.count : 0) { return failure(1009) }
        guard pos + headerSize + 4 <= n else { return out }
        let mask = Array(b[(pos + headerSize)..<(pos + headerSize + 4)])
        let start = pos + headerSize + 4
        let available = min(length, n - start)
        var payload = Array(b[start..<(start + available)])
        for i in payload.indices { payload[i] ^= mask[i & 3] }

        if control {
            guard available == length else { return out }
            switch opcode {
            case 9: out.append(Decoded(.ping(payload), compressed: false))
            case 10: out.append(Decoded(.pong(payload), compressed: false))
            default:
                if payload.isEmpty { return out + [Decoded(.close(code: nil, reason: ""), compressed: false)] }
                if payload.count == 1 { return failure(1002) }
                let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
                guard (1000...1003).contains(code) || (1007...1014).contains(code) || (3000...4999).contains(code)
                else { return failure(1002) }
                let reason = payload[2...]
                guard isWellFormedUTF8(reason) else { return failure(1007) }
                return out + [Decoded(.close(code: code, reason: String(decoding: reason, as: UTF8.self)), compressed: false)]
            }
        } else {
            if opcode != 0 {
                messageOpcode = opcode
                messageCompressed = rsv1
                message = []
            }
            message += payload
            let isText = messageOpcode == 1 && !messageCompressed
            if isText && !isUTF8Prefix(message) { return failure(1007) }
            guard available == length else { return out }
            if fin {
                if isText && !isWellFormedUTF8(message) { return failure(1007) }
                out.append(Decoded(messageOpcode == 1 ? .text(message) : .binary(message), compressed: messageCompressed))
                messageOpcode = nil
                message = []
            }
        }
        pos = start + length
    }
}
