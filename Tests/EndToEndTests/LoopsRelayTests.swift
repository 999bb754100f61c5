// `ServerOptions.loops: 2`, the parts that are not an application's delivery: what a client
// publishes (a `publish` its hook allows, a presence join or leave) must reach the clients of
// the other loop as it reaches those of its own, a `presence` query without Redis must list
// every loop's members, and `metricsOnLoop` (the public port's `/metrics` of `switchboard
// serve`) must count every loop, whichever loop answers.
import Foundation
import Switchboard
import TestSupport
import Testing

extension EndToEnd.Loops {
    /// Skips messages until `event` whose `data.clientId` is `id`; the message's data.
    static func await(_ event: String, about id: String, on client: Client, timeout: Double = 5) throws -> JSONValue? {
        let end = deadline(after: timeout)
        while ContinuousClock.now < end {
            let message = try client.socket.receiveJSON(timeout: timeout)
            if message.event == event, message.data?["clientId"] == .string(id) { return message.data }
        }
        throw E2EError("\(client.id): no \(event) about \(id) within \(timeout) s", isTimeout: true)
    }

    /// The members a `presence` query of `room` answers, skipping other messages.
    static func presence(of room: String, asking client: Client) throws -> [String] {
        try client.socket.send("presence", object([("room", .string(room))]))
        while true {
            let message = try client.socket.receiveJSON(timeout: 3)
            guard message.event == "presence" else { continue }
            guard case .array(let members)? = message.data?["members"] else { throw E2EError("presence answered \(message)") }
            return members.compactMap { $0["clientId"]?.stringValue }
        }
    }

    @Test("presence without Redis: join and leave events and the query cover both loops")
    func presenceSpansLoops() async throws {
        let (server, port) = try Self.makeServer { options, _, _ in options.presenceRooms = ["all"] }
        let clients = try await Self.clientsOnBothLoops(server, port: port) { "user:p\($0)" }
        // One more client, on either loop: every earlier client, on both loops, hears it join.
        let socket = try WSClient(port: port)
        let newcomer = Client(socket: socket, id: try socket.authenticate(token: "user:newcomer").id)
        for client in clients {
            let data = try Self.await("presence_join", about: newcomer.id, on: client)
            #expect(data?["userId"] == .string("newcomer"))
        }
        let everyone = (clients + [newcomer]).map(\.id).sorted()
        let loops = try await Self.idsByLoop(server)
        for asking in [clients.first { loops[0].contains($0.id) }, clients.first { loops[1].contains($0.id) }] {
            let asking = try #require(asking)
            #expect(try Self.presence(of: "all", asking: asking) == everyone, "asked on the loop of \(asking.id)")
        }
        #expect(try await server.presence(ofRoom: "all").map(\.clientID) == everyone)
        newcomer.socket.close()
        for client in clients {
            _ = try Self.await("presence_leave", about: newcomer.id, on: client)
        }
        await server.shutdown()
    }

    @Test("a client's publish reaches the room's members on both loops, once each, in order")
    func publishSpansLoops() async throws {
        let (server, port) = try Self.makeServer { _, hooks, _ in
            hooks.publish = { request in PublishResult(data: request.data) }
        }
        let clients = try await Self.clientsOnBothLoops(server, port: port) { "user:b\($0)" }
        let loops = try await Self.idsByLoop(server)
        let publishers = try [loops[0], loops[1]].map { ids in try #require(clients.first { ids.contains($0.id) }) }
        let rounds = 30
        for number in 0..<rounds {
            for publisher in publishers {
                try publisher.socket.send("publish", object([("room", "all"), ("data", Self.item(publisher.id, number))]))
            }
        }
        for client in clients {
            var got: [String: [Int]] = [:]
            for _ in 0..<(rounds * publishers.count) {
                let message = try client.socket.receiveJSON()
                guard message.event == "publication", let data = message.data?["data"],
                      let publisher = data["p"]?.stringValue, let number = data["n"]?.numberValue?.int else {
                    throw E2EError("\(client.id): expected a publication, got \(message)")
                }
                #expect(message.data?["clientId"] == .string(publisher))
                got[publisher, default: []].append(number)
            }
            for publisher in publishers {
                #expect(got[publisher.id] == Array(0..<rounds), "\(client.id) from \(publisher.id): \(got[publisher.id] ?? [])")
            }
            try client.socket.expectNoMessage(probe: .echo)
        }
        await server.shutdown()
    }

    @Test("metricsOnLoop counts every loop, whichever loop answers the request")
    func metricsOnLoopSpansLoops() async throws {
        let (server, port) = try Self.makeServer { _, hooks, reference in
            hooks.httpHandler = { _ in
                guard let server = reference.server, let metrics = server.metricsOnLoop(),
                      let here = server.queryOnLoop({ $0.authenticatedCount }) else { return nil }
                return HTTPAnswerBody(text: "\(metrics.users) \(here)")
            }
        }
        let clients = try await Self.clientsOnBothLoops(server, port: port) { "user:m\($0)" }
        // The kernel picks the loop of each request's connection: 32 land on both (2^-31 not).
        for _ in 0..<32 {
            let reply = try rawHTTP(port: port, request: "GET /m HTTP/1.1\r\nHost: x\r\n\r\n")
            let numbers = reply.body.split(separator: " ").compactMap { Int($0) }
            #expect(reply.status == 200 && numbers.count == 2, "\(reply)")
            guard numbers.count == 2 else { continue }
            #expect(numbers[0] == clients.count, "users over both loops")
            #expect(numbers[1] < clients.count, "the answering loop holds only some of the clients")
        }
        await server.shutdown()
    }
}
