// `scripts/sim SEED` and `scripts/sim --soak SECONDS` run these (see scripts/sim).
import Foundation
import SwitchboardSim
import Testing

private let environment = ProcessInfo.processInfo.environment

/// Replays `SWITCHBOARD_SIM_SEED` (a seed, or a range `FIRST-LAST`); prints each report, and
/// for a failure the replay line, the problems and the last events.
@Test(.enabled(if: environment["SWITCHBOARD_SIM_SEED"] != nil))
func replay() async throws {
    let text = try #require(environment["SWITCHBOARD_SIM_SEED"])
    let bounds = text.split(separator: "-").compactMap { UInt64($0) }
    try #require(bounds.count == 1 || (bounds.count == 2 && bounds[0] <= bounds[1]),
                 "SWITCHBOARD_SIM_SEED must be an unsigned integer or FIRST-LAST, not \(text)")
    for seed in bounds[0]...bounds[bounds.count - 1] {
        let report = await Simulation.run(seed: seed)
        print(report.summary)
        print(report)
        if !report.passed { print(report.failureText) }
        #expect(report.passed, Comment(rawValue: report.failureText))
    }
}

/// Random seeds until `SWITCHBOARD_SIM_SOAK` seconds have passed; each seed is printed first.
@Test(.enabled(if: environment["SWITCHBOARD_SIM_SOAK"] != nil))
func soak() async throws {
    let seconds = try #require(Double(environment["SWITCHBOARD_SIM_SOAK"] ?? ""), "SWITCHBOARD_SIM_SOAK must be a number of seconds")
    let clock = ContinuousClock()
    let deadline = clock.now + .milliseconds(Int(seconds * 1000))
    var generator = SystemRandomNumberGenerator()
    var runs = 0
    var failures: [UInt64] = []
    while clock.now < deadline {
        let seed = generator.next() >> 16
        print("seed \(seed)")
        let report = await Simulation.run(seed: seed)
        runs += 1
        if !report.passed {
            failures.append(seed)
            print(report.failureText)
            Issue.record(Comment(rawValue: report.failureText))
        }
    }
    print("soak: \(runs) seeds, \(failures.count) failed\(failures.isEmpty ? "" : ": " + failures.map(String.init).joined(separator: " "))")
    #expect(runs > 0)
}
