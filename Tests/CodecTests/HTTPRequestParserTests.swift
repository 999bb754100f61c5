import Testing
import SwitchboardCodec

@Suite struct HTTPRequestParserTests {
    static let request = "GET /ws?token=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
        + "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        + "Sec-WebSocket-Version: 13\r\nX-Multi: a\r\nx-multi: b\r\n\r\n"
    static let leftover: [UInt8] = [0x81, 0x85, 0x37, 0xFA]

    func completedHead(_ result: HTTPParseResult) -> HTTPRequestHead? {
        if case .complete(let head, _) = result { return head }
        return nil
    }

    @Test func parsesRequestLineAndHeaders() throws {
        let (result, consumed) = parse([bytes(Self.request)])
        let head = try #require(completedHead(result))
        #expect(consumed == Self.request.utf8.count)
        #expect(head.method == "GET")
        #expect(head.target == "/ws?token=1")
        #expect(head.path == "/ws")
        #expect(head.version == .http1_1)
        #expect(head.headers.count == 7)
        #expect(head.headers[0].name == "host" && head.headers[0].value == "example.com")
        #expect(head.header("HOST") == "example.com")
        #expect(head.header("sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ==")
        #expect(head.header("X-Multi") == "a, b")
        #expect(head.header("missing") == nil)
        #expect(head.headerTokens("connection") == ["keep-alive", "upgrade"])
        #expect(head.headerTokens("x-multi") == ["a", "b"])
    }

    @Test func everySplitPointGivesTheSameHeadAndLeavesTheRest() throws {
        let whole = bytes(Self.request) + Self.leftover
        let (expected, _) = parse([bytes(Self.request)])
        for split in twoWaySplits(whole) {
            let (result, consumed) = parse(split)
            #expect(completedHead(result) == completedHead(expected), "split at \(split[0].count)")
            #expect(consumed == Self.request.utf8.count, "split at \(split[0].count)")
        }
    }

    @Test func byteAtATime() throws {
        var parser = HTTPRequestParser()
        let input = bytes(Self.request)
        for (index, byte) in input.enumerated() {
            let result = [byte].withUnsafeBytes { parser.feed($0) }
            if index < input.count - 1 {
                #expect(result == .needMore, "byte \(index)")
            } else {
                let head = try #require(completedHead(result))
                #expect(result == .complete(head, consumed: 1))
                #expect(head.header("upgrade") == "websocket")
            }
        }
    }

    @Test func threeWaySplitsOfAShortRequest() {
        let input = bytes("GET / HTTP/1.1\nA: b\n\nrest")
        let (expected, _) = parse([input])
        for i in 0...input.count {
            for j in i...input.count {
                let (result, consumed) = parse([Array(input[..<i]), Array(input[i..<j]), Array(input[j...])])
                #expect(completedHead(result) == completedHead(expected))
                #expect(consumed == input.count - 4)
            }
        }
    }

    @Test func acceptsBareLF() throws {
        let (result, consumed) = parse([bytes("GET /x HTTP/1.0\nHost: h\n\n")])
        let head = try #require(completedHead(result))
        #expect(head.version == .http1_0)
        #expect(head.header("host") == "h")
        #expect(consumed == 25)
    }

    @Test func ignoresEmptyLinesBeforeTheRequestLine() throws {
        let (result, _) = parse([bytes("\r\n\r\nGET / HTTP/1.1\r\n\r\n")])
        #expect(try #require(completedHead(result)).method == "GET")
    }

    @Test func trimsOptionalWhitespaceAndAllowsEmptyValues() throws {
        let (result, _) = parse([bytes("GET / HTTP/1.1\r\nA:\t  spaced value \t\r\nB:\r\n\r\n")])
        let head = try #require(completedHead(result))
        #expect(head.header("a") == "spaced value")
        #expect(head.header("b") == "")
    }

    @Test(arguments: [
        "GET /\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
        "GET / HTTX/1.1\r\n\r\n", "GET / HTTP/11\r\n\r\n", "GET /a b HTTP/1.1\r\n\r\n", " GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\r\n\r\n", "GET /\u{7F} HTTP/1.1\r\n\r\n", "GET /é HTTP/1.1\r\n\r\n", "GET / http/1.1\r\n\r\n",
    ])
    func rejectsMalformedRequestLines(_ text: String) {
        #expect(parse([bytes(text)]).0 == .failed(.invalidRequestLine))
    }

    @Test func rejectsOtherMajorVersions() {
        #expect(parse([bytes("GET / HTTP/2.0\r\n\r\n")]).0 == .failed(.versionNotSupported))
        #expect(HTTPParseError.versionNotSupported.status == 505)
    }

    @Test(arguments: [
        "NoColon\r\n", ": empty-name\r\n", "Bad Name: x\r\n", "Name : x\r\n", "A: x\u{0}y\r\n",
        "A: x\ry\r\n", "A\u{1}: x\r\n", "A: x\u{7F}\r\n", "(A): x\r\n",
    ])
    func rejectsMalformedHeaders(_ line: String) {
        #expect(parse([bytes("GET / HTTP/1.1\r\n" + line + "\r\n")]).0 == .failed(.invalidHeader))
    }

