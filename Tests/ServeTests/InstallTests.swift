import Foundation
import SwitchboardServe
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `make install` as a packager runs it: staged under DESTDIR, with the debug binary standing in
/// for the release one (`SWITCHBOARD_BIN`, so no release build is needed).
@Suite("make install")
struct InstallTests {
    static func make(_ variables: [String]) async throws -> ProgramResult {
        try await offThePool {
            try runProgram("/usr/bin/make", ["-s", "-C", repoRoot, "install", "SWITCHBOARD_BIN=\(switchboardBinary)"] + variables)
        }
    }

    static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    @Test("DESTDIR gets the binary, the production config (an existing one kept), the unit and the docs")
    func stagedInstall() async throws {
        let stage = try TempDir()
        defer { stage.remove() }
        let first = try await Self.make(["DESTDIR=\(stage.path)"])
        #expect(first.status == 0, "\(first.output)")

        let binary = stage.path + "/usr/local/bin/switchboard"
        #expect(access(binary, X_OK) == 0)
        let version = try await offThePool { try runProgram(binary, ["--version"]) }
        #expect(version.status == 0 && version.stdout.hasPrefix("switchboard "), "\(version.output)")

        let config = stage.path + "/etc/switchboard/switchboard.yaml"
        #expect(Self.read(config) == Self.read(repoRoot + "/config/production.yaml"))
        #expect(Self.read(stage.path + "/usr/local/share/doc/switchboard/configuration.md") != nil)

        let unit = try #require(Self.read(stage.path + "/usr/local/lib/systemd/system/switchboard.service"))
        let lines = Set(unit.split(separator: "\n").map(String.init))
        #expect(lines.contains("ExecStart=/usr/local/bin/switchboard serve --config /etc/switchboard/switchboard.yaml"))
        for setting in ["Restart=on-failure", "DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict",
                        "LoadCredential=jwt-public.pem:/etc/switchboard/jwt-public.pem",
                        "Environment=SWITCHBOARD_AUTH_JWT_PUBLIC_KEY_FILE=%d/jwt-public.pem",
                        "ExecReload=/bin/kill -HUP $MAINPID"] {
            #expect(lines.contains(setting), "the unit has no line \(setting)")
        }
        // The stop timeout outlasts the drain and the graceful shutdown of the config it starts with.
        let stop = try #require(lines.first { $0.hasPrefix("TimeoutStopSec=") }.flatMap { Int64($0.dropFirst(15)) })
        let production = try ConfigLoader.load(path: config, environment: [:])
        #expect(production.drainDelay > 0)
        #expect(stop * 1000 > production.drainDelay + production.shutdownGrace)

        // A second install keeps the operator's config.
        try "# edited by the operator\n".write(toFile: config, atomically: true, encoding: .utf8)
        let second = try await Self.make(["DESTDIR=\(stage.path)"])
        #expect(second.status == 0, "\(second.output)")
        #expect(Self.read(config) == "# edited by the operator\n")
        #expect(second.stdout.contains("kept "))
    }

    @Test("PREFIX and SYSCONFDIR move the files and the unit's paths; systemd-analyze verify accepts the unit")
    func prefixes() async throws {
        let stage = try TempDir()
        defer { stage.remove() }
        let result = try await Self.make(["PREFIX=\(stage.path)/usr", "SYSCONFDIR=\(stage.path)/etc"])
        #expect(result.status == 0, "\(result.output)")
        let unitPath = stage.path + "/usr/lib/systemd/system/switchboard.service"
        let unit = try #require(Self.read(unitPath))
        #expect(unit.contains("ExecStart=\(stage.path)/usr/bin/switchboard serve --config \(stage.path)/etc/switchboard/switchboard.yaml"))
        #expect(unit.contains("LoadCredential=jwt-public.pem:\(stage.path)/etc/switchboard/jwt-public.pem"))
        #expect(!unit.contains("/usr/local/"), "a path was not rewritten")
        #expect(access(stage.path + "/usr/bin/switchboard", X_OK) == 0)

        let analyze = "/usr/bin/systemd-analyze"
        guard access(analyze, X_OK) == 0 else { return }  // not a systemd machine
        let verify = try await offThePool { try runProgram(analyze, ["verify", "--man=no", unitPath]) }
        #expect(verify.status == 0 && verify.output.isEmpty, "\(verify.output)")
    }
}
