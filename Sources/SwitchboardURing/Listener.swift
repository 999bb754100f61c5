import Glibc
import Switchboard

/// The listening socket of a `URingDriver`, and the peer address of an accepted one.
enum Listener {
    struct Failure: Error, CustomStringConvertible {
        let address: String
        let operation: String
        let code: Int32
        var description: String {
            "cannot listen on \(address): \(operation): \(String(cString: strerror(code))) (errno \(code))"
        }
    }

    /// A bound, listening TCP socket: `host` an IPv4 or IPv6 literal (`[::1]` allowed),
    /// `localhost`, or empty/`*` for every IPv4 address; port 0 picks one. `TCP_NODELAY` is
    /// set here, on the listener: Linux copies it to every accepted socket, which saves the
    /// `setsockopt` per connection that the epoll driver makes.
    static func open(host: String, port: Int, reusePort: Bool) throws(Failure) -> (fd: Int32, port: Int) {
        var literal = host
        if literal.hasPrefix("["), literal.hasSuffix("]") { literal = String(literal.dropFirst().dropLast()) }
        if literal.isEmpty || literal == "*" { literal = "0.0.0.0" }
        if literal == "localhost" { literal = "127.0.0.1" }
        let isV6 = literal.contains(":")
        let address = isV6 ? "[\(literal)]:\(port)" : "\(literal):\(port)"
        guard (0...65535).contains(port) else { throw Failure(address: address, operation: "parse address", code: EINVAL) }
        var storage = sockaddr_storage()
        let parsed: Int32 = withUnsafeMutableBytes(of: &storage) { raw in
            raw.storeBytes(of: sa_family_t(isV6 ? AF_INET6 : AF_INET), toByteOffset: 0, as: sa_family_t.self)
            raw.storeBytes(of: UInt16(port).bigEndian, toByteOffset: 2, as: UInt16.self)
            return inet_pton(isV6 ? AF_INET6 : AF_INET, literal, raw.baseAddress! + (isV6 ? 8 : 4))
        }
        guard parsed == 1 else { throw Failure(address: address, operation: "parse address", code: EINVAL) }
        let length = socklen_t(isV6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let fd = socket(isV6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(address: address, operation: "socket", code: errno) }
        func abandon(_ operation: String) -> Failure {
            let code = errno
            Glibc.close(fd)
            return Failure(address: address, operation: operation, code: code)
        }
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size) == 0 else { throw abandon("setsockopt(SO_REUSEADDR)") }
        if reusePort, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size) != 0 { throw abandon("setsockopt(SO_REUSEPORT)") }
        guard setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, size) == 0 else { throw abandon("setsockopt(TCP_NODELAY)") }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw abandon("bind") }
        guard listen(fd, 4096) == 0 else { throw abandon("listen") }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        guard named == 0 else { throw abandon("getsockname") }
        let boundPort = withUnsafeBytes(of: &actual) { Int($0[2]) << 8 | Int($0[3]) }
        return (fd, boundPort)
    }

    /// The numeric host of the peer of `fd` (`127.0.0.1`, `::1`), `?` if unknown. A multishot
    /// accept has no per-connection address buffer (one would be overwritten by the next
    /// accept before the loop reads it), so the address is asked for once per connection.
    static func peerHost(_ fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        guard named == 0 else { return "?" }
        let family = Int32(storage.ss_family)
        return withUnsafeBytes(of: &storage) { raw -> String in
            switch family {
            case AF_INET:
                return IPv4Text.dottedDecimal(UnsafeRawBufferPointer(rebasing: raw[4..<8]))
            case AF_INET6:
                var text = [CChar](repeating: 0, count: 64)
                guard inet_ntop(AF_INET6, raw.baseAddress! + 8, &text, 64) != nil else { return "?" }
                return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            default:
                return "?"
            }
        }
    }
}
