// `ServerOptions.loops`: a server with two event loops, real sockets, clients spread over both
// loops by the kernel (SO_REUSEPORT). What a client or the application sees must be what one
// loop gives: every message once, in order per publisher; queries and metrics over the whole
// server; a bus message delivered once per client; shutdown closing everyone.
import Foundation
import Switchboard
import SwitchboardBus
import TestSupport
import Testing

extension EndToEnd {
    @Suite("loops: 2 behaves as one loop") struct Loops {
        /// A client of the test with its `connected` id.
        struct Client {
            let socket: WSClient
            let id: String
        }

        /// A two-loop server: token `user:X` logs in as user X, every client is in the default
        /// room `all`, and the messageHandler relays `to-room {room, data}` and
        /// `to-user {user, data}` from the loop it runs on.
        /// `configure` changes the options and hooks before the server is made; `reference`
        /// is the server, for hooks of its own.
        static func makeServer(hub: InProcessBus.Hub? = nil,
                               configure: (inout ServerOptions, inout Hooks, Reference) -> Void = { _, _, _ in })
            throws -> (Server, port: UInt16) {
            let reference = Reference()
            var options = ServerOptions()
            options.loops = 2
            options.defaultRooms = ["all"]
            var hooks = Hooks(authenticate: { data in
                guard let token = data["token"]?.stringValue, token.hasPrefix("user:") else { return nil }
                return AuthResult(userID: String(token.dropFirst(5)))
            })
            hooks.messageHandler = { message in
                guard let server = reference.server, let data = message.message.data else { return }
                switch message.message.event {
                case "to-room":
                    try server.sendToRoom(data["room"]?.stringValue ?? "", event: "room-message", data: data["data"])
                case "echo":
                    try server.sendToClient(message.clientID, event: "echo", data: data)
                case "to-user":
                    try server.sendToUser(data["user"]?.stringValue ?? "", event: "direct", data: data["data"])
                default:
                    break
                }
            }
            configure(&options, &hooks, reference)
            let server = try Server(options: options, hooks: hooks, bus: hub.map { InProcessBus(hub: $0) },
                                    logger: Logger(level: .warning))
            reference.server = server
            return (server, UInt16(try server.start()))
        }

        /// The server, for hooks made before it.
        final class Reference: @unchecked Sendable { var server: Server? }

        /// Connects clients with `token(i)` until there are at least `minimum` and both loops
        /// hold one (the kernel picks the loop from a hash of the client's port, so a few tries
        /// do: 64 on one loop would be a 2^-63 chance).
        static func clientsOnBothLoops(_ server: Server, port: UInt16, minimum: Int = 4,
                                       token: (Int) -> String) async throws -> [Client] {
            var clients: [Client] = []
            for index in 0..<64 {
                let socket = try WSClient(port: port)
                clients.append(Client(socket: socket, id: try socket.authenticate(token: token(index)).id))
                let perLoop = try await server.queryEach { $0.authenticatedCount }
                #expect(perLoop.count == 2)
                if clients.count >= minimum, perLoop.allSatisfy({ $0 > 0 }) { return clients }
            }
            throw E2EError("64 connections, all on one loop")
        }

        /// The ids of the clients on each loop.
        static func idsByLoop(_ server: Server) async throws -> [Set<String>] {
            try await server.queryEach { kernel in Set(kernel.clientHandles.compactMap { kernel.client($0)?.id }) }
        }

        /// Reads `count` messages of `event` and groups their `data.n` by `data.p`, in arrival order.
        static func received(_ client: Client, event: String, count: Int) throws -> [String: [Int]] {
            var byPublisher: [String: [Int]] = [:]
            for _ in 0..<count {
                let message = try client.socket.receiveJSON()
                guard message.event == event, let publisher = message.data?["p"]?.stringValue,
                      let number = message.data?["n"]?.numberValue?.int else {
                    throw E2EError("expected \(event) {p, n}, got \(message)")
                }
                byPublisher[publisher, default: []].append(number)
            }
            return byPublisher
        }

        static func item(_ publisher: String, _ number: Int) -> JSONValue {
            object([("p", .string(publisher)), ("n", .number(JSONNumber(number)))])
        }

        @Test("a room spanning both loops gets every message once, in order per publisher (hooks on each loop and the API off the loops)")
        func roomSpanningLoops() async throws {
            let (server, port) = try Self.makeServer()
            let clients = try await Self.clientsOnBothLoops(server, port: port) { "user:u\($0)" }
            let loops = try await Self.idsByLoop(server)
            let first = try #require(clients.first { loops[0].contains($0.id) })
            let second = try #require(clients.first { loops[1].contains($0.id) })
            let rounds = 40
            for number in 0..<rounds {
                try first.socket.send("to-room", object([("room", "all"), ("data", Self.item("first", number))]))
                try second.socket.send("to-room", object([("room", "all"), ("data", Self.item("second", number))]))
                try server.sendToRoom("all", event: "room-message", data: Self.item("api", number))
            }
            for client in clients {
                let got = try Self.received(client, event: "room-message", count: 3 * rounds)
                for publisher in ["first", "second", "api"] {
                    #expect(got[publisher] == Array(0..<rounds), "\(client.id) from \(publisher): \(got[publisher] ?? [])")
                }
                try client.socket.expectNoMessage(probe: .echo)
            }
            await server.shutdown()
        }

