import Glibc

/// `URingDriver` cannot run here: io_uring is missing, forbidden, or lacks a feature the
/// driver needs. Thrown by the driver's initializer, so that a caller can fall back to the
/// epoll driver (`switchboard-fixture --driver uring` does, with one log line).
public struct URingUnavailable: Error, Sendable, CustomStringConvertible {
    /// The step that failed: `io_uring_setup`, `IORING_REGISTER_PBUF_RING (...)`, ...
    public let step: String
    public let code: Int32

    public init(step: String, code: Int32) {
        self.step = step
        self.code = code
    }

    /// The step, the errno text and, for the usual errnos, what forbids io_uring.
    public var description: String {
        let text = strerror(code).map { String(cString: $0) } ?? "errno \(code)"
        var why = ""
        switch code {
        case ENOSYS:
            why = " (the kernel has no io_uring, or a seccomp filter hides it)"
        case EPERM, EACCES:
            let sysctl = Self.disabledSysctl.map { "kernel.io_uring_disabled is \($0)" } ?? "no kernel.io_uring_disabled"
            why = " (forbidden: \(sysctl); containers often block io_uring with seccomp)"
        default:
            break
        }
        return "io_uring unavailable: \(step): \(text) (errno \(code))\(why)"
    }

    /// `/proc/sys/kernel/io_uring_disabled` (Linux 6.6): 0 allowed, 1 only for a group, 2 off.
    static var disabledSysctl: String? {
        guard let file = fopen("/proc/sys/kernel/io_uring_disabled", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 16)
        guard fgets(&line, 16, file) != nil else { return nil }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.trimmingSuffix()
    }
}

private extension String {
    func trimmingSuffix() -> String {
        var text = self
        while let last = text.last, last == "\n" || last == " " { text.removeLast() }
        return text
    }
}
