#if canImport(Glibc)
import Glibc
#endif

/// A loopback port nothing listens on right now (and, with `clusterBus`, port + 10000 too, as
/// a Redis Cluster node needs). The kernel picks it (bind to port 0); another process may take
/// it before the caller binds, which is why callers start their server at once.
public func freePort(clusterBus: Bool = false) -> Int {
    for _ in 0..<200 {
        guard let port = bindLoopback(port: 0) else { continue }
        if !clusterBus { return port }
        if port + 10_000 <= 65_535, bindLoopback(port: port + 10_000) != nil { return port }
    }
    fatalError("no free loopback port")
}

/// Binds a TCP socket to 127.0.0.1:`port`, closes it, and returns the port that was bound.
private func bindLoopback(port: Int) -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = loopbackAddress(port: port)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { return nil }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// `127.0.0.1:port` as a `sockaddr_in`.
public func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

/// Connects `fd` to 127.0.0.1:`port`; the result of `connect` (0 on success).
public func connectLoopback(_ fd: Int32, port: Int) -> Int32 {
    var address = loopbackAddress(port: port)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}
