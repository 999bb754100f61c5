/// Byte-exact HTTP/1.1 responses for the opening handshake and its failures.
///
/// Every response other than 101 carries `Content-Length` and `Connection: close`. CR, LF and NUL
/// are removed from header names and values given by the caller, so no header can be injected.
public enum HTTPResponse {
    /// The 101 answer to a valid handshake, with `Sec-WebSocket-Accept` computed from the client's `key`.
    public static func switchingProtocols(key: String, extraHeaders: [(name: String, value: String)] = []) -> [UInt8] {
        let head: StaticString = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
        let headCount = head.utf8CodeUnitCount
        var out = [UInt8](unsafeUninitializedCapacity: headCount + webSocketAcceptCount + 2) { buffer, initialized in
            let buffer = UnsafeMutableRawBufferPointer(buffer)
            buffer.copyMemory(from: UnsafeRawBufferPointer(start: head.utf8Start, count: headCount))
            initialized = headCount + writeWebSocketAccept(key: key, into: UnsafeMutableRawBufferPointer(rebasing: buffer[headCount...]))
            buffer[initialized] = 0x0D
            buffer[initialized + 1] = 0x0A
            initialized += 2
        }
        for header in extraHeaders { appendHeader(&out, header.name, header.value) }
        out.append(0x0D)
        out.append(0x0A)
        return out
    }

    /// 426 Upgrade Required with `Sec-WebSocket-Version: 13` and an empty body.
    public static func upgradeRequired() -> [UInt8] {
        simple(status: 426, reason: "Upgrade Required", extraHeaders: [(name: "Sec-WebSocket-Version", value: "13")])
    }

    /// 500 with the text body `WebSocket upgrade failed` (the seed's answer to a broken handshake).
    public static func upgradeFailed() -> [UInt8] {
        simple(status: 500, reason: "Internal Server Error", body: Array("WebSocket upgrade failed".utf8))
    }

    /// The answer to a head the parser refused: 400, 431 or 505 with an empty body.
    public static func parseFailure(_ error: HTTPParseError) -> [UInt8] {
        simple(status: error.status, reason: error.reasonPhrase)
    }

    /// Any non-101 answer: status line, `Content-Type` (when the body is not empty), extra headers,
    /// `Content-Length`, `Connection: close`, then the body.
    public static func simple(status: Int, reason: String, contentType: String = "text/plain; charset=utf-8",
                              body: [UInt8] = [], extraHeaders: [(name: String, value: String)] = []) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(128 + body.count)
        appendLine(&out, "HTTP/1.1 \(status) \(reason)")
        if !body.isEmpty { appendHeader(&out, "Content-Type", contentType) }
        for header in extraHeaders { appendHeader(&out, header.name, header.value) }
        appendHeader(&out, "Content-Length", String(body.count))
        appendHeader(&out, "Connection", "close")
        appendLine(&out, "")
        out.append(contentsOf: body)
        return out
    }

    /// Same as `simple` with a text body.
    public static func simple(status: Int, reason: String, contentType: String = "text/plain; charset=utf-8",
                              body: String, extraHeaders: [(name: String, value: String)] = []) -> [UInt8] {
        simple(status: status, reason: reason, contentType: contentType, body: Array(body.utf8), extraHeaders: extraHeaders)
    }

    private static func appendHeader(_ out: inout [UInt8], _ name: String, _ value: String) {
        appendSanitized(&out, name)
        out.append(UInt8(ascii: ":"))
        out.append(UInt8(ascii: " "))
        appendSanitized(&out, value)
        out.append(0x0D)
        out.append(0x0A)
    }

    private static func appendLine(_ out: inout [UInt8], _ text: String) {
        appendSanitized(&out, text)
        out.append(0x0D)
        out.append(0x0A)
    }

    private static func appendSanitized(_ out: inout [UInt8], _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            if !bytes.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) {
                out.append(contentsOf: bytes)  // the usual case: one copy
            } else {
                for byte in bytes where byte != 0x0D && byte != 0x0A && byte != 0x00 { out.append(byte) }
            }
        }
    }
}
