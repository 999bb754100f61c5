// PROTOCOL.md 6: clientDisconnectedFn runs for every disconnect, whatever the client's state
// (the fixture prints `DISCONNECTED <clientId> <userId or ->` from it).
import TestSupport
import Foundation
import Switchboard
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension EndToEnd {
    @Suite("clientDisconnectedFn after every disconnect (PROTOCOL.md 6)") struct DisconnectCallback {
        @Test("A login rejected by authenticateFn (null, false, throw) is reported without a userId",
              arguments: [("reject", "Authentication failed"), ("false", "Authentication failed"),
                          ("throw", "Authentication error")])
        func rejectedLogin(token: String, error: String) throws {
            try withFixture { server in
                let client = try server.client()
                try client.sendAuthenticate(token: token)
                try client.expectError(error)
                try client.expectClose(code: 4003, reason: "Authentication failed")
                try expectAnonymousDisconnect(server)
            }
        }

        @Test("A client closed by the auth timer (4001) is reported")
        func authTimeout() throws {
            try withFixture(["--auth-timeout-ms", "300"]) { server in
                let client = try server.client()
                try client.expectClose(code: 4001, reason: "Authentication timeout", timeout: 3)
                try expectAnonymousDisconnect(server)
            }
        }

        @Test("A login still running when the in-progress timer fires (4001) is reported")
        func authInProgressTimeout() throws {
            try withFixture(["--auth-timeout-ms", "200"]) { server in
                let client = try server.client()
                try client.sendAuthenticate(token: "slow:3000:user:late")
                try client.expectClose(code: 4001, reason: "Authentication timeout", timeout: 3)
                try expectAnonymousDisconnect(server)
            }
        }

        @Test("A client that leaves before authenticating (TCP close or close frame) is reported",
              arguments: [false, true])
        func leavesUnauthenticated(closeFrame: Bool) throws {
            try withFixture { server in
                let client = try server.client()
                // The record exists: the server answers as it does to an unauthenticated client.
                try client.expectNoMessage(probe: .notAuthenticated)
                if closeFrame {
                    try client.sendClose()
                    try client.expectClose(code: 1000, reason: nil)
                } else {
                    client.close()
                }
                try expectAnonymousDisconnect(server)
            }
        }

        @Test("A failed encryption handshake (4004) is reported with the userId authenticateFn gave")
        func handshakeFailed() throws {
            try withFixture(["--require-encryption"]) { server in
                let client = try server.client()
                try client.sendAuthenticate(token: "user:h", extra: [("publicKey", "not-a-key")])
                try client.expectError("Encryption handshake failed")
                try client.expectClose(code: 4004, reason: "Encryption required")
                let line = try server.waitForLine(prefix: "DISCONNECTED ")
                #expect(line.wholeMatch(of: disconnectedLine) != nil && line.hasSuffix(" h"), "\(line)")
                #expect(!server.stdoutLines.contains { $0.hasPrefix("CONNECTED ") })
            }
        }

        @Test("Graceful shutdown reports unauthenticated clients too, before the process exits")
        func shutdownReportsEveryone() throws {
            try withFixture { server in
                let (user, info) = try server.authenticatedClient(token: "user:a")
                let pending = try server.client()
                try pending.sendAuthenticate(token: "slow:5000:user:p")
                let fresh = try server.client()
                try fresh.expectNoMessage(probe: .notAuthenticated)
                try server.waitForLine(prefix: "CONNECTED \(info.id)")

                server.send(signal: SIGTERM)
                for client in [user, pending, fresh] {
                    try client.expectClose(code: 1001, reason: "Server shutting down", timeout: 3)
                }
                #expect(server.waitForExit(timeout: 5) == 0, "stderr: \(server.stderrText)")
                // Shutdown waits for the callbacks: their lines are out before the exit.
                let lines = server.stdoutLines.filter { $0.hasPrefix("DISCONNECTED ") }
                #expect(lines.count == 3, "\(lines)")
                #expect(lines.contains("DISCONNECTED \(info.id) a"), "\(lines)")
                let others = lines.filter { !$0.contains(info.id) }
                #expect(others.count == 2 && others.allSatisfy { $0.wholeMatch(of: disconnectedLine) != nil && $0.hasSuffix(" -") },
                        "\(lines)")
            }
        }
    }
}

/// `DISCONNECTED <uuid> <userId or ->`.
nonisolated(unsafe) let disconnectedLine = #/DISCONNECTED [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12} \S+/#

/// The fixture's only client left without ever being connected: one DISCONNECTED line with
/// its id and no userId, and no CONNECTED line.
private func expectAnonymousDisconnect(_ server: Fixture, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let line = try server.waitForLine(prefix: "DISCONNECTED ")
    #expect(line.wholeMatch(of: disconnectedLine) != nil && line.hasSuffix(" -"), "\(line)", sourceLocation: sourceLocation)
    #expect(!server.stdoutLines.contains { $0.hasPrefix("CONNECTED ") }, "\(server.stdoutLines)", sourceLocation: sourceLocation)
}
