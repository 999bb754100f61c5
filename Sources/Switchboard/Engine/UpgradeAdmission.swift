import SwitchboardCodec

/// Which browser pages may open a WebSocket (`ServerOptions.allowedOrigins`). Browsers send
/// `Origin` with every WebSocket request and let any page connect anywhere, so without this a
/// page on another site could use a logged-in user's cookies; clients that are not browsers
/// send no `Origin` and are not affected.
struct OriginPolicy {
    /// Lowercased `scheme://host[:port]`; nil admits every origin.
    private let allowed: Set<String>?

    init(_ origins: [String]?) {
        let normalized = (origins ?? []).map { OriginPolicy.normalize($0) }
        allowed = normalized.isEmpty ? nil : Set(normalized)
    }

    /// Whether a request with this `Origin` header (nil: none) may upgrade.
    func admits(_ origin: String?) -> Bool {
        guard let allowed, let origin else { return true }
        return allowed.contains(OriginPolicy.normalize(origin))
    }

    /// Scheme and host are case-insensitive (RFC 6454 compares them lowercased); a trailing `/`
    /// in a configured entry is forgiven. The port is compared as written.
    static func normalize(_ origin: String) -> String {
        var text = origin.lowercased()
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }
}

/// The client's address behind reverse proxies (`ServerOptions.trustedProxies`): a proxy's
/// TCP connection carries many clients, so the per-address limit must count the address the
/// proxy reports. Only a trusted peer's header is read; anyone else could write any address.
struct ProxyAddresses {
    private let trusted: Set<String>

    init(_ proxies: [String]) {
        trusted = Set(proxies.map(ProxyAddresses.normalize))
    }

    var isEmpty: Bool { trusted.isEmpty }

    func isTrusted(_ peer: String) -> Bool {
        !trusted.isEmpty && trusted.contains(ProxyAddresses.normalize(peer))
    }

    /// For a request from a trusted proxy: the rightmost address of `X-Forwarded-For` (or,
    /// without it, of `Forwarded`'s `for=` elements) that is not a trusted proxy. Each proxy
    /// appends the address it received from, so the entries left of the last untrusted one
    /// were written by the client and prove nothing. All trusted: the leftmost; neither header:
    /// the proxy's own address.
    func clientAddress(peer: String, head: HTTPRequestHead) -> String {
        var chain = head.headerList("x-forwarded-for")
        if chain.isEmpty { chain = ProxyAddresses.forwardedFor(head.headerList("forwarded")) }
        let addresses = chain.map(ProxyAddresses.normalize)
        return addresses.last { !trusted.contains($0) } ?? addresses.first ?? ProxyAddresses.normalize(peer)
    }

    /// The `for=` values of RFC 7239 elements, in order (quotes removed; elements without one skipped).
    static func forwardedFor(_ elements: [String]) -> [String] {
        elements.compactMap { element in
            for pair in element.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingBlanks().lowercased() == "for" else { continue }
                var value = Substring(parts[1].trimmingBlanks())
                if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
                return String(value)
            }
            return nil
        }
    }

    /// An address as the driver prints a peer: lowercase, no brackets or port (`[::1]:80` ->
    /// `::1`, `10.0.0.1:5000` -> `10.0.0.1`), an IPv4-mapped IPv6 address as IPv4.
    static func normalize(_ address: String) -> String {
        var text = Substring(address.trimmingBlanks().lowercased())
        if text.hasPrefix("[") {
            text = text.dropFirst().prefix { $0 != "]" }
        } else if text.filter({ $0 == ":" }).count == 1 {
            text = text.prefix { $0 != ":" }
        }
        if text.hasPrefix("::ffff:"), text.contains(".") { text = text.dropFirst(7) }
        return String(text)
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    fileprivate func trimmingBlanks() -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isBlank($0) }), let last = lastIndex(where: { !isBlank($0) }) else { return "" }
        return String(self[first...last])
    }
}
