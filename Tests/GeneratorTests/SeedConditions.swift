import Foundation
import Testing

/// One condition of the original gateway's error table, as Tests/Data/seed-errors.tsv records
/// it (that file's header explains the columns). The seed is law: docs/errors.md must render
/// every condition, in the seed's order.
struct SeedCondition {
    let id: String
    let outcome: String
    let message: String?
    let code: Int?
    let mentions: [String]

    /// Reads Tests/Data/seed-errors.tsv; a malformed line fails the calling test.
    static func load() throws -> [SeedCondition] {
        let path = repoRoot.appendingPathComponent("Tests/Data/seed-errors.tsv").path
        let data = try #require(FileManager.default.contents(atPath: path), "cannot read \(path)")
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }
        let header = try #require(lines.first).split(separator: "\t").map(String.init)
        #expect(header == ["id", "outcome", "message", "code", "mentions", "trigger"])
        return try lines.dropFirst().map { line in
            let cells = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            try #require(cells.count == header.count, "seed-errors.tsv: \(cells.count) cells in \(line)")
            let value = { (cell: String) in cell == "-" ? nil : cell }
            return SeedCondition(id: cells[0], outcome: cells[1], message: value(cells[2]),
                                 code: value(cells[3]).flatMap { Int($0) },
                                 mentions: value(cells[4])?.split(separator: ",").map(String.init) ?? [])
        }
    }

    /// The first cell of the docs row: the quoted message, or the close code when the client
    /// sees no message.
    var expectedSubject: String {
        if outcome == "close" { return "Close `\(code ?? 0)`" }
        return "`\"\(message ?? "")\"`"
    }

    /// The third cell of the docs row: what the client or operator sees.
    var expectedOutcome: String {
        let code = self.code.map(String.init) ?? "?"
        switch outcome {
        case "event": return "`error` event"
        case "event+close": return "`error` event + close `\(code)`"
        case "close": return "close `\(code)` only"
        case "startup": return "thrown `Error` (startup)"
        case "http": return "HTTP `\(code)` response"
        default: return "unknown outcome \(outcome)"
        }
    }

    /// Whether a row of docs/errors.md's condition table (its cells) describes this condition.
    func matches(_ cells: [String]) -> Bool {
        cells.count == 3 && cells[0].hasPrefix(expectedSubject) && cells[2] == expectedOutcome
            && mentions.allSatisfy { cells[1].contains($0) }
    }
}

/// The cells of each row of the first table under "## Error conditions" in a rendered docs/errors.md.
func errorConditionRows(_ markdown: String) -> [[String]] {
    let lines = markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard let section = lines.firstIndex(of: "## Error conditions"),
          let tableStart = lines[section...].firstIndex(where: { $0.hasPrefix("|") }) else { return [] }
    // The header row and the |---| line are not conditions.
    return lines[tableStart...].prefix { $0.hasPrefix("|") }.dropFirst(2).map { row in
        row.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
            .map { $0.trimmingCharacters(in: .whitespaces) }
    }
}
