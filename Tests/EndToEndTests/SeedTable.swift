import Foundation
import Testing

/// The original gateway's error conditions, read from Tests/Data/seed-errors.tsv (its header
/// explains the columns). The seed tests take each condition's message and code from here, so
/// they check the seed's own facts rather than a copy of them.
struct SeedCondition {
    let id: String
    let outcome: String
    let message: String
    let code: Int?

    /// Every condition, in the seed's order.
    static func all() throws -> [SeedCondition] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent("Data/seed-errors.tsv").path
        let data = try #require(FileManager.default.contents(atPath: path), "cannot read \(path)")
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }
        return try lines.dropFirst().map { line in
            let cells = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            try #require(cells.count == 6, "seed-errors.tsv: \(cells.count) cells in \(line)")
            return SeedCondition(id: cells[0], outcome: cells[1], message: cells[2] == "-" ? "" : cells[2],
                                 code: Int(cells[3]))
        }
    }

    /// The condition named `id`; an unknown id fails the calling test.
    static func named(_ id: String) throws -> SeedCondition {
        try #require(try all().first { $0.id == id }, "no condition \(id) in seed-errors.tsv")
    }

    /// The close code or HTTP status, which this condition must have.
    func requiredCode() throws -> Int {
        try #require(code, "seed condition \(id) has no code")
    }
}
