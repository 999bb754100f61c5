// The hook probes of CONTRACT.md ("Hook probes"): custom events and tokens that make the
// library's hooks observable from outside (what a hook sees, what a throwing hook changes).
import Switchboard

/// A metadata member the fixture adds for a `<token>:throw-connected` login, so that
/// clientConnectedFn (which sees only id, userId and metadata) knows to throw. `whoami`
/// leaves it out: the client's metadata is what its plain token gives.
let throwConnectedMarker = "fixture:throw-connected"

/// `<token>:throw-connected` acts as `<token>`; the flag says the suffix was there.
func splitThrowConnected(_ token: String) -> (token: String, throwConnected: Bool) {
    let suffix = ":throw-connected"
    guard token.hasSuffix(suffix) else { return (token, false) }
    return (String(token.dropLast(suffix.count)), true)
}

/// Adds the marker to a successful login's metadata.
func markThrowConnected(_ result: AuthResult) -> AuthResult {
    var members = result.metadata?.objectValue ?? JSONObject()
    members.append(key: throwConnectedMarker, value: true)
    return AuthResult(userID: result.userID, metadata: .object(members))
}

/// clientConnectedFn: the CONNECTED line, then a throw for a `:throw-connected` login.
func clientConnected(_ client: ClientEvent) throws {
    emit("CONNECTED \(client.clientID) \(client.userID ?? "-")")
    if client.metadata?[throwConnectedMarker] != nil {
        throw HookFailure(description: "scripted clientConnectedFn failure")
    }
}

/// validateRoomFn: throws when a requested room starts with `throw-`; otherwise allows the
/// `public-` rooms (every room with `--allow-all-rooms`).
func validateRoom(_ request: RoomRequest, allowAll: Bool) throws -> [String] {
    if request.rooms.contains(where: { $0.hasPrefix("throw-") }) {
        throw HookFailure(description: "scripted validateRoomFn failure for \(request.rooms)")
    }
    return allowAll ? request.rooms : request.rooms.filter { $0.hasPrefix("public-") }
}

/// The probe events of messageHandler; false when `event` is not one of them.
func handleProbe(_ event: String, _ message: ClientMessage, server: Server) throws -> Bool {
    switch event {
    case "whoami":
        try server.sendToClient(message.clientID, event: "whoami", data: whoami(message, server: server))
    case "send":
        // Absent keys stay absent (nil); `"data": null` is an explicit null (.null).
        let data = message.message.data
        guard let topic = optionalString(data?["topic"]), let destination = optionalString(data?["destination"]) else {
            return true  // a non-string topic or destination cannot be passed to send()
        }
        try server.send(destination: destination, topic: topic, data: data?["data"])
    case "throw":
        throw HookFailure(description: "scripted messageHandler failure")
    default:
        return false
    }
    return true
}

/// `.some(nil)` for an absent member, `.some(text)` for a string, nil for anything else.
private func optionalString(_ value: JSONValue?) -> String?? {
    guard let value else { return .some(nil) }
    return value.stringValue.map { .some($0) }
}

/// `{"id", "userId"?, "metadata"?}` of the sender, read from the kernel (messageHandler runs
/// on the loop).
private func whoami(_ message: ClientMessage, server: Server) -> JSONValue {
    var answer = JSONObject()
    answer.append(key: "id", value: .string(message.clientID))
    if let userID = message.userID { answer.append(key: "userId", value: .string(userID)) }
    let metadata = server.queryOnLoop { $0.client(id: message.clientID)?.metadata } ?? nil
    if let metadata {
        if let members = metadata.objectValue, members[throwConnectedMarker] != nil {
            let kept = members.filter { $0.key != throwConnectedMarker }
            if !kept.isEmpty { answer.append(key: "metadata", value: .object(JSONObject(kept))) }
        } else {
            answer.append(key: "metadata", value: metadata)
        }
    }
    return .object(answer)
}
