/// Sans-IO RFC 6455 frame decoder for the server side of a connection.
///
/// Feed it the client's bytes split anywhere, then drain `next()`. It reassembles fragmented
/// messages, delivers control frames as they arrive (also between fragments), validates text as
/// UTF-8 while it streams in, and turns every protocol violation into a `.failure` carrying the
/// close code to send (1002, 1007 or 1009). After `.close` or `.failure`, input is ignored.
///
/// Payload bytes are unmasked straight from the fed buffer into the message buffer; only partial
/// frame headers (at most 14 bytes) are copied aside. A message over `maxMessageBytes` is refused
/// from its frame header, before any of its payload is stored.
public struct FrameDecoder: Sendable {
    /// The largest message accepted, in payload bytes summed over its fragments (larger -> 1009).
    public let maxMessageBytes: Int
    /// The largest compressed (RSV1) message accepted, in payload bytes as received, summed over
    /// its fragments (larger -> 1009). Defaults to `maxMessageBytes`; the inflated size is the
    /// caller's to check (`PerMessageDeflate.inflate(_:maxOutput:)`).
    public var maxCompressedMessageBytes: Int
    /// Whether RSV1 may be set on the first frame of a data message (permessage-deflate negotiated).
    /// Such a message is delivered as is, not UTF-8 checked; `lastMessageWasCompressed` flags it,
    /// and the caller inflates it (`PerMessageDeflate.inflateMessage(_:maxOutput:)`).
    public var allowsRSV1: Bool
    /// Whether the last `.text` or `.binary` returned by `next()` had RSV1 set.
    public private(set) var lastMessageWasCompressed = false
    /// Frames completed so far, fragments and control frames included: every frame is
    /// activity (PROTOCOL.md 1), even the non-final fragments that emit no event.
    public private(set) var framesCompleted = 0

    struct Header {
        var fin: Bool
        var rsv1: Bool
        var opcode: Opcode
        var length: Int
        var mask: UInt32
    }

    enum HeaderParse {
        case needMore(total: Int)
        case frame(Header, size: Int)
        case failure(UInt16, String)
    }

    struct Pending {
        var event: FrameEvent?
        var compressed: Bool
    }

    private var headerStash: [UInt8] = []
    private var inPayload = false
    private var frameOpcode = Opcode.continuation
    private var frameFin = false
    private var frameRemaining = 0
    private var maskKey: UInt32 = 0
    private var maskPhase = 0

    private var messageOpcode: Opcode?
    private var messageCompressed = false
    private var message: [UInt8] = []
    private var utf8 = UTF8Validator()
    private var control: [UInt8] = []

    /// Decoded events `eventHead..<eventEnd`. `next()` takes each one out, leaving its slot
    /// empty, and slots are reused rather than removed: emptying the array destroyed every
    /// slot through `replaceSubrange`, about 190 instructions per `feed` (`scripts/callgrind echo`).
    private var events: [Pending] = []
    private var eventHead = 0
    private var eventEnd = 0
    private var stopped = false

    /// A decoder refusing messages larger than `maxMessageBytes`; RSV1 is refused unless `allowsRSV1`.
    public init(maxMessageBytes: Int, allowsRSV1: Bool = false) {
        precondition(maxMessageBytes >= 0, "maxMessageBytes must not be negative")
        self.maxMessageBytes = maxMessageBytes
        self.maxCompressedMessageBytes = maxMessageBytes
        self.allowsRSV1 = allowsRSV1
        headerStash.reserveCapacity(14)
    }

    /// True once a close frame or a failure has been decoded; later input is ignored.
    public var isFinished: Bool { stopped }