    /// Every byte value in a header name, against RFC 9110's `tchar` spelled out here.
    @Test func headerNamesAreExactlyTokens() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max where byte != 0x0A && byte != UInt8(ascii: ":") {
            let request = bytes("GET / HTTP/1.1\r\nA") + [byte] + bytes("b: v\r\n\r\n")
            let (result, _) = parse([request])
            if tchar.contains(byte) {
                let head = completedHead(result)
                #expect(head?.headers.first?.name == String(decoding: [UInt8(ascii: "a"), byte, UInt8(ascii: "b")], as: UTF8.self).lowercased(),
                        "byte \(byte)")
            } else {
                #expect(result == .failed(.invalidHeader), "byte \(byte)")
            }
        }
    }

    @Test func acceptsObsTextInValues() throws {
        let (result, _) = parse([bytes("GET / HTTP/1.1\r\n") + [0x41, 0x3A, 0x20, 0xE9, 0x0D, 0x0A, 0x0D, 0x0A]])
        #expect(try #require(completedHead(result)).header("a") != nil)
    }

    @Test func rejectsObsoleteLineFolding() {
        #expect(parse([bytes("GET / HTTP/1.1\r\nA: a\r\n b\r\n\r\n")]).0 == .failed(.obsoleteLineFolding))
        #expect(parse([bytes("GET / HTTP/1.1\r\n\tA: a\r\n\r\n")]).0 == .failed(.obsoleteLineFolding))
    }

    @Test func headSizeLimitIsExactAndFailsBeforeTheEnd() throws {
        let text = bytes("GET / HTTP/1.1\r\nA: 0123456789\r\n\r\n")
        #expect(completedHead(parse([text], maxHeaderBytes: text.count).0) != nil)
        #expect(parse([text], maxHeaderBytes: text.count - 1).0 == .failed(.headTooLarge))
        // A head that never ends is refused as soon as it crosses the limit.
        var parser = HTTPRequestParser(maxHeaderBytes: 64)
        let start = bytes("GET / HTTP/1.1\r\nX: ")
        #expect(start.withUnsafeBytes { parser.feed($0) } == .needMore)
        let filler = [UInt8](repeating: UInt8(ascii: "a"), count: 64 - start.count)
        #expect(filler.withUnsafeBytes { parser.feed($0) } == .needMore)
        #expect([UInt8(ascii: "a")].withUnsafeBytes { parser.feed($0) } == .failed(.headTooLarge))
        #expect(HTTPParseError.headTooLarge.status == 431)
    }

    @Test func headerCountLimit() throws {
        let three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n"
        #expect(completedHead(parse([bytes(three + "\r\n")], maxHeaderCount: 3).0)?.headers.count == 3)
        #expect(parse([bytes(three + "D: 4\r\n\r\n")], maxHeaderCount: 3).0 == .failed(.tooManyHeaders))
        #expect(HTTPParseError.tooManyHeaders.status == 431)
        #expect(HTTPParseError.invalidHeader.status == 400)
    }

    @Test func terminalResultsRepeatUntilReset() throws {
        var parser = HTTPRequestParser()
        let first = bytes("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        let result = first.withUnsafeBytes { parser.feed($0) }
        let head = try #require(completedHead(result))
        #expect(result == .complete(head, consumed: 19))
        #expect(head.target == "/a")
        #expect(bytes("x").withUnsafeBytes { parser.feed($0) } == .complete(head, consumed: 0))
        parser.reset()
        let second = first[19...].withUnsafeBytes { parser.feed($0) }
        #expect(completedHead(second)?.target == "/b")

        var broken = HTTPRequestParser()
        #expect(bytes("BAD\r\n").withUnsafeBytes { broken.feed($0) } == .failed(.invalidRequestLine))
        #expect(bytes("GET / HTTP/1.1\r\n\r\n").withUnsafeBytes { broken.feed($0) } == .failed(.invalidRequestLine))
    }

    @Test func emptyFeedNeedsMore() {
        var parser = HTTPRequestParser()
        #expect([UInt8]().withUnsafeBytes { parser.feed($0) } == .needMore)
    }

    @Test(arguments: [
        ("/ws", "/ws"), ("/ws?x=1", "/ws"), ("/ws#frag", "/ws"), ("/", "/"), ("*", "*"),
        ("http://example.com/ws?q", "/ws"), ("https://example.com", "/"), ("http://h:80?x", "/"),
    ])
    func pathOfTarget(_ target: String, _ path: String) {
        let head = HTTPRequestHead(method: "GET", target: target, version: .http1_1, headers: [])
        #expect(head.path == path)
    }

    @Test func headerListKeepsCase() {
        let head = HTTPRequestHead(method: "GET", target: "/", version: .http1_1,
                                   headers: [(name: "Sec-WebSocket-Protocol", value: " Chat , superChat,,")])
        #expect(head.headers[0].name == "sec-websocket-protocol")
        #expect(head.headerList("sec-websocket-protocol") == ["Chat", "superChat"])
        #expect(head.headerTokens("Sec-WebSocket-Protocol") == ["chat", "superchat"])
    }
}
