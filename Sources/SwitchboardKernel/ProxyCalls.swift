import SwitchboardJSON

/// The `rpc` and `publish` client events (the spec's proxy hooks): their answers as table
/// inputs, and the two messages they produce, `rpc_reply` and `publication`, encoded in the
/// order of the spec's `messages`.
extension Kernel {
    /// Runs `rpc_ok`, `rpc_rejected` or `rpc_threw` with the call in the context, so that the
    /// reply carries the call's `id` and method.
    mutating func rpcReturned(_ record: ClientRecord, _ call: InboundMessage, _ outcome: RPCOutcome, now: Now,
                              into out: inout [Effect]) {
        var context = Context(message: call)
        let kind: InputKind
        switch outcome {
        case .ok(let result):
            kind = .rpcOk
            context.answer = result
        case .rejected: kind = .rpcRejected
        case .threw(let message):
            out.append(.log(.warning, "rpc hook threw: \(message)", record.handle))
            guard let thrown = Hook.rpc.throwInput else { return }  // `on_throw: log`
            kind = thrown
        }
        step(record, kind, context, now: now, into: &out)
    }

    /// Runs `publish_ok`, `publish_rejected` or `publish_threw` for a publication to `room`.
    mutating func publishReturned(_ record: ClientRecord, _ room: String, _ outcome: PublishOutcome, now: Now,
                                  into out: inout [Effect]) {
        var context = Context(room: room)
        let kind: InputKind
        switch outcome {
        case .ok(let data):
            kind = .publishOk
            context.answer = data
        case .rejected: kind = .publishRejected
        case .threw(let message):
            out.append(.log(.warning, "publish hook threw: \(message)", record.handle))
            guard let thrown = Hook.publish.throwInput else { return }  // `on_throw: log`
            kind = thrown
        }
        step(record, kind, context, now: now, into: &out)
    }

    /// `send_rpc_reply` (no error) and `send_rpc_error`.
    mutating func sendRPCReply(_ record: ClientRecord, _ context: Context, error: ErrorMessage?,
                               into out: inout [Effect]) {
        let data = Self.rpcReplyData(call: context.message, result: context.answer, error: error)
        send(to: record, event: KernelMessage.rpcReply.event, data: data,
             payload: replyPayload(event: KernelMessage.rpcReply.event, data: data), into: &out)
    }

    /// `publish_to_room`: `publication` to the room's members here, the publisher included,
    /// and the same message as a `room` envelope for every other instance.
    func publishToRoom(_ record: ClientRecord, _ context: Context, into out: inout [Effect]) {
        guard let room = context.room else { return }
        let event = KernelMessage.publication.event
        let data = Self.publicationData(room: room, clientID: record.id, userID: record.userID, data: context.answer)
        if let members = rooms[room] {
            fanOut(members, event: event, data: data, exclude: [], into: &out)
        }
        let envelope = BusEnvelope(serverID: serverID, kind: .room, target: room, event: event, data: data)
        out.append(.publish(channel: envelope.channel, message: envelope.encoded()))
    }

    /// The `data` of `rpc_reply`: the call's `id` and method when it had them, then the result
    /// (JSON null when the hook answered none) or the error's message.
    static func rpcReplyData(call: InboundMessage?, result: JSONValue?, error: ErrorMessage?) -> JSONValue {
        var members: [(String, JSONValue)] = []
        for field in RpcReplyField.wireOrder {
            switch field {
            case .id:
                if let id = call?.id { members.append((field.wireName, id)) }
            case .method:
                if case .string(let method)? = call?.data?["method"] { members.append((field.wireName, .string(method))) }
            case .result:
                if error == nil { members.append((field.wireName, result ?? .null)) }
            case .error:
                if let error { members.append((field.wireName, .string(error.text))) }
            }
        }
        return .object(JSONObject(members))
    }

    /// The `data` of `publication`, in the spec's order (`data` is JSON null when absent).
    static func publicationData(room: String, clientID: String, userID: String?, data: JSONValue?) -> JSONValue {
        var members: [(String, JSONValue)] = []
        for field in PublicationField.wireOrder {
            switch field {
            case .room: members.append((field.wireName, .string(room)))
            case .clientId: members.append((field.wireName, .string(clientID)))
            case .userId: if let userID { members.append((field.wireName, .string(userID))) }
            case .data: members.append((field.wireName, data ?? .null))
            }
        }
        return .object(JSONObject(members))
    }
}
