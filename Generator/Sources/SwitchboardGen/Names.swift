/// Spec names (snake_case) and the Swift identifiers made from them.
public enum Names {
    /// `invalid_json` -> `invalidJson`.
    public static func lowerCamel(_ name: String) -> String {
        var out = ""
        var upper = false
        for ch in name {
            if ch == "_" {
                upper = !out.isEmpty
                continue
            }
            out += upper ? ch.uppercased() : String(ch)
            upper = false
        }
        return out
    }

    /// `lowerCamel`, in backticks when it is a Swift keyword.
    static func swift(_ name: String) -> String {
        let id = lowerCamel(name)
        return keywords.contains(id) ? "`\(id)`" : id
    }

    /// `[a-z][a-z0-9]*` words joined by single underscores.
    static func isSnakeCase(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, first >= 97, first <= 122, bytes.last != 95 else { return false }
        var previous: UInt8 = 0
        for b in bytes {
            let ok = (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b == 95
            if !ok || (b == 95 && previous == 95) { return false }
            previous = b
        }
        return true
    }

    /// The closest candidate within a small edit distance, if any.
    static func suggestion(for name: String, among candidates: [String]) -> String? {
        let limit = max(2, min(3, name.count / 3))
        var best: (String, Int)?
        for candidate in candidates {
            let distance = editDistance(name, candidate)
            if distance <= limit, best == nil || distance < best!.1 { best = (candidate, distance) }
        }
        return best?.0
    }

    /// "did you mean 'x'?" or "use one of: a, b, c" (or a given fallback).
    static func hint(for name: String, among candidates: [String], otherwise: String? = nil) -> String {
        if let suggestion = suggestion(for: name, among: candidates) { return "did you mean '\(suggestion)'?" }
        if let otherwise { return otherwise }
        if candidates.isEmpty { return "define it first" }
        return "use one of: " + candidates.joined(separator: ", ")
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// A Swift string literal with the text escaped.
    static func literal(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// Text on one line (for `///` comments and table cells).
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map { $0.trimmingSpaces }.joined(separator: " ")
    }

    static let keywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init",
        "inout", "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public",
        "rethrows", "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue",
        "default", "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return",
        "throw", "switch", "where", "while", "as", "false", "is", "nil", "self", "super", "throws", "true",
        "try", "await", "any", "some", "consume", "borrowing", "consuming", "package",
    ]
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}
