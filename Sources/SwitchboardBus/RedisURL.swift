/// Where Redis is: `redis://[[user]:password@]host[:port][/db]`, or a list of nodes
/// `redis://[[user]:password@]a:p1,b:p2,c:p3` (a Redis Cluster, or any set of servers to fail
/// over between). Credentials are percent-decoded; the port defaults to 6379 and the database to 0.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public struct Node: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int = 6379) {
            self.host = host
            self.port = port
        }
        /// `host:port`, with brackets around an IPv6 address.
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// In the order given; connections try them round-robin from the first.
    public var nodes: [Node]
    /// Sent as `AUTH username password` (Redis 6 ACL) when both are set.
    public var username: String?
    /// Sent as `AUTH password` on every connection when set and non-empty.
    public var password: String?
    /// `SELECT`ed on every connection when not 0 (pub/sub ignores it; kept for fidelity).
    public var database: Int

    public init(nodes: [Node], username: String? = nil, password: String? = nil, database: Int = 0) {
        precondition(!nodes.isEmpty, "RedisURL needs at least one node")
        self.nodes = nodes
        self.username = username
        self.password = password
        self.database = database
    }

    public init(_ string: String) throws(RedisURLError) {
        self = try RedisURL.parse(string)
    }

    /// More than one node.
    public var isCluster: Bool { nodes.count > 1 }

    /// The URL with the password replaced by `***`, safe to log.
    public var description: String {
        var text = "redis://"
        if username != nil || password != nil {
            text += username ?? ""
            if password != nil { text += ":***" }
            text += "@"
        }
        text += nodes.map(\.description).joined(separator: ",")
        if database != 0 { text += "/\(database)" }
        return text
    }
}

/// Why a Redis URL was rejected; `description` is the message to show.
public enum RedisURLError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case missingScheme(String)
    case unsupportedScheme(String)
    case missingHost(String)
    case invalidHost(String)
    case invalidPort(String)
    case invalidDatabase(String)
    case databaseInCluster(Int)
    case invalidEscape(String)
    case unsupportedQuery(String)

    public var description: String {
        switch self {
        case .empty: "the Redis URL is empty"
        case .missingScheme(let url): "'\(url)' is not a Redis URL: expected redis://host:port"
        case .unsupportedScheme(let scheme) where scheme == "rediss":
            "TLS (rediss://) is not supported; use redis://"
        case .unsupportedScheme(let scheme): "unsupported scheme '\(scheme)://'; expected redis://"
        case .missingHost(let url): "no host in Redis URL '\(url)'"
        case .invalidHost(let host) where host.contains(":"):
            "invalid host '\(host)' in Redis URL (write IPv6 as [::1]:6379)"
        case .invalidHost(let host): "invalid host '\(host)' in Redis URL"
        case .invalidPort(let port): "invalid port '\(port)' in Redis URL: expected 1 to 65535"
        case .invalidDatabase(let db): "invalid database '\(db)' in Redis URL: expected a number after '/'"
        case .databaseInCluster(let db): "database \(db) with several nodes: a Redis Cluster has only database 0"
        case .invalidEscape(let part): "invalid percent-escape in '\(part)' in Redis URL"
        case .unsupportedQuery(let query): "query options ('\(query)') are not supported in Redis URL"
        }
    }
}

extension RedisURL {
    static func parse(_ input: String) throws(RedisURLError) -> RedisURL {
        let text = String(input.trimmingASCIIWhitespace())
        if text.isEmpty { throw .empty }
        guard let schemeEnd = text.firstRange(of: "://") else { throw .missingScheme(text) }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "redis" else { throw .unsupportedScheme(scheme) }
        var rest = text[schemeEnd.upperBound...]

        if let query = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            throw .unsupportedQuery(String(rest[query...]))
        }
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var username: String?, password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = try percentDecoded(userinfo[..<colon])
                username = user.isEmpty ? nil : user
                password = try percentDecoded(userinfo[userinfo.index(after: colon)...])
            } else if !userinfo.isEmpty {
                username = try percentDecoded(userinfo)
            }
        }
        if rest.isEmpty { throw .missingHost(text) }
        var nodes: [Node] = []
        for part in rest.split(separator: ",", omittingEmptySubsequences: false) {
            nodes.append(try node(part, url: text))
        }
        var database = 0
        if !path.isEmpty {
            guard path.allSatisfy(\.isASCIIDigit), path.count <= 9, let db = Int(path) else {
                throw .invalidDatabase(String(path))
            }
            database = db
        }
        if nodes.count > 1 && database != 0 { throw .databaseInCluster(database) }
        return RedisURL(nodes: nodes, username: username, password: password, database: database)
    }

    private static func node(_ part: Substring, url: String) throws(RedisURLError) -> Node {
        var host: Substring, port: Substring?
        if part.hasPrefix("[") {
            guard let close = part.firstIndex(of: "]") else { throw .invalidHost(String(part)) }
            host = part[part.index(after: part.startIndex)..<close]
            let after = part[part.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw .invalidHost(String(part)) }
                port = after.dropFirst()
            }
            if host.isEmpty || !host.contains(":") { throw .invalidHost(String(part)) }
        } else if let colon = part.firstIndex(of: ":") {
            if part[part.index(after: colon)...].contains(":") { throw .invalidHost(String(part)) }
            host = part[..<colon]
            port = part[part.index(after: colon)...]
        } else {
            host = part
        }
        if host.isEmpty { throw .missingHost(url) }
        if host.contains(where: { $0 == "@" || $0 == "[" || $0 == "]" || $0.isWhitespace }) {
            throw .invalidHost(String(host))
        }
        guard let port else { return Node(host: String(host)) }
        guard !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCIIDigit),
              let number = Int(port), (1...65535).contains(number) else {
            throw .invalidPort(String(port))
        }
        return Node(host: String(host), port: number)
    }

    private static func percentDecoded(_ text: Substring) throws(RedisURLError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var utf8 = text.utf8[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = utf8.popFirst().flatMap(hexValue), let low = utf8.popFirst().flatMap(hexValue) else {
                throw .invalidEscape(String(text))
            }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    fileprivate func trimmingASCIIWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return self[first...last]
    }
}