        @Test("queries and metrics cover both loops")
        func queriesAggregate() async throws {
            let (server, port) = try Self.makeServer()
            let clients = try await Self.clientsOnBothLoops(server, port: port) { "user:q\($0 % 3)" }
            let ids = clients.map(\.id).sorted()
            #expect(try await server.clients().map(\.id).sorted() == ids)
            #expect(try await server.members(ofRoom: "all") == ids)
            // Every client is in `all` (on both loops); the kernel may keep rooms of its own per
            // client or user: each is listed once, however many loops it spans.
            let rooms = try await server.rooms()
            let roomsByLoop = try await server.queryEach { $0.roomNames }
            #expect(rooms == Set(roomsByLoop.joined()).sorted() && rooms.contains("all"), "\(rooms)")
            #expect(roomsByLoop.allSatisfy { $0.contains("all") }, "\(roomsByLoop)")
            for client in clients {
                #expect(try await server.client(id: client.id)?.id == client.id)
            }
            let ofUser = clients.enumerated().filter { $0.offset % 3 == 0 }.map(\.element.id).sorted()
            #expect(try await server.clients(ofUser: "q0") == ofUser)
            let metrics = try await server.metrics()
            #expect(metrics.connections == clients.count)
            #expect(metrics.clientsByState.values.reduce(0, +) == clients.count && metrics.clientsByState.count == 1,
                    "\(metrics.clientsByState)")
            #expect(metrics.rooms == rooms.count, "a room on both loops is one room")
            #expect(metrics.users == Set(clients.indices.map { $0 % 3 }).count)
            let loops = try await Self.idsByLoop(server)
            #expect(loops[0].isDisjoint(with: loops[1]) && loops[0].union(loops[1]) == Set(ids))
            await server.shutdown()
        }

        @Test("a user with clients on both loops: sendToUser reaches each once, in order; disconnect closes all")
        func userOnBothLoops() async throws {
            let (server, port) = try Self.makeServer()
            let clients = try await Self.clientsOnBothLoops(server, port: port) { _ in "user:shared" }
            let rounds = 30
            for number in 0..<rounds {
                try clients[0].socket.send("to-user", object([("user", "shared"), ("data", Self.item("hook", number))]))
                try server.sendToUser("shared", event: "direct", data: Self.item("api", number))
            }
            for client in clients {
                let got = try Self.received(client, event: "direct", count: 2 * rounds)
                #expect(got["hook"] == Array(0..<rounds) && got["api"] == Array(0..<rounds), "\(client.id): \(got)")
            }
            #expect(try await server.clients(ofUser: "shared") == clients.map(\.id).sorted())
            let code = try #require(CloseCode.requestable.first)
            let closed = try await server.disconnect(.user("shared"), code: code)
            #expect(closed == clients.map(\.id).sorted())
            for client in clients {
                try client.socket.expectClose(code: code.code, reason: nil)
            }
            #expect(try await server.clients(ofUser: "shared").isEmpty)
            await server.shutdown()
        }

        @Test("shutdown closes the clients of every loop with 1001")
        func shutdownClosesAll() async throws {
            let (server, port) = try Self.makeServer()
            let clients = try await Self.clientsOnBothLoops(server, port: port) { "user:s\($0)" }
            await server.shutdown()
            for client in clients {
                try client.socket.expectClose(code: 1001, reason: nil)
            }
            // Every loop's listener is closed: a connection attempt is refused.
            #expect(throws: (any Error).self, "a loop still accepts after shutdown") {
                for _ in 0..<8 { _ = try TCPConnection(port: port) }
            }
        }

        @Test("over a bus: one subscription per process, each message delivered once to every client of every loop")
        func busFansOutToEveryLoop() async throws {
            let hub = InProcessBus.Hub()
            let (sender, senderPort) = try Self.makeServer(hub: hub)
            let (receiver, receiverPort) = try Self.makeServer(hub: hub)
            let local = try await Self.clientsOnBothLoops(sender, port: senderPort) { "user:a\($0)" }
            let remote = try await Self.clientsOnBothLoops(receiver, port: receiverPort) { "user:b\($0)" }
            let rounds = 30
            for number in 0..<rounds {
                try sender.send(destination: "all", topic: "room-message", data: Self.item("send", number))
                // For the other instances only: none of the sender's clients may get it.
                try sender.publish(.room, target: "all", event: "room-message", data: Self.item("publish", number))
            }
            try sender.sendToRoom("all", event: "room-message", data: Self.item("marker", 0))
            for client in local {
                let got = try Self.received(client, event: "room-message", count: rounds + 1)
                #expect(got == ["send": Array(0..<rounds), "marker": [0]], "\(client.id): \(got)")
            }
            for client in remote {
                let got = try Self.received(client, event: "room-message", count: 2 * rounds)
                #expect(got["send"] == Array(0..<rounds) && got["publish"] == Array(0..<rounds), "\(client.id): \(got)")
                try client.socket.expectNoMessage(probe: .echo)
            }
            await sender.shutdown()
            await receiver.shutdown()
        }
    }
}
