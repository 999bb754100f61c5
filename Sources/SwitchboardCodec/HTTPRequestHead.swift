/// An HTTP version such as `HTTP/1.1`.
public struct HTTPVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The major version digit.
    public var major: UInt8
    /// The minor version digit.
    public var minor: UInt8

    /// A version from its two digits.
    public init(major: UInt8, minor: UInt8) {
        self.major = major
        self.minor = minor
    }

    /// HTTP/1.0.
    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    /// HTTP/1.1.
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    /// Orders by major, then minor.
    public static func < (lhs: HTTPVersion, rhs: HTTPVersion) -> Bool {
        (lhs.major, lhs.minor) < (rhs.major, rhs.minor)
    }

    /// The wire form, e.g. `HTTP/1.1`.
    public var description: String { "HTTP/\(major).\(minor)" }
}

/// A parsed HTTP/1.x request head (request line and header fields, no body).
public struct HTTPRequestHead: Sendable, Equatable {
    /// The method token, case preserved (methods are case-sensitive).
    public var method: String
    /// The request target exactly as sent (origin form `/path?query`, or absolute form).
    public var target: String
    /// The protocol version of the request line.
    public var version: HTTPVersion
    /// Header fields in arrival order; names are lowercased, values trimmed of surrounding whitespace.
    public var headers: [(name: String, value: String)]

    /// A head from its parts; header names are lowercased here.
    public init(method: String, target: String, version: HTTPVersion, headers: [(name: String, value: String)]) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers.map { (name: asciiLowercased($0.name), value: $0.value) }
    }

    /// A head whose header names are lowercase already (the parser's): nothing to map.
    init(method: String, target: String, version: HTTPVersion, lowercasedHeaders headers: [(name: String, value: String)]) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
    }

    /// Field-wise equality (header order matters).
    public static func == (lhs: HTTPRequestHead, rhs: HTTPRequestHead) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.version == rhs.version
            && lhs.headers.count == rhs.headers.count
            && zip(lhs.headers, rhs.headers).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    /// The value of header `name` (case-insensitive); repeated fields are joined with ", ".
    public func header(_ name: String) -> String? {
        header(lowercased: asciiLowercased(name))
    }

    /// `header(_:)` for a name given in lowercase (the upgrade checks' literals): not lowercased again.
    func header(lowercased wanted: String) -> String? {
        var result: String?
        for field in headers where Self.name(field.name, is: wanted) {
            if let existing = result {
                result = existing + ", " + field.value
            } else {
                result = field.value
            }
        }
        return result
    }

    /// The comma-separated elements of header `name` over all its fields, trimmed, case preserved, empties dropped.
    public func headerList(_ name: String) -> [String] {
        headerList(lowercased: asciiLowercased(name))
    }

    /// `headerList(_:)` for a name given in lowercase.
    func headerList(lowercased wanted: String) -> [String] {
        var items: [String] = []
        for field in headers where Self.name(field.name, is: wanted) {
            for item in field.value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true) {
                let trimmed = trimOWS(item)
                if !trimmed.isEmpty { items.append(String(decoding: trimmed, as: UTF8.self)) }
            }
        }
        return items
    }

    /// The comma-separated tokens of header `name`, trimmed and lowercased, empties dropped.
    public func headerTokens(_ name: String) -> [String] {
        headerList(name).map(asciiLowercased)
    }

    /// Whether `headerTokens(name)` contains `token` (lowercase ASCII), found in place: no list,
    /// no strings built (the upgrade checks run once per connection). `name` is lowercase.
    func hasToken(_ name: String, _ token: StaticString) -> Bool {
        let tokenBytes = UnsafeRawBufferPointer(start: token.utf8Start, count: token.utf8CodeUnitCount)
        for field in headers where Self.name(field.name, is: name) {
            var value = field.value
            let found = value.withUTF8 { bytes in
                var start = 0
                while start <= bytes.count {
                    let end = bytes[start...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.count
                    if asciiCaseInsensitiveEqual(trimOWS(bytes[start..<end]), tokenBytes) { return true }
                    start = end + 1
                }
                return false
            }
            if found { return true }
        }
        return false
    }

    /// Whether a field's lowercase name is `wanted` (lowercase). The byte counts first: they
    /// differ for almost every pair a lookup meets, and a native string knows its count, while
    /// `==` on two heap strings goes through the general comparison.
    @inline(__always)
    static func name(_ name: String, is wanted: String) -> Bool {
        name.utf8.count == wanted.utf8.count && name == wanted
    }

    /// Whether `path == wanted`, deciding the common origin form (`/path`, no query) without
    /// building the path string.
    func hasPath(_ wanted: String) -> Bool {
        var target = target
        let plain = target.withUTF8 { bytes in
            bytes.first == UInt8(ascii: "/") && !bytes.contains { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }
        }
        return plain ? target == wanted : path == wanted
    }

    /// The path of `target`: query and fragment removed; scheme and authority removed from an absolute form.
    public var path: String {
        var bytes = Substring(target).utf8[...]
        if bytes.first != UInt8(ascii: "/"), let schemeEnd = findSubsequence(bytes, Array("://".utf8)) {
            let afterAuthority = bytes[schemeEnd...].dropFirst(3)
            if let slash = afterAuthority.firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }) {
                bytes = afterAuthority[slash...]
            } else {
                return "/"
            }
            if bytes.first == UInt8(ascii: "?") { return "/" }
        }
        if let end = bytes.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            bytes = bytes[..<end]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// ASCII-only lowercasing (header names and tokens are ASCII; other bytes are left alone).
func asciiLowercased(_ text: String) -> String {
    var text = text
    // Over the contiguous bytes: `String.UTF8View.contains(where:)` costs ~300 instructions for
    // a header name, four of which every handshake asks about.
    let hasUpper = text.withUTF8 { bytes in bytes.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") } }
    guard hasUpper else { return text }
    return String(decoding: text.utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 }, as: UTF8.self)
}

/// Whether `bytes` equals `lowercase` (lowercase ASCII) but for the case of its letters.
func asciiCaseInsensitiveEqual(_ bytes: Slice<UnsafeBufferPointer<UInt8>>, _ lowercase: UnsafeRawBufferPointer) -> Bool {
    guard bytes.count == lowercase.count else { return false }
    for (byte, wanted) in zip(bytes, lowercase) where byte != wanted {
        let isLetter = wanted >= UInt8(ascii: "a") && wanted <= UInt8(ascii: "z")
        guard isLetter, byte | 0x20 == wanted else { return false }
    }
    return true
}

/// Removes leading and trailing spaces and tabs.
func trimOWS<C: BidirectionalCollection>(_ bytes: C) -> C.SubSequence where C.Element == UInt8 {
    var slice = bytes[...]
    while let first = slice.first, first == 0x20 || first == 0x09 { slice = slice.dropFirst() }
    while let last = slice.last, last == 0x20 || last == 0x09 { slice = slice.dropLast() }
    return slice
}

/// The index at which `needle` first occurs in `haystack`.
func findSubsequence<C: Collection>(_ haystack: C, _ needle: [UInt8]) -> C.Index? where C.Element == UInt8 {
    var index = haystack.startIndex
    while index != haystack.endIndex {
        if haystack[index...].starts(with: needle) { return index }
        index = haystack.index(after: index)
    }
    return nil
}
