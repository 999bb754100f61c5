import Glibc

/// Linux calls that Swift's `Glibc` module does not export (`sys/epoll.h`, `sys/eventfd.h`,
/// `sys/signalfd.h`, `accept4`). They are resolved once with `dlsym` and called through
/// `@convention(c)` pointers, so the C calling convention is exact.
struct LinuxCalls: @unchecked Sendable {
    typealias EpollCreate1 = @convention(c) (Int32) -> Int32
    typealias EpollCtl = @convention(c) (Int32, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
    typealias EpollWait = @convention(c) (Int32, UnsafeMutableRawPointer?, Int32, Int32) -> Int32
    typealias EventFD = @convention(c) (UInt32, Int32) -> Int32
    typealias SignalFD = @convention(c) (Int32, UnsafePointer<sigset_t>?, Int32) -> Int32
    typealias Accept4 = @convention(c) (
        Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32
    ) -> Int32

    let epollCreate1: EpollCreate1
    let epollCtl: EpollCtl
    let epollWait: EpollWait
    let eventfd: EventFD
    let signalfd: SignalFD
    let accept4: Accept4

    static let shared = LinuxCalls()

    private init() {
        let libc = dlopen(nil, RTLD_NOW)
        func symbol<T>(_ name: String, _: T.Type) -> T {
            guard let pointer = dlsym(libc, name) else {
                fatalError("SwitchboardPOSIX: libc symbol \(name) not found")
            }
            return unsafeBitCast(pointer, to: T.self)
        }
        epollCreate1 = symbol("epoll_create1", EpollCreate1.self)
        epollCtl = symbol("epoll_ctl", EpollCtl.self)
        epollWait = symbol("epoll_wait", EpollWait.self)
        eventfd = symbol("eventfd", EventFD.self)
        signalfd = symbol("signalfd", SignalFD.self)
        accept4 = symbol("accept4", Accept4.self)
    }
}

/// Linux ABI constants from the headers that `Glibc` does not import.
enum LinuxABI {
    static let epollIn: UInt32 = 0x001
    static let epollOut: UInt32 = 0x004
    static let epollErr: UInt32 = 0x008
    static let epollHup: UInt32 = 0x010
    static let epollCtlAdd: Int32 = 1
    static let epollCtlDel: Int32 = 2
    static let epollCtlMod: Int32 = 3
    /// `EPOLL_CLOEXEC`, `EFD_CLOEXEC` and `SFD_CLOEXEC` equal `O_CLOEXEC`.
    static let cloexec: Int32 = O_CLOEXEC
    /// `EFD_NONBLOCK` and `SFD_NONBLOCK` equal `O_NONBLOCK`.
    static let nonblock: Int32 = O_NONBLOCK
    /// `struct epoll_event` is packed (12 bytes) on x86_64 only.
    #if arch(x86_64)
    static let epollEventSize = 12
    static let epollDataOffset = 4
    #else
    static let epollEventSize = 16
    static let epollDataOffset = 8
    #endif
    /// `sizeof(struct signalfd_siginfo)`; `ssi_signo` is its first `UInt32`.
    static let signalInfoSize = 128
    /// `IOV_MAX` on Linux.
    static let iovMax = 1024
}

@inline(__always)
func monotonicMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) &* 1000 &+ Int64(ts.tv_nsec) / 1_000_000
}

func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}
