/// What a `FrameDecoder` found in the client's byte stream, in stream order.
public enum FrameEvent: Sendable, Hashable {
    /// A complete text message (fragments reassembled), valid UTF-8 unless it was compressed.
    case text([UInt8])
    /// A complete binary message (fragments reassembled).
    case binary([UInt8])
    /// A ping with its application data (at most 125 bytes).
    case ping([UInt8])
    /// A pong with its application data (at most 125 bytes).
    case pong([UInt8])
    /// A close frame: `code` is nil when the payload was empty. Nothing follows it.
    case close(code: UInt16?, reason: String)
    /// The stream broke the protocol: close the connection with `code`. Nothing follows it.
    case failure(code: UInt16, reason: String)
}
