import BlockingDriver
import Switchboard
import SwitchboardDriverConformance
import Testing

/// The conformance kit against the drivers in this repository. Serialized: the checks start
/// servers and measure lingers; on a small machine, several at once make timings flaky.
@Suite("driver conformance", .serialized)
struct DriverConformanceTests {
    static let posix = DriverConformance(name: "POSIXDriver", lingerBound: 2) { try POSIXDriver() }
    static let blocking = DriverConformance(name: "BlockingDriver", lingerBound: 2) { BlockingDriver() }

    @Test("POSIXDriver", arguments: DriverConformance.Check.allCases)
    func posix(_ check: DriverConformance.Check) throws {
        try Self.posix.run(check)
    }

    @Test("BlockingDriver (Examples/BlockingDriver)", arguments: DriverConformance.Check.allCases)
    func blocking(_ check: DriverConformance.Check) throws {
        try Self.blocking.run(check)
    }
}
