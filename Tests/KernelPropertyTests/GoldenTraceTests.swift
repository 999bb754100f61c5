import Foundation
import Testing

/// Determinism across processes: the kernel's inputs and effects for a few fixed seeds are
/// committed as text (Golden/seed-N.txt) and compared line by line. Swift seeds its hashing per
/// process, so an effect order that leaked from a Set or Dictionary would differ between the
/// run that wrote a file and a later one.
///
/// After an intended change of the kernel, the spec or the scenario generator, rewrite them:
/// `make golden` (SWITCHBOARD_UPDATE_GOLDEN=1 swift test --filter GoldenTraceTests), then read
/// the diff before committing it.
@Suite struct GoldenTraceTests {
    /// Chosen for variety: encryption with and without validateRoomFn, heartbeat sweeps that
    /// close, duplicate default rooms and closeOnBackpressure.
    static let seeds: [UInt64] = [7, 25, 35, 71]
    /// Enough ops to reach rooms, encryption, stale answers and timers, short enough to read.
    static let length = 90

    /// The trace file's text: settings, then each input with the kernel's effects indented
    /// under it, then the kernel's final state.
    static func trace(seed: UInt64) -> String {
        let scenario = Scenario(seed: seed, length: length)
        var harness = Harness(settings: scenario.settings)
        for op in scenario.ops {
            if let input = harness.input(for: op) { _ = harness.step(input) }
        }
        let header = ["# Kernel trace of scenario seed \(seed) (\(length) ops); rewrite with `make golden`.",
                      "# " + scenario.settingsLine]
        let footer = ["# final state"] + TraceLine.snapshot(of: harness.kernel)
        return (header + harness.trace + footer).joined(separator: "\n") + "\n"
    }

    static let sourceFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    @Test(arguments: seeds) func traceIsTheCommittedOne(seed: UInt64) throws {
        let actual = Self.trace(seed: seed)
        let name = "seed-\(seed).txt"
        if ProcessInfo.processInfo.environment["SWITCHBOARD_UPDATE_GOLDEN"] == "1" {
            try actual.write(to: Self.sourceFolder.appendingPathComponent(name), atomically: true, encoding: .utf8)
            return
        }
        let url = try #require(Bundle.module.url(forResource: "seed-\(seed)", withExtension: "txt", subdirectory: "Golden"),
                               "Golden/\(name) missing: run `make golden`")
        let expected = try String(contentsOf: url, encoding: .utf8)
        guard actual != expected else { return }
        let (a, e) = (actual.split(separator: "\n", omittingEmptySubsequences: false),
                      expected.split(separator: "\n", omittingEmptySubsequences: false))
        let line = zip(a, e).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, e.count)
        Issue.record("""
            Golden/\(name) differs from line \(line + 1):
              committed: \(line < e.count ? String(e[line]) : "<end>")
              now:       \(line < a.count ? String(a[line]) : "<end>")
            If the change is intended, run `make golden` and review the diff.
            """)
    }
}
