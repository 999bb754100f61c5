// Plain HTTP/1.1 over one TCPConnection, for requests a WebSocket client would not send.
import Foundation

/// An HTTP response read to its end.
public struct HTTPReply: CustomStringConvertible {
    public let status: Int
    /// Header names lower-cased.
    public let headers: [String: String]
    public let body: String
    public let raw: String
    public var description: String { raw }
}

/// Sends raw HTTP bytes and reads the response (to Content-Length or end of stream).
public func rawHTTP(port: UInt16, request: String, timeout: Double = 2) throws -> HTTPReply {
    try rawHTTP(port: port, bytes: Array(request.utf8), timeout: timeout)
}

public func rawHTTP(port: UInt16, bytes: [UInt8], timeout: Double = 2) throws -> HTTPReply {
    let connection = try TCPConnection(port: port)
    try connection.write(bytes)
    var buffer: [UInt8] = []
    let end = deadline(after: timeout)
    while true {
        if let reply = parseHTTPReply(buffer, complete: false) { return reply }
        let soFar = String(decoding: buffer, as: UTF8.self)
        let count = try connection.read(into: &buffer, deadline: end, what: "an HTTP response (got so far: \(soFar))")
        if count == 0 {
            if let reply = parseHTTPReply(buffer, complete: true) { return reply }
            throw TestFailure("connection closed before a complete HTTP response; got: \(String(decoding: buffer, as: UTF8.self))")
        }
    }
}

/// The head of an HTTP response: status and lower-cased headers; nil until `\r\n\r\n` arrived.
func parseHTTPHead(_ bytes: [UInt8]) -> (status: Int, headers: [String: String], bodyStart: Int)? {
    let terminator: [UInt8] = [13, 10, 13, 10]
    guard bytes.count >= 4,
          let end = (0...(bytes.count - 4)).first(where: { bytes[$0..<($0 + 4)].elementsEqual(terminator) })
    else { return nil }
    let head = String(decoding: bytes[0..<end], as: UTF8.self)
    var lines = head.components(separatedBy: "\r\n")
    let statusLine = lines.removeFirst().split(separator: " ")
    let status = statusLine.count > 1 ? Int(statusLine[1]) ?? -1 : -1
    var headers: [String: String] = [:]
    for line in lines {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return (status, headers, end + 4)
}

private func parseHTTPReply(_ bytes: [UInt8], complete: Bool) -> HTTPReply? {
    guard let head = parseHTTPHead(bytes) else { return nil }
    let available = bytes.count - head.bodyStart
    if let length = head.headers["content-length"].flatMap({ Int($0) }) {
        guard available >= length else { return nil }
        let body = String(decoding: bytes[head.bodyStart..<(head.bodyStart + length)], as: UTF8.self)
        return HTTPReply(status: head.status, headers: head.headers, body: body,
                         raw: String(decoding: bytes, as: UTF8.self))
    }
    guard complete else { return nil }
    return HTTPReply(status: head.status, headers: head.headers,
                     body: String(decoding: bytes[head.bodyStart...], as: UTF8.self),
                     raw: String(decoding: bytes, as: UTF8.self))
}
