import Testing
@testable import SwitchboardServe
#if canImport(Glibc)
import Glibc
#endif

/// The API listener's request reader, fed through a `SOCK_SEQPACKET` socket pair: each piece
/// written is exactly one `recv`, so a request can be split at every point, and one byte at a
/// time, deterministically and without threads.
@Suite struct APIRequestHeadTests {
    static let request = Array(("POST /api/v1/publish?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        + "Content-Length: 16\r\nConnection: keep-alive\r\n\r\n{\"type\":\"room\"} ").utf8)

    /// Writes `pieces` into one end, then reads a head and its body from the other.
    static func read(_ pieces: [[UInt8]]) throws -> (APIRequestHead, [UInt8], leftover: [UInt8]) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &fds) == 0 else { throw Failure("socketpair") }
        defer { close(fds[0]) }
        for piece in pieces {
            guard send(fds[1], piece, piece.count, 0) == piece.count else { throw Failure("send") }
        }
        close(fds[1])
        var buffer: [UInt8] = []
        guard case .head(let head) = APIRequestHead.read(fds[0], &buffer, limit: 16384) else { throw Failure("no head") }
        guard let body = APIRequestHead.readBody(fds[0], &buffer, count: head.contentLength) else { throw Failure("no body") }
        return (head, body, buffer)
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func check(_ head: APIRequestHead, _ body: [UInt8]) {
        #expect(head.method == "POST" && head.path == "/api/v1/publish")
        #expect(head.contentLength == 16 && head.keepAlive && !head.chunked)
        #expect(head.headers.first { $0.0 == "content-type" }?.1 == "application/json")
        #expect(body == Array(#"{"type":"room"} "#.utf8))
    }

    @Test func everySplitPointReadsTheSameRequest() throws {
        for split in 1..<Self.request.count {
            let (head, body, leftover) = try Self.read([Array(Self.request[..<split]), Array(Self.request[split...])])
            Self.check(head, body)
            #expect(leftover.isEmpty, "split at \(split)")
        }
    }

    @Test func oneByteAtATime() throws {
        let (head, body, _) = try Self.read(Self.request.map { [$0] })
        Self.check(head, body)
    }

    /// Two requests in one read: the second stays in the buffer for the next turn.
    @Test func pipelinedRequestsKeepTheRest() throws {
        let (head, body, leftover) = try Self.read([Self.request + Self.request])
        Self.check(head, body)
        #expect(leftover == Self.request)
    }

    @Test func http10AndConnectionCloseDoNotKeepAlive() {
        guard case .head(let old) = APIRequestHead.parse("GET / HTTP/1.0\r\nHost: a") else { Issue.record("no head"); return }
        #expect(!old.keepAlive)
        guard case .head(let closing) = APIRequestHead.parse("GET / HTTP/1.1\r\nConnection: Close") else { Issue.record("no head"); return }
        #expect(!closing.keepAlive)
    }
}
