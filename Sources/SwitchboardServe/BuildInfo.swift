import Switchboard
#if canImport(Glibc)
import Glibc
#endif

/// What this binary is: its version, the commit it was built from (when the build recorded
/// it), the compiler, and the digest of the spec its transition table was generated from.
/// `switchboard --version` prints it and `/metrics` exports it as `switchboard_build_info`,
/// so an operator can tell which build and which protocol rules a running instance has.
public struct BuildInfo: Sendable, Equatable {
    /// The version in the source tree; a packager overrides it with `SWITCHBOARD_VERSION`.
    public static let sourceVersion = "0.1.0-dev"

    public var version: String
    /// nil when the build did not record one (a plain `swift build` from a checkout).
    public var commit: String?
    public var swiftVersion: String
    public var specDigest: String

    /// The environment variable that overrides `version` (`1.4.0` or `1.4.0+3f2a9c1`: a
    /// `+COMMIT` suffix also names the commit).
    public static let versionVariable = "SWITCHBOARD_VERSION"

    /// `SWITCHBOARD_VERSION` of this process, as an environment of one variable.
    static var versionFromProcess: [String: String] {
        getenv(versionVariable).map { [versionVariable: String(cString: $0)] } ?? [:]
    }

    public static func current(environment: [String: String]) -> BuildInfo {
        var info = BuildInfo(version: sourceVersion, commit: BuildStamp.commit, swiftVersion: compilerVersion,
                             specDigest: TransitionTable.specDigest)
        if let text = environment[versionVariable]?.trimmingSpaces(), !text.isEmpty {
            info.version = text
            if let plus = text.firstIndex(of: "+") {
                info.version = String(text[..<plus])
                let commit = String(text[text.index(after: plus)...])
                if !commit.isEmpty { info.commit = commit }
            }
        }
        return info
    }

    /// The `--version` text: the version on the first line (what scripts read), then the details.
    public var text: String {
        """
        switchboard \(version)
        commit: \(commit ?? "unknown")
        swift: \(swiftVersion)
        spec digest: \(specDigest)
        """
    }

    /// Labels of the `switchboard_build_info` gauge.
    public var labels: [String: String] {
        ["version": version, "commit": commit ?? "unknown", "swift": swiftVersion, "spec_digest": specDigest]
    }

    /// The compiler this binary was built with (the first release at or below it).
    static let compilerVersion: String = {
        #if compiler(>=6.4)
        "6.4 or later"
        #elseif compiler(>=6.3)
        "6.3"
        #elseif compiler(>=6.2)
        "6.2"
        #elseif compiler(>=6.1)
        "6.1"
        #else
        "6.0"
        #endif
    }()
}
