import SwitchboardJSON
import Testing
@testable import SwitchboardKernel

/// In a fleet mixed with the original (JS) gateway, a message must reach clients as the same
/// bytes whichever instance it passed through: unpaired surrogate escapes survive the echo, the
/// bus envelope and the relay, and with `numberStyle = .javascript` numbers are written as JS
/// writes them.
@Suite struct ExactRelayTests {
    typealias Machine = KernelScenarioTests.Machine

    /// The message the app's handler gets for `json` from client 1.
    static func handled(_ m: inout Machine, _ json: String) -> InboundMessage? {
        for effect in m.text(1, json) {
            if case .callMessageHandler(_, _, _, let message) = effect { return message }
        }
        return nil
    }

    @Test func echoKeepsUnpairedSurrogatesAndNumbers() throws {
        var m = Machine()
        _ = m.connect(1, user: "alice")
        let data = #"{"\udc00":["\ud800","a\udbff\u0041"],"n":[1.0,1E2,-0,9007199254740993]}"#
        let message = try #require(Self.handled(&m, #"{"event":"echo","data":\#(data)}"#))
        let echo = Payload(event: message.event, data: message.data)
        #expect(echo.description == #"{"event":"echo","data":{"\udc00":["\ud800","a\udbffA"],"n":[1.0,1E2,-0,9007199254740993]}}"#)

        var js = Machine { $0.numberStyle = .javascript }
        _ = js.connect(1, user: "alice")
        let jsMessage = try #require(Self.handled(&js, #"{"event":"echo","data":\#(data)}"#))
        #expect(Payload(event: jsMessage.event, data: jsMessage.data).description
            == #"{"event":"echo","data":{"\udc00":["\ud800","a\udbffA"],"n":[1,100,0,9007199254740992]}}"#)
    }

    @Test func busEnvelopeRoundTrip() throws {
        let data = try JSONValue.parse(#"{"\ud800k":"v\udfff","n":1.50}"#)
        let envelope = BusEnvelope(serverID: "me", kind: .room, target: "r", event: "e", data: data, exclude: ["c1"])
        let encoded = String(decoding: envelope.encoded(), as: UTF8.self)
        #expect(encoded == #"{"serverId":"me","type":"room","target":"r","event":"e","data":{"\ud800k":"v\udfff","n":1.50},"exclude":["c1"]}"#)
        #expect(try BusEnvelope.decode(envelope.encoded()).get() == envelope)
        let js = try BusEnvelope.decode(envelope.encoded(), numbers: .javascript).get()
        #expect(js.data == (try JSONValue.parse(#"{"\ud800k":"v\udfff","n":1.5}"#)))
    }

    /// An envelope as the original publishes it (`JSON.stringify`), relayed to a local client.
    @Test(arguments: [JSONNumberStyle.exact, .javascript])
    func relaysTheOriginalsEnvelope(numbers: JSONNumberStyle) {
        var m = Machine { $0.numberStyle = numbers }
        _ = m.connect(1, user: "alice")
        let published = #"{"serverId":"bun-1","type":"user","target":"alice","event":"dm","data":{"from":"\ud83d","t":[1e+21,0.1,5e-324]}}"#
        let effects = m.feed(.busMessage(channel: "ws:user:alice", message: Array(published.utf8)))
        #expect(KernelScenarioTests.sent(effects) == [#"1 {"event":"dm","data":{"from":"\ud83d","t":[1e+21,0.1,5e-324]}}"#])
        // A producer that does not write JS numbers: kept, or rewritten as the original would.
        let other = #"{"serverId":"emitter","type":"user","target":"alice","event":"dm","data":{"t":[1.0,-0,1e21]}}"#
        let relayed = KernelScenarioTests.sent(m.feed(.busMessage(channel: "ws:user:alice", message: Array(other.utf8))))
        #expect(relayed == [numbers == .exact ? #"1 {"event":"dm","data":{"t":[1.0,-0,1e21]}}"#
                                              : #"1 {"event":"dm","data":{"t":[1,0,1e+21]}}"#])
    }
}
