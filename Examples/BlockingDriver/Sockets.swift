#if canImport(Glibc)
import Glibc
#endif
import Switchboard

/// The few socket calls the `BlockingDriver` needs: a listener, its port, a peer's address.
extension BlockingDriver {
    struct SocketError: Error, CustomStringConvertible {
        let description: String
        init(_ call: String) { description = "\(call): \(String(cString: strerror(errno)))" }
    }

    static func listen(host: String, port: Int) throws -> Int32 {
        var storage = sockaddr_storage()
        let v6 = host.contains(":")
        let family = v6 ? AF_INET6 : AF_INET
        let parsed = withUnsafeMutableBytes(of: &storage) { raw -> Int32 in
            raw.storeBytes(of: sa_family_t(family), toByteOffset: 0, as: sa_family_t.self)
            raw.storeBytes(of: UInt16(truncatingIfNeeded: port).bigEndian, toByteOffset: 2, as: UInt16.self)
            return inet_pton(family, host, raw.baseAddress! + (v6 ? 8 : 4))
        }
        guard parsed == 1 else { throw SocketError("inet_pton(\(host))") }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let length = socklen_t(v6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, Glibc.listen(fd, 128) == 0 else {
            let error = SocketError(bound == 0 ? "listen" : "bind")
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    static func boundPort(_ fd: Int32) throws -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard ok == 0 else { throw SocketError("getsockname") }
        return withUnsafeBytes(of: &storage) { Int($0[2]) << 8 | Int($0[3]) }
    }

    /// The peer's numeric host (`127.0.0.1`, `::1`), or `?`.
    static func peerHost(_ fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        guard ok == 0 else { return "?" }
        var text = [CChar](repeating: 0, count: 64)
        let v6 = Int32(storage.ss_family) == AF_INET6
        let written = withUnsafeBytes(of: &storage) { raw in
            inet_ntop(v6 ? AF_INET6 : AF_INET, raw.baseAddress! + (v6 ? 8 : 4), &text, 64)
        }
        guard written != nil else { return "?" }
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
