/// Why a request head was refused; `status` is the HTTP status to answer with.
public enum HTTPParseError: Error, Sendable, Hashable {
    /// The request line is not `method SP target SP HTTP/d.d` (400).
    case invalidRequestLine
    /// The request line names an HTTP major version other than 1 (505).
    case versionNotSupported
    /// A header line is malformed: bad name, missing colon, control character (400).
    case invalidHeader
    /// A header line starts with whitespace (obsolete line folding, RFC 9112 section 5.2) (400).
    case obsoleteLineFolding
    /// The head is longer than `maxHeaderBytes` (431).
    case headTooLarge
    /// The head has more than `maxHeaderCount` header fields (431).
    case tooManyHeaders

    /// The HTTP status code to answer with: 400, 431 or 505.
    public var status: Int {
        switch self {
        case .invalidRequestLine, .invalidHeader, .obsoleteLineFolding: return 400
        case .headTooLarge, .tooManyHeaders: return 431
        case .versionNotSupported: return 505
        }
    }

    /// The reason phrase that goes with `status`.
    public var reasonPhrase: String {
        switch status {
        case 431: return "Request Header Fields Too Large"
        case 505: return "HTTP Version Not Supported"
        default: return "Bad Request"
        }
    }
}

/// The outcome of feeding bytes to an `HTTPRequestParser`.
public enum HTTPParseResult: Sendable, Equatable {
    /// The head is not complete yet; every byte fed so far was consumed.
    case needMore
    /// The head is complete; `consumed` bytes of this feed belong to it, the rest follow it on the stream.
    case complete(HTTPRequestHead, consumed: Int)
    /// The head is malformed or too large; the connection should be answered and closed.
    case failed(HTTPParseError)
}

/// Incremental HTTP/1.1 request-head parser: accepts input split anywhere, CRLF or bare LF line
/// ends, ignores empty lines before the request line, and rejects obsolete line folding.
///
/// After `.complete` or `.failed`, further feeds return the same result (with `consumed: 0`)
/// until `reset()`.
public struct HTTPRequestParser: Sendable {
    /// The largest head accepted, in bytes, counting line ends and the final empty line.
    public let maxHeaderBytes: Int
    /// The largest number of header fields accepted.
    public let maxHeaderCount: Int

    private var line: [UInt8] = []
    private var headBytes = 0
    private var requestLine: (method: String, target: String, version: HTTPVersion)?
    private var headers: [(name: String, value: String)] = []
    private var finished: HTTPParseResult?

