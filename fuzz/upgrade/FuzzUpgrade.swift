// fuzz/upgrade: HTTPRequestParser fed in chunks, classifyUpgrade, and the response built from the result.
//
// Input: two seed bytes (chunking and parser limits, see `SplitPlan`), then the request bytes.
//
// Invariants:
// - every feed consumes at most what it was given; `.complete` consumes a prefix ending in LF;
// - the chunked result equals the result of one feed of the whole stream (same head, same
//   offset of its end, same error);
// - after `.complete`/`.failed` every feed repeats it (`consumed: 0`);
// - a complete head: method a token, target visible ASCII, HTTP/1.x, header names non-empty
//   lowercase tokens, values without CR/LF/NUL and without surrounding whitespace;
// - every response is well-formed: CRLF-terminated lines free of CR, LF and NUL, one empty line
//   ending the head, the expected status, and a Content-Length matching the body.
import SwitchboardCodec

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUpgrade(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let (seed, stream) = splitSeed(UnsafeRawBufferPointer(start: data, count: size))
    // Seed bits 3-4: the limits (defaults, or small ones that inputs can reach).
    let limits = [(16384, 100), (256, 4), (64, 100), (4096, 1)][Int(seed >> 3 & 3)]
    var plan = SplitPlan(seed: seed)

    let whole = parseAtOnce(stream, limits)
    var parser = HTTPRequestParser(maxHeaderBytes: limits.0, maxHeaderCount: limits.1)
    var offset = 0
    var outcome: Outcome = .needMore
    for length in plan.chunks(count: stream.count) {
        let chunk = UnsafeRawBufferPointer(rebasing: stream[offset..<offset + length])
        let result = parser.feed(chunk)
        switch (outcome, result) {
        case (.needMore, .needMore):
            break
        case (.needMore, .complete(let head, let consumed)):
            require(consumed > 0 && consumed <= length, "consumed \(consumed) of a \(length)-byte feed")
            require(chunk[consumed - 1] == 0x0A, "the head does not end with LF")
            outcome = .complete(head, end: offset + consumed)
        case (.needMore, .failed(let error)):
            outcome = .failed(error)
        case (.complete(let head, _), .complete(let again, let consumed)):
            require(consumed == 0 && again == head, "a feed after .complete returned another head or consumed \(consumed)")
        case (.failed(let error), .failed(let again)):
            require(again == error, "a feed after .failed(\(error)) returned \(again)")
        default:
            invariantFailed("a feed after \(outcome) returned \(result)", file: #fileID, line: #line)
        }
        offset += length
    }
    require(outcome == whole, "chunked parse gave \(outcome), one feed gave \(whole)")

    switch outcome {
    case .needMore:
        require(stream.count <= limits.0, "\(stream.count) bytes fed without a result, limit \(limits.0)")
        // An empty feed changes nothing.
        require(parser.feed(UnsafeRawBufferPointer(start: nil, count: 0)) == .needMore, "an empty feed finished the head")
    case .failed(let error):
        let response = HTTPResponse.parseFailure(error)
        checkResponse(response, status: error.status, headerNames: ["Content-Length", "Connection"], body: [])
        require([400, 431, 505].contains(error.status), "parse error status \(error.status)")
    case .complete(let head, _):
        checkHead(head)
        respond(to: head)
    }
    return 0
}

enum Outcome: Equatable, CustomStringConvertible {
    case needMore
    case complete(HTTPRequestHead, end: Int)
    case failed(HTTPParseError)

    var description: String {
        switch self {
        case .needMore: "needMore"
        case .complete(let head, let end): "complete(\(head.method) \(head.target), \(head.headers.count) headers, end \(end))"
        case .failed(let error): "failed(\(error))"
        }
    }
}

func parseAtOnce(_ stream: UnsafeRawBufferPointer, _ limits: (Int, Int)) -> Outcome {
    var parser = HTTPRequestParser(maxHeaderBytes: limits.0, maxHeaderCount: limits.1)
    switch parser.feed(stream) {
    case .needMore: return .needMore
    case .complete(let head, let consumed): return .complete(head, end: consumed)
    case .failed(let error): return .failed(error)
    }
}

func isToken(_ byte: UInt8) -> Bool {
    switch byte {
    case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
    default: return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
    }
}

func checkHead(_ head: HTTPRequestHead) {
    require(!head.method.isEmpty && head.method.utf8.allSatisfy(isToken), "method \(hex(head.method.utf8))")
    require(!head.target.isEmpty && head.target.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "target \(hex(head.target.utf8))")
    require(head.version.major == 1 && head.version.minor <= 9, "version \(head.version)")
    for field in head.headers {
        require(!field.name.isEmpty && field.name.utf8.allSatisfy { isToken($0) && !(0x41...0x5A).contains($0) },
                "header name \(hex(field.name.utf8)) is not a lowercase token")
        let value = Array(field.value.utf8)
        require(!value.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }, "header value \(hex(value)) has CR/LF/NUL")
        require(value.first != 0x20 && value.first != 0x09 && value.last != 0x20 && value.last != 0x09,
                "header value \(hex(value)) is not trimmed")
        require(head.header(field.name) != nil, "header(\(field.name)) finds nothing")
        require(head.header(field.name.uppercased()) == head.header(field.name), "header lookup is case-sensitive")
    }
    let path = head.path
    require(path.isEmpty || path.utf8.first == UInt8(ascii: "/") || head.target.utf8.first != UInt8(ascii: "/"),
            "path \(path) of target \(head.target)")
    require(!path.utf8.contains(UInt8(ascii: "?")), "path \(path) keeps the query")
    for name in ["connection", "upgrade", "sec-websocket-protocol", "sec-websocket-extensions"] {
        for token in head.headerTokens(name) {
            require(!token.isEmpty && !token.utf8.contains(UInt8(ascii: ",")), "token \(token) of \(name)")
        }
    }
}

