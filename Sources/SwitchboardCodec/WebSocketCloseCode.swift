/// RFC 6455 section 7.4 close status codes.
public enum WebSocketCloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    public static let normal: UInt16 = 1000
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    public static let goingAway: UInt16 = 1001
    /// 1002: the peer violated the protocol.
    public static let protocolError: UInt16 = 1002
    /// 1003: the endpoint received a data type it cannot accept.
    public static let unsupportedData: UInt16 = 1003
    /// 1005: no status code was present (never sent on the wire).
    public static let noStatusReceived: UInt16 = 1005
    /// 1006: the connection closed without a close frame (never sent on the wire).
    public static let abnormalClosure: UInt16 = 1006
    /// 1007: message data inconsistent with its type (e.g. invalid UTF-8 text).
    public static let invalidPayload: UInt16 = 1007
    /// 1008: the message violates the endpoint's policy.
    public static let policyViolation: UInt16 = 1008
    /// 1009: the message is too big to process.
    public static let messageTooBig: UInt16 = 1009
    /// 1010: the client expected an extension the server did not negotiate.
    public static let mandatoryExtension: UInt16 = 1010
    /// 1011: the server met an unexpected condition.
    public static let internalError: UInt16 = 1011

    /// Whether `code` may appear in a close frame: 1000-1003, 1007-1014 or 3000-4999.
    @inlinable
    public static func isValidOnWire(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }
}