    /// A parser refusing heads over `maxHeaderBytes` bytes or with more than `maxHeaderCount` fields.
    public init(maxHeaderBytes: Int = 16384, maxHeaderCount: Int = 100) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
    }

    /// Forgets everything, ready for a new request head.
    public mutating func reset() {
        self = HTTPRequestParser(maxHeaderBytes: maxHeaderBytes, maxHeaderCount: maxHeaderCount)
    }

    /// Consumes the next bytes of the stream, up to the end of the head.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> HTTPParseResult {
        if let finished {
            if case .complete(let head, _) = finished { return .complete(head, consumed: 0) }
            return finished
        }
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress else { return .needMore }
        var index = 0
        while index < count {
            // Find the next LF in this feed.
            let rest = UnsafeRawBufferPointer(start: base + index, count: count - index)
            let end = rest.firstIndex(of: 0x0A).map { index + $0 } ?? count
            let lineEnded = end < count
            let taken = end - index + (lineEnded ? 1 : 0)
            if headBytes + taken > maxHeaderBytes { return fail(.headTooLarge) }
            headBytes += taken
            let piece = UnsafeRawBufferPointer(start: base + index, count: end - index)
            index += taken
            guard lineEnded else {
                line.append(contentsOf: piece)
                break
            }
            let result: HTTPParseResult?
            if line.isEmpty {
                result = finishLine(piece)  // the whole line is in this feed: read it in place
            } else {
                line.append(contentsOf: piece)
                result = line.withUnsafeBytes { finishLine($0) }
                line.removeAll(keepingCapacity: true)
            }
            if let result {
                if case .complete(let head, _) = result {
                    finished = .complete(head, consumed: 0)
                    return .complete(head, consumed: index)
                }
                return result
            }
        }
        return .needMore
    }

    private mutating func fail(_ error: HTTPParseError) -> HTTPParseResult {
        line = []
        headers = []
        finished = .failed(error)
        return .failed(error)
    }

    /// Handles one line (without its LF); non-nil when the head is finished.
    private mutating func finishLine(_ bytes: UnsafeRawBufferPointer) -> HTTPParseResult? {
        var line = bytes
        if line.last == 0x0D { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
        guard let request = requestLine else {
            if line.isEmpty { return nil }  // RFC 9112 section 2.2: ignore empty lines before the request line.
            guard let parsed = Self.parseRequestLine(line) else { return fail(.invalidRequestLine) }
            guard parsed.version.major == 1 else { return fail(.versionNotSupported) }
            requestLine = parsed
            return nil
        }
        if line.isEmpty {
            let head = HTTPRequestHead(method: request.method, target: request.target,
                                       version: request.version, lowercasedHeaders: headers)
            return .complete(head, consumed: 0)
        }
        if line[0] == 0x20 || line[0] == 0x09 { return fail(.obsoleteLineFolding) }
        guard headers.count < maxHeaderCount else { return fail(.tooManyHeaders) }
        guard let field = Self.parseHeaderLine(line) else { return fail(.invalidHeader) }
        if headers.isEmpty { headers.reserveCapacity(8) }
        headers.append(field)
        return nil
    }

    /// `method SP request-target SP HTTP/d.d`, single spaces, nothing else.
    static func parseRequestLine(_ line: UnsafeRawBufferPointer) -> (method: String, target: String, version: HTTPVersion)? {
        guard let firstSpace = line.firstIndex(of: 0x20) else { return nil }
        let method = UnsafeRawBufferPointer(rebasing: line[..<firstSpace])
        let afterMethod = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)...])
        guard let secondSpace = afterMethod.firstIndex(of: 0x20) else { return nil }
        let target = UnsafeRawBufferPointer(rebasing: afterMethod[..<secondSpace])
        let version = UnsafeRawBufferPointer(rebasing: afterMethod[(secondSpace + 1)...])
        guard !method.isEmpty, method.allSatisfy(isTokenByte) else { return nil }
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        guard version.count == 8, version[0] == UInt8(ascii: "H"), version[1] == UInt8(ascii: "T"),
              version[2] == UInt8(ascii: "T"), version[3] == UInt8(ascii: "P"), version[4] == UInt8(ascii: "/"),
              isDigit(version[5]), version[6] == UInt8(ascii: "."), isDigit(version[7])
        else { return nil }
        return (String(decoding: method, as: UTF8.self), String(decoding: target, as: UTF8.self),
                HTTPVersion(major: version[5] - 0x30, minor: version[7] - 0x30))
    }

    /// `name ":" OWS value OWS`; the name must be a token, the value free of control characters
    /// but HTAB. The name comes back lowercased, written once into the string's own storage.
    /// One pass over the bytes by offset (the generic slice algorithms cost ~1,000 instructions
    /// a line, and a handshake has five or more).
    static func parseHeaderLine(_ line: UnsafeRawBufferPointer) -> (name: String, value: String)? {
        let count = line.count
        guard count > 0, let base = line.baseAddress else { return nil }
        @inline(__always) func at(_ offset: Int) -> UInt8 { base.load(fromByteOffset: offset, as: UInt8.self) }
        // The name: token bytes up to the first colon (a colon is not a token byte).
        var colon = 0
        while colon < count, at(colon) != UInt8(ascii: ":") {
            guard isTokenByte(at(colon)) else { return nil }
            colon += 1
        }
        guard colon > 0, colon < count else { return nil }
        var start = colon + 1
        var end = count
        while start < end, at(start) == 0x20 || at(start) == 0x09 { start += 1 }
        while end > start, at(end - 1) == 0x20 || at(end - 1) == 0x09 { end -= 1 }
        for offset in start..<end {
            let byte = at(offset)
            guard byte == 0x09 || (byte >= 0x20 && byte != 0x7F) else { return nil }
        }
        let lowered = String(unsafeUninitializedCapacity: colon) { out in
            for offset in 0..<colon {
                let byte = at(offset)
                out[offset] = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            }
            return colon
        }
        return (lowered, String(decoding: UnsafeRawBufferPointer(start: base + start, count: end - start), as: UTF8.self))
    }
}

@inline(__always)
func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

/// RFC 9110 `tchar`, as a bit per byte value for 0...127 in two words (bit `b & 63` of word
/// `b >> 6`): letters, digits and `!#$%&'*+-.^_`|~`. CodecTests checks every byte against that list.
private let tokenBitsLow: UInt64 = 0x03ff_6cfa_0000_0000
private let tokenBitsHigh: UInt64 = 0x57ff_ffff_c7ff_fffe

/// RFC 9110 `tchar`.
@inline(__always)
func isTokenByte(_ byte: UInt8) -> Bool {
    let word = byte < 64 ? tokenBitsLow : byte < 128 ? tokenBitsHigh : 0
    return word >> UInt64(byte & 63) & 1 == 1
}
