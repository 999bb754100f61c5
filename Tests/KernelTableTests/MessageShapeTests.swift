import SwitchboardJSON
import Testing
@testable import SwitchboardKernel

/// The bytes of `connected`, `error` and the bus envelope follow the spec's `messages` section
/// (through the generated `ConnectedField`, `ErrorField` and `BusEnvelopeField`): members in
/// wire order, the ones that are not optional always there.
@Suite struct MessageShapeTests {
    typealias Machine = KernelScenarioTests.Machine

    /// The member names of a JSON object, in the order written.
    static func keys(_ value: JSONValue?) -> [String] {
        guard case .object(let object)? = value else { return [] }
        return object.members.map(\.key)
    }

    /// `event` and `data` of an encoded message.
    static func read(_ payload: Payload) throws -> (event: String, data: JSONValue?) {
        let value = try JSONValue.parse(payload.bytes)
        #expect(keys(value) == ["event", "data"])
        return (try #require(value["event"]?.stringValue), value["data"])
    }

    /// The payloads sent to one client.
    static func payloads(_ effects: [Effect]) -> [Payload] {
        effects.compactMap { if case .send(_, let payload) = $0 { payload } else { nil } }
    }

    /// `names` in the order of `wireOrder`, with every member that is not optional among them.
    static func expectWireOrder<Field: Equatable>(_ names: [String], _ wireOrder: [Field], wireName: (Field) -> String,
                                                  isOptional: (Field) -> Bool, present: Set<String>) {
        let expected = wireOrder.filter { !isOptional($0) || present.contains(wireName($0)) }.map(wireName)
        #expect(names == expected)
    }

    @Test(arguments: [(String?.none, false), ("alice", false), ("alice", true), (nil, true)])
    func connectedFollowsConnectedField(user: String?, encrypted: Bool) throws {
        var m = Machine { $0.requireEncryption = encrypted }
        var effects = m.connect(1, user: user)
        if encrypted {
            guard case .callHandshake(_, let attempt, _, _, _)? = effects.last else {
                Issue.record("no handshake call: \(effects)")
                return
            }
            effects = m.feed(.handshakeReturned(ClientHandle(1), attempt, .ok(serverPublicKey: "K", salt: "S")))
        }
        let payload = try #require(Self.payloads(effects).first)
        let (event, data) = try Self.read(payload)
        #expect(event == KernelMessage.connected.event)
        var present: Set<String> = []
        if user != nil { present.insert("userId") }
        if encrypted { present.formUnion(["serverPublicKey", "salt"]) }
        Self.expectWireOrder(Self.keys(data), ConnectedField.wireOrder, wireName: \.wireName, isOptional: \.isOptional,
                             present: present)
        #expect(data?["id"]?.stringValue == "c1")
        #expect(data?["time"]?.stringValue == "2025-11-25T22:00:00.123Z")
    }

    @Test func everyErrorPayloadFollowsErrorField() throws {
        let kernel = Kernel(serverID: "me")
        for error in ErrorMessage.allCases {
            let (event, data) = try Self.read(kernel.errorPayloads[Int(error.rawValue)])
            #expect(event == KernelMessage.error.event)
            #expect(Self.keys(data) == ErrorField.wireOrder.map(\.wireName))
            #expect(data?["message"]?.stringValue == error.text)
            #expect(kernel.errorData[Int(error.rawValue)] == data)
        }
    }

    @Test func errorsSentAndTransformedFollowErrorField() throws {
        var m = Machine()
        _ = m.feed(.opened(ClientHandle(1), id: "c1"))
        let (event, data) = try Self.read(try #require(Self.payloads(m.text(1, #"{"event":"join","data":{"rooms":["a"]}}"#)).first))
        #expect(event == "error")
        #expect(Self.keys(data) == ["message"])
        #expect(data?["message"]?.stringValue == "Not authenticated")

        // An encrypted client's error goes to the transformer as event and data: the same members.
        var e = Machine { $0.requireEncryption = true; $0.outboundTransformerConfigured = true }
        guard case .callHandshake(_, let attempt, _, _, _)? = e.connect(1, user: "u").last else {
            Issue.record("no handshake call")
            return
        }
        _ = e.feed(.handshakeReturned(ClientHandle(1), attempt, .ok(serverPublicKey: "K", salt: "S")))
        let effects = e.text(1, #"{"event":"authenticate"}"#)
        guard case .sendTransformed(_, let transformedEvent, let transformedData)? = effects.last else {
            Issue.record("no transformed error: \(effects)")
            return
        }
        #expect(transformedEvent == KernelMessage.error.event)
        #expect(Self.keys(transformedData) == ErrorField.wireOrder.map(\.wireName))
        #expect(transformedData?["message"]?.stringValue == "Already authenticated")
    }

    @Test func busEnvelopeFollowsBusEnvelopeField() throws {
        let envelopes = [
            BusEnvelope(serverID: "s", kind: .client, target: "c1", event: "e", data: ["k": 1]),
            BusEnvelope(serverID: "s", kind: .user, target: "u1", event: "e", data: nil),
            BusEnvelope(serverID: "s", kind: .room, target: "r", event: "e", data: .null, exclude: []),
            BusEnvelope(serverID: "s", kind: .broadcast, event: "e", data: "x", exclude: ["c2"]),
            BusEnvelope(serverID: "s", kind: .broadcast, event: "e", data: nil),
        ]
        for envelope in envelopes {
            let value = try JSONValue.parse(envelope.encoded())
            var present: Set<String> = []
            if envelope.target != nil { present.insert("target") }
            if envelope.data != nil { present.insert("data") }
            if envelope.exclude != nil { present.insert("exclude") }
            Self.expectWireOrder(Self.keys(value), BusEnvelopeField.wireOrder, wireName: \.wireName,
                                 isOptional: \.isOptional, present: present)
            #expect(BusEnvelope.decode(envelope.encoded()) == .success(envelope))
        }
        // The original's bytes, pinned.
        #expect(String(decoding: envelopes[2].encoded(), as: UTF8.self)
            == #"{"serverId":"s","type":"room","target":"r","event":"e","data":null,"exclude":[]}"#)
    }
}
