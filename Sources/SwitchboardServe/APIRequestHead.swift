#if canImport(Glibc)
import Glibc
#endif

/// The head of one HTTP/1.1 request on an API connection, read from a blocking socket.
/// Only what the API needs: method, path, headers, the body's length and keep-alive.
struct APIRequestHead {
    var method: String
    /// Without the query string.
    var path: String
    /// What follows `?` in the target (empty without one).
    var query = ""
    /// Names lower-cased.
    var headers: [(String, String)]
    var contentLength = 0
    var chunked = false
    var keepAlive = true

    enum ReadResult {
        case head(APIRequestHead)
        /// The peer closed, or stayed silent past the timeout, between requests.
        case closed
        case failed(APIError)
    }

    /// Reads until the blank line that ends the head; bytes after it stay in `buffer`.
    static func read(_ fd: Int32, _ buffer: inout [UInt8], limit: Int) -> ReadResult {
        while true {
            let end = headEnd(buffer)
            if (end ?? buffer.count) > limit {
                return .failed(APIError(status: 431, code: "header_too_large", message: "the request head is larger than \(limit) bytes"))
            }
            if let end {
                let text = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                return parse(text)
            }
            guard receive(fd, &buffer) else {
                return buffer.isEmpty ? .closed : .failed(APIError(status: 408, code: "timeout", message: "the request was not complete in time"))
            }
        }
    }

    /// The body: `count` bytes, some perhaps already in `buffer`; nil if the peer went away.
    static func readBody(_ fd: Int32, _ buffer: inout [UInt8], count: Int) -> [UInt8]? {
        while buffer.count < count {
            guard receive(fd, &buffer) else { return nil }
        }
        let body = Array(buffer[..<count])
        buffer.removeFirst(count)
        return body
    }

    private static func receive(_ fd: Int32, _ buffer: inout [UInt8]) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            buffer += chunk[..<count]
            return true
        }
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }

    static func parse(_ text: String) -> ReadResult {
        func bad(_ message: String) -> ReadResult {
            .failed(APIError(status: 400, code: "bad_request", message: message))
        }
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count == 3, !requestLine[0].isEmpty, requestLine[1].hasPrefix("/"),
              requestLine[2] == "HTTP/1.1" || requestLine[2] == "HTTP/1.0" else {
            return bad("the request line is not 'METHOD /path HTTP/1.1'")
        }
        let target = requestLine[1]
        var head = APIRequestHead(method: String(requestLine[0]),
                                  path: String(target.prefix { $0 != "?" }), headers: [])
        head.keepAlive = requestLine[2] == "HTTP/1.1"
        if let mark = target.firstIndex(of: "?") { head.query = String(target[target.index(after: mark)...]) }
        var length: Int?
        for line in lines {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex,
                  !line.first!.isWhitespace else { return bad("a header line is not 'Name: value'") }
            let name = line[..<colon].lowercased()
            let value = String(line[line.index(after: colon)...]).trimmingSpaces()
            head.headers.append((name, value))
            switch name {
            case "content-length":
                guard let parsed = Int(value), parsed >= 0, length == nil || length == parsed else {
                    return bad("Content-Length is not one non-negative number")
                }
                length = parsed
            case "transfer-encoding":
                head.chunked = true
            case "connection":
                let tokens = value.lowercased().split(separator: ",").map { $0.trimmingCharacters() }
                if tokens.contains("close") { head.keepAlive = false }
                if tokens.contains("keep-alive") { head.keepAlive = true }
            default:
                break
            }
        }
        head.contentLength = length ?? 0
        return .head(head)
    }
}

private extension Substring {
    func trimmingCharacters() -> String { String(self).trimmingSpaces() }
}
