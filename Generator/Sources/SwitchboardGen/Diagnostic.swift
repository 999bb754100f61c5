/// One problem found in a spec, with where it is and what to do about it.
public struct Diagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }

    public var severity: Severity
    /// The spec path as given to the loader.
    public var file: String
    /// 1-based line in `file`.
    public var line: Int
    public var message: String
    public var fix: String

    public init(_ severity: Severity, file: String, line: Int, _ message: String, fix: String) {
        self.severity = severity
        self.file = file
        self.line = line
        self.message = message
        self.fix = fix
    }

    /// `FILE:LINE: error: MESSAGE; fix: WHAT TO DO`.
    public var description: String { "\(file):\(line): \(severity.rawValue): \(message); fix: \(fix)" }
}

/// The diagnostics of a spec that failed to load (at least one is an error), sorted by line.
public struct SpecDiagnostics: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }

    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Collects diagnostics for one file.
struct DiagnosticSink {
    let file: String
    private(set) var items: [Diagnostic] = []

    init(file: String) { self.file = file }

    mutating func error(_ line: Int, _ message: String, fix: String) {
        items.append(Diagnostic(.error, file: file, line: line, message, fix: fix))
    }

    mutating func warning(_ line: Int, _ message: String, fix: String) {
        items.append(Diagnostic(.warning, file: file, line: line, message, fix: fix))
    }

    mutating func append(contentsOf other: [Diagnostic]) { items.append(contentsOf: other) }

    var hasErrors: Bool { items.contains { $0.severity == .error } }

    /// Sorted by line; emission order breaks ties.
    var sorted: [Diagnostic] { Self.sort(items) }

    static func sort(_ items: [Diagnostic]) -> [Diagnostic] {
        items.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }.map(\.element)
    }
}
