import Glibc
import SwitchboardDriverSupport

/// One accepted connection. The low 24 bits are the loop's slot index, the high 40 bits a
/// process-wide serial, so a value is never reused within a process.
public struct SocketID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "conn#\(rawValue >> 24).\(rawValue & 0xFF_FFFF)" }
}

/// A listening socket of one `EventLoop` (its index in `listen` call order).
public struct ListenerID: Hashable, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
}

/// Monotonic time in milliseconds (`CLOCK_MONOTONIC`).
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var milliseconds: Int64
    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    /// Reads the clock now (not cached; `EventLoop.now` is the per-turn cached value).
    public static var monotonic: Instant { Instant(milliseconds: monotonicMilliseconds()) }

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.milliseconds < rhs.milliseconds }
    public static func + (lhs: Instant, milliseconds: Int64) -> Instant {
        Instant(milliseconds: lhs.milliseconds &+ milliseconds)
    }
    public static func + (lhs: Instant, milliseconds: Int) -> Instant {
        Instant(milliseconds: lhs.milliseconds &+ Int64(milliseconds))
    }
    /// Milliseconds from `rhs` to `lhs`.
    public static func - (lhs: Instant, rhs: Instant) -> Int64 { lhs.milliseconds &- rhs.milliseconds }
    public var description: String { "\(milliseconds)ms" }
}

/// Why a connection ended. `connectionClosed` reports it exactly once per accepted connection.
public enum CloseReason: Hashable, Sendable {
    /// The peer sent FIN (read returned 0).
    case peerClosed
    /// `close(_:flushFirst:)` was called; reported for every close that follows it.
    case closedLocally
    /// The peer reset the connection (`ECONNRESET`, or hang-up while reading was paused).
    case reset
    /// Any other socket error, with its errno (for example `EPIPE`, `ETIMEDOUT`).
    case error(Int32)
    /// TLS listeners only: the handshake failed or timed out, or the peer broke the TLS
    /// protocol. Carries OpenSSL's reason (`http request` for plain HTTP sent to the TLS
    /// port, `wrong version number`, `tlsv1 alert unknown ca`, ...) or `handshake timed out`.
    case tlsFailed(String)
}

/// The remote address of an accepted connection.
public struct PeerAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Hashable, Sendable { case ipv4, ipv6, other }
    public let family: Family
    public let port: Int
    /// Address bytes in network order (IPv4 uses the first 4 of `high`'s bytes).
    let high: UInt64
    let low: UInt64

    init(_ storage: sockaddr_storage) {
        var storage = storage
        let raw = withUnsafeBytes(of: &storage) { UnsafeRawBufferPointer($0) }
        func port(at offset: Int) -> Int {
            Int(raw[offset]) << 8 | Int(raw[offset + 1])
        }
        switch Int32(storage.ss_family) {
        case AF_INET:
            family = .ipv4
            self.port = port(at: 2)
            high = UInt64(raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            low = 0
        case AF_INET6:
            family = .ipv6
            self.port = port(at: 2)
            high = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            low = raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        default:
            family = .other
            self.port = 0
            high = 0
            low = 0
        }
    }

    /// An address from an IPv4 or IPv6 literal (for tests and custom drivers); nil if `host`
    /// is not a literal.
    public init?(host: String, port: Int) {
        var storage = sockaddr_storage()
        let v6 = host.contains(":")
        let parsed: Int32 = withUnsafeMutableBytes(of: &storage) { raw in
            raw.storeBytes(of: sa_family_t(v6 ? AF_INET6 : AF_INET), toByteOffset: 0, as: sa_family_t.self)
            raw.storeBytes(of: UInt16(truncatingIfNeeded: port).bigEndian, toByteOffset: 2, as: UInt16.self)
            return inet_pton(v6 ? AF_INET6 : AF_INET, host, raw.baseAddress! + (v6 ? 8 : 4))
        }
        guard parsed == 1, (0...65535).contains(port) else { return nil }
        self.init(storage)
    }

    /// Numeric host text (`inet_ntop`), e.g. `127.0.0.1` or `::1`.
    public var host: String {
        var words = (high, low)
        if family == .ipv4 {
            return withUnsafeBytes(of: &words) { IPv4Text.dottedDecimal(UnsafeRawBufferPointer(rebasing: $0[0..<4])) }
        }
        var text = [CChar](repeating: 0, count: 64)
        let ok: Bool = withUnsafeBytes(of: &words) { raw in
            switch family {
            case .ipv4: return inet_ntop(AF_INET, raw.baseAddress, &text, 64) != nil
            case .ipv6: return inet_ntop(AF_INET6, raw.baseAddress, &text, 64) != nil
            case .other: return false
            }
        }
        guard ok else { return "?" }
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    public var description: String {
        family == .ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// `EventLoop.listen` failed. `description` names the address, the call and the errno text.
public struct ListenError: Error, Sendable, CustomStringConvertible {
    /// The requested address as `host:port` (`[v6]:port` for IPv6).
    public let address: String
    /// The step that failed: `parse address`, `socket`, `bind`, `listen`, `getsockname`, `epoll_ctl`.
    public let operation: String
    public let code: Int32
    public var message: String { errnoText(code) }
    public var description: String {
        "cannot listen on \(address): \(operation): \(message) (errno \(code))"
    }
}

/// `EventLoop.init` failed to create its epoll or eventfd descriptor.
public struct EventLoopError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let code: Int32
    public var description: String { "\(operation): \(errnoText(code)) (errno \(code))" }
}
