/// The outcome of inflating one compressed message.
public enum InflateResult: Sendable, Hashable {
    /// The message, decompressed.
    case ok([UInt8])
    /// The message decompresses to more than `maxOutput` bytes: close with 1009. Detected while
    /// inflating; at most `maxOutput + 1` bytes were produced.
    case tooBig
    /// Not valid DEFLATE data: close with 1007.
    case invalid
}

/// permessage-deflate (RFC 7692) for one server-side connection: inflates client messages,
/// deflates server messages, per the parameters `negotiate(offers:policy:)` agreed.
///
/// zlib streams are made on first use and freed when the last copy of this value goes away
/// (copies share them: keep one value per connection, used by one thread at a time). In a
/// direction without context takeover the connection holds no stream at all: each message
/// borrows a reset stream from a small process-wide pool.
public struct PerMessageDeflate {
    /// What was agreed for this connection.
    public let parameters: DeflateParameters
    let streams: Streams

    /// The per-connection zlib streams (only used in directions with context takeover).
    final class Streams {
        var inflater: ZlibInflater?
        var deflater: ZlibDeflater?
        /// The last inflate's largest output buffer and unconsumed input (tests read them).
        var lastInflate: (peakCapacity: Int, unconsumedInput: Int)?
    }

    /// A connection's codec for `parameters`.
    public init(parameters: DeflateParameters) {
        self.parameters = parameters
        self.streams = Streams()
    }

    // MARK: - Inbound

    /// Decompresses the payload of one message whose first frame had RSV1 set (its fragments
    /// concatenated), after appending 00 00 FF FF (RFC 7692 section 7.2.2). Stops as soon as
    /// the output would exceed `maxOutput` bytes. Without `client_no_context_takeover` the
    /// window carries over to the next message; after `.tooBig` or `.invalid` close the
    /// connection (the context is gone).
    public mutating func inflate(_ compressed: UnsafeRawBufferPointer, maxOutput: Int) -> InflateResult {
        let outcome: InflateOutcome
        if parameters.clientNoContextTakeover {
            outcome = ZlibPool.withInflater { $0.inflate(compressed, maxOutput: maxOutput) }
        } else {
            let inflater: ZlibInflater
            if let existing = streams.inflater {
                inflater = existing
            } else {
                inflater = ZlibInflater(windowBits: parameters.decompressionWindowBits)
                streams.inflater = inflater
            }
            outcome = inflater.inflate(compressed, maxOutput: maxOutput)
            var keepsWindow = !outcome.streamEnded
            if case .ok = outcome.result {} else { keepsWindow = false }
            if !keepsWindow { inflater.reset() }
        }
        streams.lastInflate = (outcome.peakCapacity, outcome.unconsumedInput)
        return outcome.result
    }

    /// Decompresses `compressed` (see `inflate(_:maxOutput:)` for raw buffers).
    public mutating func inflate(_ compressed: some Collection<UInt8>, maxOutput: Int) -> InflateResult {
        if let result = compressed.withContiguousStorageIfAvailable({ inflate(UnsafeRawBufferPointer($0), maxOutput: maxOutput) }) {
            return result
        }
        return Array(compressed).withUnsafeBytes { inflate($0, maxOutput: maxOutput) }
    }

    /// Turns a `.text` or `.binary` that `FrameDecoder` flagged with `lastMessageWasCompressed`
    /// into the decompressed message, or into `.failure`: 1009 "Message too big" past
    /// `maxOutput`, 1007 "Invalid compressed data", or 1007 "Invalid UTF-8" for text that is
    /// not UTF-8 once decompressed. Other events are returned unchanged.
    public mutating func inflateMessage(_ event: FrameEvent, maxOutput: Int) -> FrameEvent {
        let isText: Bool
        let payload: [UInt8]
        switch event {
        case .text(let bytes): isText = true; payload = bytes
        case .binary(let bytes): isText = false; payload = bytes
        default: return event
        }
        switch inflate(payload, maxOutput: maxOutput) {
        case .ok(let message):
            if isText {
                guard UTF8Validator.isValid(message) else {
                    return .failure(code: WebSocketCloseCode.invalidPayload, reason: "Invalid UTF-8")
                }
                return .text(message)
            }
            return .binary(message)
        case .tooBig:
            return .failure(code: WebSocketCloseCode.messageTooBig, reason: "Message too big")
        case .invalid:
            return .failure(code: WebSocketCloseCode.invalidPayload, reason: "Invalid compressed data")
        }
    }

