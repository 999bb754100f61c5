/// RFC 6455 section 5.2 frame opcodes (the low nibble of the first header byte).
public enum Opcode: UInt8, Sendable, Hashable {
    /// Continuation of a fragmented data message.
    case continuation = 0x0
    /// Text data frame (UTF-8 payload).
    case text = 0x1
    /// Binary data frame.
    case binary = 0x2
    /// Connection close control frame.
    case close = 0x8
    /// Ping control frame.
    case ping = 0x9
    /// Pong control frame.
    case pong = 0xA

    /// Whether this is a control opcode (close, ping, pong).
    @inlinable
    public var isControl: Bool { rawValue & 0x8 != 0 }
}
