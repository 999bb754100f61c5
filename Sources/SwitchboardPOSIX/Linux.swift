import Glibc

/// Linux calls that Swift's `Glibc` module does not export (`sys/epoll.h`, `sys/eventfd.h`,
/// `sys/signalfd.h`, `accept4`). They are resolved once with `dlsym` and called through
/// `@convention(c)` pointers, so the C calling convention is exact.
///
/// The loop's per-message calls (`recv`, `send`, `sendmsg`, `epoll_wait`) go through `syscall`
/// instead of their glibc wrappers. Those wrappers are POSIX cancellation points: once a
/// process has a second thread (a second loop, the Redis bus, a hook pool), each call also
/// switches asynchronous cancellation on and off around the system call, 94 more
/// instructions per `send` (`scripts/callgrind fanout --loops 2`: 10 -> 104 per delivery).
/// Switchboard never cancels threads, so the switch is pure cost. glibc's `syscall` is not a
/// cancellation point; it is declared variadic, and on Linux's x86_64 and AArch64 ABIs a
/// variadic callee receives integer arguments in the same registers as a fixed one, so the
/// fixed seven-argument pointer below is an exact call (x86_64 also reads `%al`, the count of
/// vector registers, only in C variadic callees: glibc's `syscall` is assembly).
struct LinuxCalls: @unchecked Sendable {
    typealias EpollCreate1 = @convention(c) (Int32) -> Int32
    typealias EpollCtl = @convention(c) (Int32, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
    typealias EventFD = @convention(c) (UInt32, Int32) -> Int32
    typealias SignalFD = @convention(c) (Int32, UnsafePointer<sigset_t>?, Int32) -> Int32
    typealias Accept4 = @convention(c) (
        Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32
    ) -> Int32
    typealias Syscall = @convention(c) (Int, Int, Int, Int, Int, Int, Int) -> Int

    let epollCreate1: EpollCreate1
    let epollCtl: EpollCtl
    let eventfd: EventFD
    let signalfd: SignalFD
    let accept4: Accept4
    private let syscall: Syscall

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
        eventfd = symbol("eventfd", EventFD.self)
        signalfd = symbol("signalfd", SignalFD.self)
        accept4 = symbol("accept4", Accept4.self)
        syscall = symbol("syscall", Syscall.self)
    }

    /// `recv(fd, buffer, count, flags)`: -1 and `errno` on failure, as the wrapper.
    @inline(__always)
    func recv(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ flags: Int32) -> Int {
        syscall(LinuxABI.sysRecvfrom, Int(fd), Int(bitPattern: buffer), count, Int(flags), 0, 0)
    }

    /// `send(fd, bytes, count, flags)`.
    @inline(__always)
    func send(_ fd: Int32, _ bytes: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
        syscall(LinuxABI.sysSendto, Int(fd), Int(bitPattern: bytes), count, Int(flags), 0, 0)
    }

    /// `sendmsg(fd, message, flags)`.
    @inline(__always)
    func sendmsg(_ fd: Int32, _ message: UnsafePointer<msghdr>, _ flags: Int32) -> Int {
        syscall(LinuxABI.sysSendmsg, Int(fd), Int(bitPattern: message), Int(flags), 0, 0, 0)
    }

    /// `epoll_wait(epfd, events, maxEvents, timeout)`, as `epoll_pwait` with no signal mask
    /// (AArch64 has no `epoll_wait` system call).
    @inline(__always)
    func epollWait(_ epfd: Int32, _ events: UnsafeMutableRawPointer?, _ maxEvents: Int32, _ timeout: Int32) -> Int32 {
        Int32(truncatingIfNeeded: syscall(LinuxABI.sysEpollPwait, Int(epfd), Int(bitPattern: events), Int(maxEvents),
                                          Int(timeout), 0, LinuxABI.kernelSigsetSize))
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
    /// System call numbers (`asm/unistd.h`) of the calls made through `LinuxCalls.syscall`.
    #if arch(x86_64)
    static let sysRecvfrom = 45
    static let sysSendto = 44
    static let sysSendmsg = 46
    static let sysEpollPwait = 281
    #elseif arch(arm64)
    static let sysRecvfrom = 207
    static let sysSendto = 206
    static let sysSendmsg = 211
    static let sysEpollPwait = 22
    #endif
    /// The kernel's `sigset_t` size, which `epoll_pwait` checks (8 bytes, not glibc's 128).
    static let kernelSigsetSize = 8
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
