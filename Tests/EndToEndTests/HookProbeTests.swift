// The fixture's hook probes (CONTRACT.md "Hook probes"), and what a throwing hook changes
// (PROTOCOL.md 5 and 7: nothing for the client, except a throwing authenticateFn).
import TestSupport
import Foundation
import Switchboard
import Testing

extension EndToEnd {
    @Suite("Hook probes and throwing hooks (CONTRACT.md)") struct HookProbes {
        @Test("whoami answers id, userId and metadata as the hooks see them")
        func whoami() throws {
            try withFixture { server in
                let (user, userInfo) = try server.authenticatedClient(token: "user:alice")
                try user.send("whoami")
                #expect(try user.receiveEvent("whoami")
                    == object([("id", .string(userInfo.id)), ("userId", "alice"), ("metadata", object([("role", "member")]))]))

                let (anonymous, anonymousInfo) = try server.authenticatedClient(token: "anon")
                try anonymous.send("whoami")
                #expect(try anonymous.receiveEvent("whoami") == object([("id", .string(anonymousInfo.id))]))
            }
        }

        @Test("A throwing messageHandler is logged; the client gets nothing and keeps its connection and rooms")
        func messageHandlerThrows() throws {
            try withFixture { server in
                let (client, _) = try server.authenticatedClient(token: "user:a")
                let (other, _) = try server.authenticatedClient(token: "user:b")
                try client.send("throw", "boom")
                try client.expectNoMessage(probe: .echo)
                try expectLogged(server, "messageHandler threw")
                try other.toRoom("ws-default", "still in the room")
                try client.expectRoomMessage("still in the room")
                try other.expectRoomMessage("still in the room")
                try client.expectEcho("still connected")
            }
        }

        @Test("A throwing clientConnectedFn is logged after connected; the client stays authenticated",
              arguments: [("user:t", "t"), ("anon", nil)] as [(String, String?)])
        func clientConnectedThrows(token: String, userID: String?) throws {
            try withFixture { server in
                let (client, info) = try server.authenticatedClient(token: token + ":throw-connected")
                #expect(info.userID == userID)
                #expect(try server.waitForLine(prefix: "CONNECTED \(info.id)") == "CONNECTED \(info.id) \(userID ?? "-")")
                try expectLogged(server, "clientConnectedFn threw")

                try client.expectEcho("authenticated")
                try client.send("whoami")
                var expected: [(String, JSONValue)] = [("id", .string(info.id))]
                if let userID { expected += [("userId", .string(userID)), ("metadata", object([("role", "member")]))] }
                #expect(try client.receiveEvent("whoami") == object(expected))
                let (other, _) = try server.authenticatedClient(token: "user:o")
                try other.toRoom("ws-default", "default room kept")
                try client.expectRoomMessage("default room kept")
                #expect(!server.stdoutLines.contains { $0.hasPrefix("DISCONNECTED \(info.id)") })
            }
        }

        @Test("A throwing validateRoomFn joins none of the requested rooms and answers nothing")
        func validateRoomThrows() throws {
            try withFixture { server in
                let (member, _) = try server.authenticatedClient(token: "user:m")
                let (sender, _) = try server.authenticatedClient(token: "user:s")
                try member.join(["public-a", "throw-x"])
                try member.expectNoMessage(probe: .echo)
                // Joins are answered in order: once public-b is joined, the failed join is done.
                try member.join(["public-b"])
                try member.waitUntilMember(of: "public-b")
                try sender.toRoom("public-a", "not a member")
                try sender.toRoom("public-b", "member")
                try member.expectRoomMessage("member")
                try member.expectEcho("still connected")
            }
        }

        @Test("--idle-timeout-s 2: a silent client is pinged after about 1 s; pongs keep it open")
        func idlePings() throws {
            try withFixture(["--idle-timeout-s", "2"]) { server in
                let (client, _) = try server.authenticatedClient(token: "user:a")
                client.answersPings = false  // pings are still answered, and returned
                try client.expectEcho("last data frame")
                let silentSince = ContinuousClock.now
                let first = try client.receive(timeout: 3)
                let firstAfter = seconds(since: silentSince)
                guard case .ping = first else { throw E2EError("expected a ping, got \(first)") }
                #expect(firstAfter >= 1.0 && firstAfter < 2.0, "pinged after \(firstAfter) s of silence; idle timeout 2 s")
                // The pong was activity: another ping comes, past the 2 s since the last data frame.
                let second = try client.receive(timeout: 3)
                guard case .ping = second else { throw E2EError("expected a second ping, got \(second)") }
                #expect(seconds(since: silentSince) > 2.0)
                try client.expectEcho("still open")
            }
        }

        @Test("--no-send-pings: a silent client gets no ping and is dropped after the idle timeout")
        func noSendPings() throws {
            try withFixture(["--idle-timeout-s", "2", "--no-send-pings"]) { server in
                let (client, info) = try server.authenticatedClient(token: "user:a")
                client.answersPings = false
                try client.expectEcho("last data frame")
                let silentSince = ContinuousClock.now
                do {
                    let frame = try client.receive(timeout: 5)
                    Issue.record("expected the connection to be dropped, got \(frame)")
                } catch let error as E2EError where !error.isTimeout {
                    // End of stream without a close frame: the transport's idle timeout.
                }
                let elapsed = seconds(since: silentSince)
                #expect(elapsed >= 2.0 && elapsed < 4.0, "dropped after \(elapsed) s; idle timeout 2 s")
                #expect(try server.waitForLine(prefix: "DISCONNECTED \(info.id)") == "DISCONNECTED \(info.id) a")
            }
        }

        @Test("BACKPRESSURE lines count every message dropped for a non-reading client, 1, 2, 3, ...")
        func backpressureLines() throws {
            try withFixture(["--backpressure-limit", "65536"]) { server in
                let (reader, readerInfo) = try server.authenticatedClient(token: "user:r")
                let stalled = try server.client(receiveBuffer: 4096)
                let stalledInfo = try stalled.authenticate(token: "user:n")
                try flood(reader: reader, room: "ws-default", count: floodCount)

                var received = try readFloodBacklog(stalled).count
                let nonce = stalled.nextNonce()
                try stalled.send("echo", .string(nonce))
                while try stalled.receiveJSON().event != "echo" { received += 1 }
                let dropped = floodCount - received
                #expect(dropped > 0, "nothing was dropped")

                try server.waitForLine(prefix: "BACKPRESSURE \(stalledInfo.id) \(dropped)", timeout: 3)
                let lines = server.stdoutLines.filter { $0.hasPrefix("BACKPRESSURE ") }
                #expect(lines == (1...max(dropped, 1)).map { "BACKPRESSURE \(stalledInfo.id) \($0)" },
                        "\(lines.count) BACKPRESSURE lines for \(dropped) drops; first \(lines.prefix(3)), last \(lines.suffix(3))")
                #expect(!lines.contains { $0.contains(readerInfo.id) })
            }
        }
    }
}

/// Waits (at most 2 s) until the fixture's stderr mentions `text`. A log line is announced by
/// nothing else: the probe that follows it proves it was written, not that it was read.
private func expectLogged(_ server: Fixture, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let logged = e2eRetry(timeout: 2) { server.stderrText.contains(text) }
    #expect(logged, "stderr does not mention \"\(text)\": \(server.stderrText.debugDescription)", sourceLocation: sourceLocation)
}