    // MARK: - Outbound

    /// Compresses one message for this connection: the payload of a single frame with RSV1 set
    /// (`FrameEncoder.encode(opcode:payload:rsv1: true, into:)`), trailing 00 00 FF FF removed.
    /// Without `server_no_context_takeover` the window carries over, so every compressed
    /// message sent on this connection must come from this method, in sending order.
    public mutating func deflate(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        if parameters.serverNoContextTakeover {
            return Self.deflateOnce(message, windowBits: parameters.compressionWindowBits,
                                    level: parameters.compressionLevel, memoryLevel: parameters.memoryLevel)
        }
        let deflater: ZlibDeflater
        if let existing = streams.deflater {
            deflater = existing
        } else {
            deflater = ZlibDeflater(windowBits: parameters.compressionWindowBits,
                                    level: parameters.compressionLevel, memoryLevel: parameters.memoryLevel)
            streams.deflater = deflater
        }
        return deflater.deflate(message)
    }

    /// Compresses `message` for this connection (see `deflate(_:)` for raw buffers).
    public mutating func deflate(_ message: some Collection<UInt8>) -> [UInt8] {
        if let result = message.withContiguousStorageIfAvailable({ deflate(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(message).withUnsafeBytes { deflate($0) }
    }

    /// Compresses `message` on its own, with no reference to anything sent before. The result
    /// is a valid RSV1 payload on every connection whose `parameters.serverNoContextTakeover`
    /// is true and whose `compressionWindowBits` is at least `windowBits` (8 means 9), whatever
    /// the receiver keeps: so a publish is compressed once per window size, not per recipient.
    /// Thread-safe; uses a pooled compressor.
    public static func deflateOnce(_ message: UnsafeRawBufferPointer, windowBits: Int,
                                   level: Int = 6, memoryLevel: Int = 8) -> [UInt8] {
        let bits = min(max(windowBits, 9), 15)
        return ZlibPool.withDeflater(windowBits: bits, level: min(max(level, 0), 9), memoryLevel: min(max(memoryLevel, 1), 9)) {
            $0.deflate(message)
        }
    }

    /// Compresses `message` on its own (see `deflateOnce(_:windowBits:level:memoryLevel:)`).
    public static func deflateOnce(_ message: some Collection<UInt8>, windowBits: Int,
                                   level: Int = 6, memoryLevel: Int = 8) -> [UInt8] {
        if let result = message.withContiguousStorageIfAvailable({
            deflateOnce(UnsafeRawBufferPointer($0), windowBits: windowBits, level: level, memoryLevel: memoryLevel)
        }) {
            return result
        }
        return Array(message).withUnsafeBytes {
            deflateOnce($0, windowBits: windowBits, level: level, memoryLevel: memoryLevel)
        }
    }

    /// A `FrameDecoder.maxCompressedMessageBytes` for messages of at most `maxMessageBytes`
    /// once inflated: room for incompressible data (stored blocks) and per-fragment flushes.
    /// The real limit is `maxOutput` when inflating; this one only bounds buffering.
    public static func compressedLimit(forMessageLimit maxMessageBytes: Int) -> Int {
        let (sum, overflow) = maxMessageBytes.addingReportingOverflow(maxMessageBytes / 32 + 1024)
        return overflow ? Int.max : sum
    }
}