/// Builds the answer the gateway would send, echoing request data into it where a server might.
func respond(to head: HTTPRequestHead) {
    // The endpoint's path: the request's own path half the time, so that inputs reach the upgrade checks.
    for path in ["/ws", head.path] {
        switch classifyUpgrade(head, path: path) {
        case .upgrade(let key, let extensions, let protocols):
            require(isValidWebSocketKey(key) && key.utf8.count == 24, "accepted key \(key)")
            require(head.method == "GET" && head.version >= .http1_1, "upgrade of \(head.method) \(head.version)")
            require(head.header("sec-websocket-version") == "13", "upgrade without version 13")
            let accept = webSocketAccept(key: key)
            require(accept.utf8.count == 28 && accept.utf8.last == UInt8(ascii: "="), "accept \(accept)")
            var extra: [(name: String, value: String)] = []
            if let first = protocols.first { extra.append((name: "Sec-WebSocket-Protocol", value: first)) }
            if !extensions.isEmpty { extra.append((name: "Sec-WebSocket-Extensions", value: extensions.joined(separator: ", "))) }
            let response = HTTPResponse.switchingProtocols(key: key, extraHeaders: extra)
            checkResponse(response, status: 101,
                          headerNames: ["Upgrade", "Connection", "Sec-WebSocket-Accept"] + extra.map(\.name), body: nil)
        case .versionNotSupported:
            checkResponse(HTTPResponse.upgradeRequired(), status: 426,
                          headerNames: ["Sec-WebSocket-Version", "Content-Length", "Connection"], body: [])
        case .upgradeFailed:
            checkResponse(HTTPResponse.upgradeFailed(), status: 500,
                          headerNames: ["Content-Type", "Content-Length", "Connection"],
                          body: Array("WebSocket upgrade failed".utf8))
        case .notAnUpgrade:
            // An ordinary HTTP answer that reflects request data in a header and the body.
            let body = Array(head.target.utf8)
            let response = HTTPResponse.simple(status: 404, reason: "Not Found", body: body,
                                               extraHeaders: head.headers.prefix(3).map { (name: $0.name, value: $0.value) })
            checkResponse(response, status: 404,
                          headerNames: ["Content-Type"] + head.headers.prefix(3).map(\.name) + ["Content-Length", "Connection"],
                          body: body)
        }
    }
}

/// Checks the framing of `response`: status line, exactly `headerNames` in order (nil body: a 101
/// without one), CRLF line ends, no stray CR/LF/NUL, and a matching Content-Length.
func checkResponse(_ response: [UInt8], status: Int, headerNames: [String], body: [UInt8]?) {
    var lines: [ArraySlice<UInt8>] = []
    var start = 0
    var index = 0
    var headEnd: Int?
    while index + 1 < response.count {
        if response[index] == 0x0D && response[index + 1] == 0x0A {
            let line = response[start..<index]
            start = index + 2
            index += 2
            if line.isEmpty {
                headEnd = start
                break
            }
            lines.append(line)
            continue
        }
        index += 1
    }
    guard let headEnd else { invariantFailed("response has no empty line: \(hex(response))", file: #fileID, line: #line) }
    for line in lines {
        require(!line.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }, "response line \(hex(line)) has CR/LF/NUL")
    }
    require(lines.first?.starts(with: Array("HTTP/1.1 \(status) ".utf8)) == true, "status line of \(hex(response))")
    let headerLines = lines.dropFirst()
    require(headerLines.count == headerNames.count,
            "\(headerLines.count) response header lines, expected \(headerNames.count): \(hex(response, limit: 512))")
    var contentLength: Int?
    for (line, name) in zip(headerLines, headerNames) {
        let expected = Array(name.utf8.filter { $0 != 0x0D && $0 != 0x0A && $0 != 0x00 }) + Array(": ".utf8)
        require(line.starts(with: expected), "header line \(hex(line)) should be \(name)")
        if name == "Content-Length" { contentLength = Int(String(decoding: line.dropFirst(16), as: UTF8.self)) }
    }
    let actualBody = response[headEnd...]
    if let body {
        require(contentLength == body.count && actualBody.elementsEqual(body), "body or Content-Length of \(hex(response))")
    } else {
        require(actualBody.isEmpty, "bytes after the 101 head")
    }
}
