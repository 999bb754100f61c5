import Foundation
import Switchboard
import TestSupport

/// The gateway's end-to-end scenarios on a `Server` built on the driver under test.
extension DriverConformance {
    /// A started server on a new driver: `authenticate` accepts the token `good` (user `u-` +
    /// the `user` member) and an `echo` message is answered through `messageHandler`.
    func startGateway(_ configure: (inout ServerOptions) -> Void = { _ in }) throws -> (Server, UInt16) {
        let driver = try makeDriver()
        var options = ServerOptions()
        options.host = "127.0.0.1"
        options.hooksOnLoop = driver.capabilities.contains(.hooksOnLoop)
        configure(&options)
        let server = UncheckedBox<Server?>(nil)
        var hooks = Hooks(authenticate: { data in
            guard data["token"]?.stringValue == "good" else { return nil }
            return AuthResult(userID: "u-" + (data["user"]?.stringValue ?? "anonymous"))
        })
        hooks.validateRoom = { request in request.rooms }
        hooks.messageHandler = { message in
            guard message.message.event == "echo" else { return }
            try server.value?.sendToClient(message.clientID, event: "echo", data: message.message.data)
        }
        let built = try Server(options: options, hooks: hooks, driver: driver)
        server.value = built
        let port = try built.start()
        return (built, UInt16(port))
    }

    func checkGatewayAuthentication() throws {
        let (server, port) = try startGateway()
        defer { shutDown(server) }
        let client = try WSClient(port: port)
        try client.send("authenticate", object(["token": "good", "user": "ada"]))
        let connected = try client.receiveJSON(timeout: 5)
        guard connected.event == "connected", connected.data?["userId"]?.stringValue == "u-ada",
              connected.data?["id"]?.stringValue != nil else {
            throw ConformanceFailure("expected connected with userId u-ada, got \(connected)")
        }
        try client.send("echo", .string("ping"))
        let echo = try client.receiveJSON(timeout: 5)
        guard echo.event == "echo", echo.data == .string("ping") else {
            throw ConformanceFailure("expected the echo of ping, got \(echo)")
        }
    }

    func checkGatewayRooms() throws {
        let (server, port) = try startGateway()
        defer { shutDown(server) }
        var clients: [WSClient] = []
        for user in ["a", "b", "c"] {
            let client = try WSClient(port: port)
            try client.send("authenticate", object(["token": "good", "user": .string(user)]))
            guard try next(client, "connected for \(user)").event == "connected" else {
                throw ConformanceFailure("client \(user) was not connected")
            }
            clients.append(client)
        }
        // a and b join. validateRoom answers in a later turn, so each probes until it is a
        // member: a room message and an echo; once a room message reaches it, it is in.
        for (index, client) in clients.prefix(2).enumerated() {
            try client.send("join", object(["rooms": .array(["news"])]))
            var member = false
            for attempt in 0..<50 where !member {
                let nonce = JSONValue.string("probe \(index) \(attempt)")
                try server.sendToRoom("news", event: "probe", data: nonce)
                try client.send("echo", nonce)
                // The probe (through execute) and the echo (through the socket) may be handled
                // in either order: read up to this attempt's echo; any probe shows membership.
                while true {
                    let message = try next(client, "the echo of a join probe")
                    if message.event == "probe" {
                        member = true
                    } else if message.event == "echo", message.data == nonce {
                        break
                    } else {
                        throw ConformanceFailure("expected a probe or the echo of a join probe, got \(message)")
                    }
                }
            }
            if !member { throw ConformanceFailure("client \(index) never became a member of the room it joined") }
        }
        for n in 1...3 {
            try server.sendToRoom("news", event: "headline", data: .number(JSONNumber(n)))
        }
        for (index, client) in clients.prefix(2).enumerated() {
            for n in 1...3 {
                var message = try next(client, "headline \(n) at member \(index)")
                while message.event == "probe" { message = try next(client, "headline \(n) at member \(index)") }
                guard message.event == "headline", message.data == .number(JSONNumber(n)) else {
                    throw ConformanceFailure("member \(index) expected headline \(n), got \(message)")
                }
            }
        }
        // c is not a member: its next message is its own echo.
        try clients[2].send("echo", .string("outside"))
        let echo = try next(clients[2], "the echo of a client outside the room")
        guard echo.event == "echo", echo.data == .string("outside") else {
            throw ConformanceFailure("a client outside the room got \(echo)")
        }
    }

    func checkGatewayCloseCodes() throws {
        let (server, port) = try startGateway { options in
            options.maxPayloadLength = 1024
            options.authTimeout = 300
        }
        defer { shutDown(server) }
        // 4003: a rejected token (error event, then the close).
        let rejected = try WSClient(port: port)
        try rejected.send("authenticate", object(["token": "bad"]))
        let error = try rejected.receiveJSON(timeout: 5)
        guard error.event == "error" else { throw ConformanceFailure("expected an error event, got \(error)") }
        try expectClose(rejected, 4003)
        // 1009: a message over maxPayloadLength.
        let big = try WSClient(port: port)
        try big.sendText(String(repeating: "x", count: 2048))
        try expectClose(big, 1009)
        // 4001: no authenticate within authTimeout (a timer of the engine's, on the driver).
        let silent = try WSClient(port: port)
        try expectClose(silent, 4001)
        // 1000: the client closes; the server answers and ends the connection.
        let leaving = try WSClient(port: port)
        try leaving.sendClose(code: 1000)
        try expectClose(leaving, 1000, closeSent: true)
    }

    private func expectClose(_ client: WSClient, _ code: UInt16, closeSent: Bool = false) throws {
        var frame = try client.receive(timeout: 5)
        while frame.isData { frame = try client.receive(timeout: 5) }
        guard case .close(let got, _) = frame, got == code else {
            throw ConformanceFailure("expected close \(code), got \(frame)")
        }
        if !closeSent { try? client.sendClose(code: code) }
        if !client.connection.waitForEndOfStream(deadline: deadline(after: lingerBound + 2)) {
            throw ConformanceFailure("the connection did not end after close \(code)")
        }
    }

    /// The client's next message, or a failure naming what was awaited.
    private func next(_ client: WSClient, _ what: String) throws -> Message {
        do { return try client.receiveJSON(timeout: 5) } catch { throw ConformanceFailure("\(what): \(error)") }
    }

    private func shutDown(_ server: Server) {
        let done = DispatchSemaphore(value: 0)
        let box = UncheckedBox(server)
        Task {
            await box.value.shutdown()
            done.signal()
        }
        _ = done.wait(timeout: .now() + 10)
    }
}

private func object(_ members: KeyValuePairs<String, JSONValue>) -> JSONValue {
    var result = JSONObject()
    for (key, value) in members { result.append(key: key, value: value) }
    return .object(result)
}
