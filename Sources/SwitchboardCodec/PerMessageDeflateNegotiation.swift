/// The server's permessage-deflate policy (RFC 7692): what it asks of every connection that
/// offers the extension. Values outside their ranges are clamped when negotiating.
public struct DeflateOptions: Sendable, Hashable {
    /// Always answer `server_no_context_takeover`: each outbound message is compressed on its
    /// own, so one compressed payload serves every recipient (`PerMessageDeflate.deflateOnce`)
    /// and connections hold no compressor. Granted anyway when a client asks for it.
    public var serverNoContextTakeover: Bool
    /// Always answer `client_no_context_takeover`: clients compress each message on its own,
    /// so connections hold no decompressor between messages. Granted anyway when a client offers it.
    public var clientNoContextTakeover: Bool
    /// The largest window the server compresses with, 8...15. A client's `server_max_window_bits`
    /// lowers it. 8 is announced as 8 but compressed with zlib's 9, which never emits a distance
    /// above 250 (2^9 - 262), so it fits a 256-byte window.
    public var serverMaxWindowBits: Int
    /// The largest window the server lets clients compress with, 8...15. Only applied to clients
    /// that offered `client_max_window_bits`; others may use 15.
    public var clientMaxWindowBits: Int
    /// The zlib compression level, 0...9 (6 is zlib's default).
    public var compressionLevel: Int
    /// The zlib memory level, 1...9: a compressor holds about 2^(windowBits+2) + 2^(memoryLevel+9) bytes.
    public var memoryLevel: Int

    /// A policy; the defaults keep no per-connection zlib state and allow 32 KiB windows.
    public init(serverNoContextTakeover: Bool = true, clientNoContextTakeover: Bool = true,
                serverMaxWindowBits: Int = 15, clientMaxWindowBits: Int = 15,
                compressionLevel: Int = 6, memoryLevel: Int = 8) {
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientNoContextTakeover = clientNoContextTakeover
        self.serverMaxWindowBits = serverMaxWindowBits
        self.clientMaxWindowBits = clientMaxWindowBits
        self.compressionLevel = compressionLevel
        self.memoryLevel = memoryLevel
    }
}

/// What one connection agreed to: the parameters of the accepted offer and the server's answer.
public struct DeflateParameters: Sendable, Hashable {
    /// The server compresses each message with no reference to earlier ones.
    public var serverNoContextTakeover: Bool
    /// The client compresses each message with no reference to earlier ones.
    public var clientNoContextTakeover: Bool
    /// The window the client may assume for server messages, 8...15.
    public var serverMaxWindowBits: Int
    /// The window the client may compress with, 8...15 (15 when the client did not offer the parameter).
    public var clientMaxWindowBits: Int
    /// The zlib compression level, 0...9.
    public var compressionLevel: Int
    /// The zlib memory level, 1...9.
    public var memoryLevel: Int

    /// Parameters as given (clamped to their ranges).
    public init(serverNoContextTakeover: Bool = false, clientNoContextTakeover: Bool = false,
                serverMaxWindowBits: Int = 15, clientMaxWindowBits: Int = 15,
                compressionLevel: Int = 6, memoryLevel: Int = 8) {
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientNoContextTakeover = clientNoContextTakeover
        self.serverMaxWindowBits = min(max(serverMaxWindowBits, 8), 15)
        self.clientMaxWindowBits = min(max(clientMaxWindowBits, 8), 15)
        self.compressionLevel = min(max(compressionLevel, 0), 9)
        self.memoryLevel = min(max(memoryLevel, 1), 9)
    }

    /// The zlib window the server compresses with: `serverMaxWindowBits`, but 9 for 8.
    public var compressionWindowBits: Int { max(serverMaxWindowBits, 9) }

    /// The zlib window the server decompresses with: `clientMaxWindowBits`, but 9 for 8 (a
    /// client that negotiated 8 and compresses with zlib really uses 9; a bigger window accepts it).
    public var decompressionWindowBits: Int { max(clientMaxWindowBits, 9) }
}

/// One parsed `permessage-deflate` offer (RFC 7692 section 7.1).
struct DeflateOffer: Equatable {
    var serverNoContextTakeover = false
    var clientNoContextTakeover = false
    /// `server_max_window_bits=N`: the client asks the server to compress with at most N.
    var serverMaxWindowBits: Int?
    /// `client_max_window_bits` present (the client accepts a limit in the answer) ...
    var clientMaxWindowBitsOffered = false
    /// ... and its value, a hint that the client will use at most that.
    var clientMaxWindowBits: Int?
}

extension PerMessageDeflate {
    /// Picks the first acceptable `permessage-deflate` offer among `offers` (the elements of
    /// `Sec-WebSocket-Extensions`, as `HTTPRequestHead.headerList` gives them) and answers it
    /// under `policy`. Returns the `Sec-WebSocket-Extensions` value for the 101 response and the
    /// agreed parameters, or nil when no offer is acceptable (then answer without the header).
    ///
    /// An offer with an unknown or repeated parameter, a value where none belongs, a missing or
    /// malformed value, or a window outside 8...15 is declined (RFC 7692 section 5.1) and the next
    /// one is tried. Offers of other extensions are skipped. The answer names every parameter
    /// in force: `server_no_context_takeover` when asked or required by policy,
    /// `client_no_context_takeover` when offered or required (so the client must honour it),
    /// `server_max_window_bits` when asked or below 15, and `client_max_window_bits` only when
    /// offered and below 15.
    public static func negotiate(offers: [String], policy: DeflateOptions) -> (responseHeader: String, parameters: DeflateParameters)? {
        for element in offers {
            guard let offer = parseDeflateOffer(element) else { continue }
            return accept(offer, policy: policy)
        }
        return nil
    }

