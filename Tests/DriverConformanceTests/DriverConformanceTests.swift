import BlockingDriver
import Foundation
import Switchboard
import SwitchboardDriverConformance
import SwitchboardNIO
import SwitchboardSim
import SwitchboardURing
import Testing

/// The simulation's driver: its connections are the simulated world's clients, out of the kit's
/// reach, so the checks of the loop only (the rest run in the seeded simulations of
/// Tests/SimTests). A global: `@Test(arguments:)` of the suite cannot name the suite's own members.
let simKit = DriverConformance(name: "SimDriver", sockets: false) { SimDriver.standalone() }

/// Why the io_uring driver cannot run on this machine (printed once), or nil.
let uringUnavailable: URingUnavailable? = {
    let reason = URingDriver.unavailability()
    if let reason { print("URingDriver is not checked: \(reason)") }
    return reason
}()

/// The conformance kit against the drivers in this repository (POSIX, the example, SwiftNIO,
/// io_uring where the kernel allows it, the simulation's). Serialized: the checks start servers
/// and measure lingers; on a small machine, several at once make timings flaky.
@Suite("driver conformance", .serialized)
struct DriverConformanceTests {
    static let posix = DriverConformance(name: "POSIXDriver", lingerBound: 2) { try POSIXDriver() }
    static let blocking = DriverConformance(name: "BlockingDriver", lingerBound: 2) { BlockingDriver() }
    static let nio = DriverConformance(name: "NIODriver", lingerBound: 2) { NIODriver() }
    static let sim = simKit
    static let uring = DriverConformance(name: "URingDriver", lingerBound: 2) { try URingDriver() }

    @Test("POSIXDriver", arguments: DriverConformance.Check.allCases)
    func posix(_ check: DriverConformance.Check) throws {
        try Self.posix.run(check)
    }

    @Test("BlockingDriver (Examples/BlockingDriver)", arguments: DriverConformance.Check.allCases)
    func blocking(_ check: DriverConformance.Check) throws {
        try Self.blocking.run(check)
    }

    @Test("NIODriver (SwitchboardNIO)", arguments: DriverConformance.Check.allCases)
    func nio(_ check: DriverConformance.Check) throws {
        try Self.nio.run(check)
    }

    @Test("SimDriver, standalone (SwitchboardSim)", arguments: simKit.checks)
    func sim(_ check: DriverConformance.Check) throws {
        try Self.sim.run(check)
    }

    @Test("SimDriver: the checks a driver without sockets skips are named, and refuse to run")
    func simSkips() {
        #expect(Self.sim.checks == [.executeQueues, .timers, .stopFromAnotherThread])
        #expect(Self.sim.skipped.count == DriverConformance.Check.allCases.count - 3)
        #expect(throws: ConformanceFailure.self) { try Self.sim.run(.connectionLifecycle) }
        #expect(Self.posix.skipped.isEmpty)
    }

    @Test("URingDriver (SwitchboardURing)", .enabled(if: uringUnavailable == nil, "io_uring is not available here"),
          arguments: DriverConformance.Check.allCases)
    func uring(_ check: DriverConformance.Check) throws {
        try Self.uring.run(check)
    }
}

/// The README's driver excerpt is real code: every line of its first Swift block under "Plug
/// in your own driver" (but the `// ...` elisions) is a line of Examples/BlockingDriver.
@Test("the README's driver excerpt is lines of Examples/BlockingDriver")
func readmeDriverExcerpt() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
    let section = try #require(readme.range(of: "## Plug in your own driver"))
    let rest = readme[section.upperBound...]
    let open = try #require(rest.range(of: "```swift\n"))
    let close = try #require(rest[open.upperBound...].range(of: "```"))
    let excerpt = rest[open.upperBound..<close.lowerBound].split(separator: "\n").map(String.init)
    let folder = root.appendingPathComponent("Examples/BlockingDriver")
    var source = Set<String>()
    for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasSuffix(".swift") {
        let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
        for line in text.split(separator: "\n") { source.insert(String(line)) }
    }
    #expect(excerpt.count > 20)
    for line in excerpt where !line.trimmingCharacters(in: .whitespaces).hasPrefix("// ...") {
        let found = source.contains(line)
        #expect(found, "README line not in Examples/BlockingDriver: \(line)")
    }
}
