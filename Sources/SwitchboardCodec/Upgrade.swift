/// How to answer a request head, per PROTOCOL.md section 1 and RFC 6455 section 4.2.
public enum UpgradeDecision: Sendable, Hashable {
    /// A valid opening handshake: answer `HTTPResponse.switchingProtocols(key:)`.
    /// `extensions` and `protocols` are the offered list elements, trimmed, case preserved.
    case upgrade(key: String, extensions: [String], protocols: [String])
    /// An upgrade attempt with a missing or unsupported `Sec-WebSocket-Version`: answer 426.
    case versionNotSupported
    /// Any other broken upgrade attempt: answer 500 "WebSocket upgrade failed".
    case upgradeFailed
    /// Not an upgrade attempt (other path, or no `Upgrade: websocket`): ordinary HTTP.
    case notAnUpgrade
}

/// Classifies `head` for the WebSocket endpoint at `path` (compared with the target's path, query ignored).
///
/// An attempt is a request to `path` whose `Upgrade` header has the token `websocket`. Then, in
/// order: `Sec-WebSocket-Version` must be exactly 13 (else 426); the method must be GET, the
/// version at least HTTP/1.1, `Connection` must list `upgrade`, and `Sec-WebSocket-Key` must be
/// base64 of 16 bytes (else 500).
public func classifyUpgrade(_ head: HTTPRequestHead, path: String) -> UpgradeDecision {
    guard head.hasPath(path), head.hasToken("upgrade", "websocket") else { return .notAnUpgrade }
    guard head.header(lowercased: "sec-websocket-version") == "13" else { return .versionNotSupported }
    guard head.method == "GET", head.version >= .http1_1,
          head.hasToken("connection", "upgrade"),
          let key = head.header(lowercased: "sec-websocket-key"), isValidWebSocketKey(key)
    else { return .upgradeFailed }
    return .upgrade(key: key,
                    extensions: head.headerList(lowercased: "sec-websocket-extensions"),
                    protocols: head.headerList(lowercased: "sec-websocket-protocol"))
}

/// Whether `key` is a valid `Sec-WebSocket-Key`: 24 characters of base64 that decode to 16 bytes.
/// The bits the padding discards are not checked: a key whose last character sets them is
/// still 16 bytes to the client, and the handshake only hashes the text.
///
/// Sixteen bytes are five full groups and `xx==`: so the key is valid exactly when its first 22
/// bytes are in the base64 alphabet and its last two are `=`. Checked in place, as
/// `Base64.decode` would decide it, without decoding into an array (once per connection).
public func isValidWebSocketKey(_ key: String) -> Bool {
    var key = key
    return key.withUTF8 { bytes in
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        for byte in bytes[..<22] where !isBase64Letter(byte) { return false }
        return true
    }
}

/// `A`-`Z`, `a`-`z`, `0`-`9`, `+` and `/`.
@inline(__always)
private func isBase64Letter(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
         UInt8(ascii: "+"), UInt8(ascii: "/"):
        return true
    default:
        return false
    }
}