    static func accept(_ offer: DeflateOffer, policy: DeflateOptions) -> (responseHeader: String, parameters: DeflateParameters) {
        let serverPolicyBits = min(max(policy.serverMaxWindowBits, 8), 15)
        let clientPolicyBits = min(max(policy.clientMaxWindowBits, 8), 15)
        let serverNoContextTakeover = offer.serverNoContextTakeover || policy.serverNoContextTakeover
        let clientNoContextTakeover = offer.clientNoContextTakeover || policy.clientNoContextTakeover
        let serverBits = min(serverPolicyBits, offer.serverMaxWindowBits ?? 15)
        let clientBits = offer.clientMaxWindowBitsOffered ? min(clientPolicyBits, offer.clientMaxWindowBits ?? 15) : 15

        var header = "permessage-deflate"
        if serverNoContextTakeover { header += "; server_no_context_takeover" }
        if clientNoContextTakeover { header += "; client_no_context_takeover" }
        if offer.serverMaxWindowBits != nil || serverBits < 15 { header += "; server_max_window_bits=\(serverBits)" }
        if clientBits < 15 { header += "; client_max_window_bits=\(clientBits)" }
        let parameters = DeflateParameters(
            serverNoContextTakeover: serverNoContextTakeover, clientNoContextTakeover: clientNoContextTakeover,
            serverMaxWindowBits: serverBits, clientMaxWindowBits: clientBits,
            compressionLevel: policy.compressionLevel, memoryLevel: policy.memoryLevel)
        return (header, parameters)
    }
}

/// Parses one extension element; nil when it is not `permessage-deflate` or not a valid offer of it.
///
/// Grammar (RFC 6455 section 9.1, RFC 7230 token and quoted-string), spaces and tabs allowed
/// around `;` and `=`: `name *( ";" param-name [ "=" ( token / quoted-string ) ] )`.
func parseDeflateOffer(_ element: String) -> DeflateOffer? {
    var scanner = ExtensionScanner(Array(element.utf8))
    scanner.skipSpace()
    guard let name = scanner.token(), asciiLowercased(name) == "permessage-deflate" else { return nil }
    var offer = DeflateOffer()
    var seen = Set<String>()
    while true {
        scanner.skipSpace()
        if scanner.atEnd { return offer }
        guard scanner.consume(UInt8(ascii: ";")) else { return nil }
        scanner.skipSpace()
        guard let rawName = scanner.token() else { return nil }
        let parameter = asciiLowercased(rawName)
        guard seen.insert(parameter).inserted else { return nil }
        scanner.skipSpace()
        var value: String?
        if scanner.consume(UInt8(ascii: "=")) {
            scanner.skipSpace()
            guard let parsed = scanner.quotedString() ?? scanner.token() else { return nil }
            value = parsed
        }
        switch parameter {
        case "server_no_context_takeover":
            guard value == nil else { return nil }
            offer.serverNoContextTakeover = true
        case "client_no_context_takeover":
            guard value == nil else { return nil }
            offer.clientNoContextTakeover = true
        case "server_max_window_bits":
            guard let value, let bits = windowBits(value) else { return nil }
            offer.serverMaxWindowBits = bits
        case "client_max_window_bits":
            offer.clientMaxWindowBitsOffered = true
            if let value {
                guard let bits = windowBits(value) else { return nil }
                offer.clientMaxWindowBits = bits
            }
        default:
            return nil
        }
    }
}

/// 1*DIGIT with no leading zero, 8...15 (RFC 7692 sections 7.1.2.1 and 7.1.2.2).
private func windowBits(_ text: String) -> Int? {
    let digits = Array(text.utf8)
    guard !digits.isEmpty, digits.count <= 2, digits[0] != UInt8(ascii: "0"),
          digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
    let value = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    return (8...15).contains(value) ? value : nil
}

/// A cursor over the bytes of one extension element.
private struct ExtensionScanner {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index == bytes.count }

    mutating func skipSpace() {
        while index < bytes.count && (bytes[index] == 0x20 || bytes[index] == 0x09) { index += 1 }
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// RFC 7230 token: 1*tchar.
    mutating func token() -> String? {
        let start = index
        while index < bytes.count && isTokenByte(bytes[index]) { index += 1 }
        return index > start ? String(decoding: bytes[start..<index], as: UTF8.self) : nil
    }

    /// RFC 7230 quoted-string, unescaped; nil (position unchanged) when not at a quote or unterminated.
    mutating func quotedString() -> String? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        var cursor = index + 1
        var value: [UInt8] = []
        while cursor < bytes.count {
            let byte = bytes[cursor]
            if byte == UInt8(ascii: "\"") {
                index = cursor + 1
                return String(decoding: value, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") {
                cursor += 1
                guard cursor < bytes.count else { return nil }
                value.append(bytes[cursor])
            } else if byte == 0x09 || byte == 0x20 || byte == 0x21 || (0x23...0x7E).contains(byte) || byte >= 0x80 {
                value.append(byte)
            } else {
                return nil
            }
            cursor += 1
        }
        return nil
    }
}