    /// Consumes the next bytes from the client; events become available through `next()`.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        if eventHead > 0 {
            // Events left unread (a caller that stopped early) move to the front.
            for i in eventHead..<eventEnd { events[i - eventHead] = events[i] }
            for i in max(eventEnd - eventHead, 0)..<eventEnd { events[i].event = nil }
            eventEnd -= eventHead
            eventHead = 0
        }
        guard !stopped, bytes.count > 0, let base = bytes.baseAddress else { return }
        var cursor = base
        var remaining = bytes.count
        while remaining > 0 && !stopped {
            if inPayload {
                let used = consumePayload(cursor, remaining)
                cursor += used
                remaining -= used
                continue
            }
            let header: Header
            if headerStash.isEmpty {
                switch parseHeader(cursor, remaining) {
                case .needMore:
                    headerStash.append(contentsOf: UnsafeRawBufferPointer(start: cursor, count: remaining))
                    return
                case .failure(let code, let reason):
                    fail(code, reason)
                    return
                case .frame(let parsed, let size):
                    header = parsed
                    cursor += size
                    remaining -= size
                }
            } else {
                var parsedHeader: Header?
                while parsedHeader == nil {
                    let result = headerStash.withUnsafeBytes { parseHeader($0.baseAddress!, $0.count) }
                    switch result {
                    case .needMore(let total):
                        let take = min(total - headerStash.count, remaining)
                        if take == 0 { return }
                        headerStash.append(contentsOf: UnsafeRawBufferPointer(start: cursor, count: take))
                        cursor += take
                        remaining -= take
                    case .failure(let code, let reason):
                        fail(code, reason)
                        return
                    case .frame(let parsed, _):
                        headerStash.removeAll(keepingCapacity: true)
                        parsedHeader = parsed
                    }
                }
                header = parsedHeader!
            }
            let used = beginFrame(header, cursor, remaining)
            cursor += used
            remaining -= used
        }
    }

    /// The next decoded event, or nil when more input is needed (or after `.close`/`.failure`).
    public mutating func next() -> FrameEvent? {
        guard eventHead < eventEnd else { return nil }
        let compressed = events[eventHead].compressed
        let event = events[eventHead].event.take()
        eventHead += 1
        if eventHead == eventEnd {
            if events.count > 1024 { events = [] }  // after a burst, give the slots back
            eventHead = 0
            eventEnd = 0
        }
        switch event {
        case .text?, .binary?: lastMessageWasCompressed = compressed
        default: break
        }
        return event
    }

    // MARK: - Header

    /// Validates the header at `bytes`, reporting failures as soon as the bytes that show them are present.
    func parseHeader(_ bytes: UnsafeRawPointer, _ count: Int) -> HeaderParse {
        guard count >= 2 else { return .needMore(total: 2) }
        let first = bytes.load(as: UInt8.self)
        let second = bytes.load(fromByteOffset: 1, as: UInt8.self)
        let fin = first & 0x80 != 0
        let rsv1 = first & 0x40 != 0
        guard let opcode = Opcode(rawValue: first & 0x0F) else {
            return .failure(WebSocketCloseCode.protocolError, "Reserved opcode")
        }
        if first & 0x30 != 0 || (rsv1 && !allowsRSV1) {
            return .failure(WebSocketCloseCode.protocolError, "Reserved bits set")
        }
        if rsv1 && (opcode.isControl || opcode == .continuation) {
            return .failure(WebSocketCloseCode.protocolError, "RSV1 set on a control or continuation frame")
        }
        if opcode.isControl {
            if !fin { return .failure(WebSocketCloseCode.protocolError, "Fragmented control frame") }
        } else if opcode == .continuation {
            if messageOpcode == nil { return .failure(WebSocketCloseCode.protocolError, "Unexpected continuation frame") }
        } else if messageOpcode != nil {
            return .failure(WebSocketCloseCode.protocolError, "Expected continuation frame")
        }
        guard second & 0x80 != 0 else { return .failure(WebSocketCloseCode.protocolError, "Unmasked client frame") }
        let shortLength = Int(second & 0x7F)
        if opcode.isControl && shortLength > 125 {
            return .failure(WebSocketCloseCode.protocolError, "Control frame too large")
        }
        let length: Int
        let lengthEnd: Int
        switch shortLength {
        case 126:
            lengthEnd = 4
            guard count >= lengthEnd else { return .needMore(total: lengthEnd + 4) }
            length = Int(UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
        case 127:
            lengthEnd = 10
            guard count >= lengthEnd else { return .needMore(total: lengthEnd + 4) }
            let wide = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
            guard wide >> 63 == 0 else { return .failure(WebSocketCloseCode.protocolError, "Invalid payload length") }
            guard let exact = Int(exactly: wide) else { return .failure(WebSocketCloseCode.messageTooBig, "Message too big") }
            length = exact
        default:
            lengthEnd = 2
            length = shortLength
        }
        if !opcode.isControl {
            let already = opcode == .continuation ? message.count : 0
            let compressed = opcode == .continuation ? messageCompressed : rsv1
            if length > (compressed ? maxCompressedMessageBytes : maxMessageBytes) - already {
                return .failure(WebSocketCloseCode.messageTooBig, "Message too big")
            }
        }
        guard count >= lengthEnd + 4 else { return .needMore(total: lengthEnd + 4) }
        let mask = bytes.loadUnaligned(fromByteOffset: lengthEnd, as: UInt32.self)
        return .frame(Header(fin: fin, rsv1: rsv1, opcode: opcode, length: length, mask: mask), size: lengthEnd + 4)
    }

    // MARK: - Payload

    /// Starts the frame just parsed; returns how many payload bytes of `bytes` it consumed.
    private mutating func beginFrame(_ header: Header, _ bytes: UnsafeRawPointer, _ available: Int) -> Int {
        frameOpcode = header.opcode
        frameFin = header.fin
        frameRemaining = header.length
        maskKey = header.mask
        maskPhase = 0
        inPayload = true
        if header.opcode.isControl {
            control = []
            if header.length > 0 { control.reserveCapacity(header.length) }
        } else if header.opcode != .continuation {
            messageOpcode = header.opcode
            messageCompressed = header.rsv1
            utf8.reset()
            if header.fin && available >= header.length {
                // Whole single-frame message present: copied into its own buffer, unmasked there.
                // (Copying a buffer allocates through code specialized here; an uninitialized
                // array takes the generic path, which looks up its type's metadata every time.)
                let length = header.length
                message = Array(UnsafeRawBufferPointer(start: bytes, count: length))
                if length > 0 {
                    message.withUnsafeMutableBytes { buffer in
                        _ = Masking.apply(key: header.mask, phase: 0, source: buffer.baseAddress!,
                                          destination: buffer.baseAddress!, count: length)
                    }
                }
                frameRemaining = 0
                if header.opcode == .text && !header.rsv1 {
                    let valid = message.withUnsafeBytes { utf8.validate($0) }
                    guard valid else {
                        fail(WebSocketCloseCode.invalidPayload, "Invalid UTF-8")
                        return length
                    }
                }
                finishFrame()
                return length
            }
            message = []
            message.reserveCapacity(min(header.length, max(available, 1 << 16)))
        }
        if header.length == 0 { finishFrame() }
        return 0
    }

    /// Unmasks payload bytes of the current frame into its buffer; returns how many it consumed.
    private mutating func consumePayload(_ bytes: UnsafeRawPointer, _ available: Int) -> Int {
        let take = min(frameRemaining, available)
        let source = UnsafeRawBufferPointer(start: bytes, count: take)
        let key = maskKey
        let phase = maskPhase
        if frameOpcode.isControl {
            let start = control.count
            control.append(contentsOf: source)
            maskPhase = control.withUnsafeMutableBytes { buffer in
                Masking.apply(key: key, phase: phase, source: buffer.baseAddress! + start,
                              destination: buffer.baseAddress! + start, count: take)
            }
        } else {
            let start = message.count
            message.append(contentsOf: source)
            maskPhase = message.withUnsafeMutableBytes { buffer in
                Masking.apply(key: key, phase: phase, source: buffer.baseAddress! + start,
                              destination: buffer.baseAddress! + start, count: take)
            }
            if messageOpcode == .text && !messageCompressed {
                let valid = message.withUnsafeBytes { buffer in
                    utf8.validate(UnsafeRawBufferPointer(rebasing: buffer[start...]))
                }
                if !valid {
                    fail(WebSocketCloseCode.invalidPayload, "Invalid UTF-8")
                    return take
                }
            }
        }
        frameRemaining -= take
        if frameRemaining == 0 { finishFrame() }
        return take
    }

    /// Completes the current frame: emits control events and, on FIN, the reassembled message.
    private mutating func finishFrame() {
        inPayload = false
        framesCompleted &+= 1
        switch frameOpcode {
        case .ping:
            emit(.ping(control))
            control = []
        case .pong:
            emit(.pong(control))
            control = []
        case .close:
            let payload = control
            control = []
            decodeClose(payload)
        case .text, .binary, .continuation:
            guard frameFin else { return }
            let isText = messageOpcode == .text
            if isText && !messageCompressed && !utf8.isComplete {
                fail(WebSocketCloseCode.invalidPayload, "Invalid UTF-8")
                return
            }
            let payload = message
            message = []
            messageOpcode = nil
            emit(isText ? .text(payload) : .binary(payload), compressed: messageCompressed)
        }
    }

    /// RFC 6455 section 5.5.1 and 7.4: an empty body, or a valid code and a UTF-8 reason.
    private mutating func decodeClose(_ payload: [UInt8]) {
        if payload.isEmpty {
            emit(.close(code: nil, reason: ""))
            stop()
            return
        }
        guard payload.count >= 2 else {
            fail(WebSocketCloseCode.protocolError, "Invalid close frame")
            return
        }
        let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
        guard WebSocketCloseCode.isValidOnWire(code) else {
            fail(WebSocketCloseCode.protocolError, "Invalid close code")
            return
        }
        let reason = payload[2...]
        guard UTF8Validator.isValid(reason) else {
            fail(WebSocketCloseCode.invalidPayload, "Invalid UTF-8 in close reason")
            return
        }
        emit(.close(code: code, reason: String(decoding: reason, as: UTF8.self)))
        stop()
    }

    private mutating func emit(_ event: FrameEvent, compressed: Bool = false) {
        let pending = Pending(event: event, compressed: compressed)
        if eventEnd < events.count {
            events[eventEnd] = pending
        } else {
            events.append(pending)
        }
        eventEnd += 1
    }

    private mutating func fail(_ code: UInt16, _ reason: String) {
        emit(.failure(code: code, reason: reason))
        stop()
    }

    /// Ends decoding and releases the buffers.
    private mutating func stop() {
        stopped = true
        inPayload = false
        message = []
        control = []
        headerStash = []
        messageOpcode = nil
    }
}
