import BlockingDriver
import Glibc
import Switchboard
import SwitchboardNIO
import SwitchboardURing
import Testing

/// Options a driver cannot honour make `Server.init` throw instead of doing nothing.
@Suite("Driver capabilities")
struct CapabilityTests {
    private static let hooks = Hooks(authenticate: { _ in AuthResult(userID: "u") })

    @Test("hooksOnLoop (the default) needs a driver that declares .hooksOnLoop")
    func hooksOnLoop() throws {
        let offLoop = try POSIXDriver(hooksOnLoop: false)
        #expect(!offLoop.capabilities.contains(.hooksOnLoop))
        #expect(throws: StartupError.self) { try Server(hooks: Self.hooks, driver: offLoop) }
        var options = ServerOptions()
        options.hooksOnLoop = false
        _ = try Server(options: options, hooks: Self.hooks, driver: offLoop)
        _ = try Server(hooks: Self.hooks, driver: BlockingDriver())  // declares it
        _ = try Server(hooks: Self.hooks, driver: POSIXDriver())
        #expect(throws: StartupError.self) { try Server(hooks: Self.hooks, driver: NIODriver(hooksOnLoop: false)) }
        _ = try Server(hooks: Self.hooks, driver: NIODriver())  // hooks on its EventLoop
    }

    @Test("TLS files need a driver that declares .tls; the error names the driver and the way out")
    func tls() throws {
        var options = ServerOptions()
        options.tlsCertificateFile = "cert.pem"
        options.tlsKeyFile = "key.pem"
        do {
            _ = try Server(options: options, hooks: Self.hooks, driver: BlockingDriver())
            Issue.record("TLS options with a driver without TLS were accepted")
        } catch let error as StartupError {
            #expect(error.message.contains("BlockingDriver does not serve TLS"))
        }
        #expect(throws: StartupError.self) { try Server(options: options, hooks: Self.hooks, driver: POSIXDriver()) }
        do {
            _ = try Server(options: options, hooks: Self.hooks, driver: NIODriver())
            Issue.record("TLS options with an NIODriver built without TLS were accepted")
        } catch let error as StartupError {
            #expect(error.message.contains("NIODriver does not serve TLS"))
        }
    }

    @Test("URingDriver runs hooks on its loop and serves no TLS", .enabled(if: uringUnavailable == nil))
    func uring() throws {
        _ = try Server(hooks: Self.hooks, driver: URingDriver())
        #expect(throws: StartupError.self) { try Server(hooks: Self.hooks, driver: URingDriver(hooksOnLoop: false)) }
        var options = ServerOptions()
        options.tlsCertificateFile = "cert.pem"
        options.tlsKeyFile = "key.pem"
        do {
            _ = try Server(options: options, hooks: Self.hooks, driver: URingDriver())
            Issue.record("TLS options with URingDriver (no TLS) were accepted")
        } catch let error as StartupError {
            #expect(error.message.contains("URingDriver does not serve TLS"))
        }
    }

    @Test("URingUnavailable names the step, the errno and what usually forbids io_uring")
    func uringUnavailableText() {
        let forbidden = URingUnavailable(step: "io_uring_setup", code: EPERM).description
        #expect(forbidden.hasPrefix("io_uring unavailable: io_uring_setup: Operation not permitted (errno 1)"))
        #expect(forbidden.contains("seccomp"))
        #expect(URingUnavailable(step: "io_uring_setup", code: ENOSYS).description.contains("the kernel has no io_uring"))
    }
}
