import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The drain as an operator meets it: SIGTERM to a `switchboard serve` process.
@Suite struct DrainSignalTests {
    /// SIGTERM starts a long drain: the internal listener says 503 and the public port refuses;
    /// a second SIGTERM ends the drain, and the process exits 0 long before the delay is over.
    @Test func aSecondSIGTERMEndsTheDrain() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let internalPort = freePort()
        let config = try dir.write("serve.yaml", """
            listen:
              port: 0
            internal:
              port: \(internalPort)
            shutdown:
              drain_delay: 10m
            """)
        let serve = try ServeProcess(config: config)
        #expect(try http(port: internalPort, path: "/readyz").body == "ok\n")

        let started = ContinuousClock.now
        serve.signal(SIGTERM)
        #expect(try await eventually { try http(port: internalPort, path: "/readyz").status == 503 })
        #expect(try await eventually { (try? TCPConnection(port: UInt16(serve.port))) == nil })
        #expect(serve.process.isRunning)

        #expect(try await offThePool { try serve.stop() } == 0)  // the second SIGTERM
        #expect(ContinuousClock.now - started < .seconds(60))
    }
}
