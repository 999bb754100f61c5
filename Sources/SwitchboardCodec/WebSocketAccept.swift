import SwitchboardCrypto

/// The GUID that RFC 6455 section 1.3 appends to the client's key.
let webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
/// SHA-1 and base64 come from SwitchboardCrypto, the package's one route to both.
public func webSocketAccept(key: String) -> String {
    Base64.encode(SHA1.hash(Array((key + webSocketGUID).utf8)))
}
