// A fleet mixed with the original (JS) gateway must deliver the same bytes whichever instance a
// message passes through: unpaired surrogate escapes survive the Redis envelope both ways, and
// with `--js-numbers` numbers are written as JS writes them (issue 14).
import Switchboard
import Testing

extension EndToEnd {
    @Suite("Redis: payloads relayed byte for byte, as the original writes them") struct ExactRelay {
        @Test("a broadcast with unpaired surrogates and odd numbers, from a client and from the original's envelope",
              arguments: [false, true])
        func broadcastBytes(jsNumbers: Bool) throws {
            try withTwoInstances(jsNumbers ? ["--js-numbers"] : []) { redis, a, b in
                let a1 = try Peer(a, token: "user:u1", name: "a1"), b1 = try Peer(b, token: "user:u2", name: "b1")
                let numbers = #"[1.0,1E2,-0,1e21,9007199254740993,1e400]"#
                try a1.client.sendText(#"{"event":"broadcast","data":{"s":"\ud800","k\udc00":["x\udbff\u0041"],"n":\#(numbers)}}"#)
                let written = jsNumbers ? #"[1,100,0,1e+21,9007199254740992,null]"# : numbers
                let expected = #"{"event":"broadcast","data":{"s":"\ud800","k\udc00":["x\udbffA"],"n":\#(written)}}"#
                for peer in [a1, b1] {
                    let message = try peer.client.receiveJSON(timeout: 3)
                    #expect(message.raw == expected, "\(peer.name)")
                }

                // As the original publishes it (JSON.stringify): delivered as it is on both.
                let envelope = #"{"serverId":"bun-1","type":"broadcast","event":"news","data":{"\udfff":"\ud83d","n":[1e+21,0.1]}}"#
                try redis.publish("ws:broadcast", envelope)
                for peer in [a1, b1] {
                    let message = try peer.client.receiveJSON(timeout: 3)
                    #expect(message.raw == #"{"event":"news","data":{"\udfff":"\ud83d","n":[1e+21,0.1]}}"#, "\(peer.name)")
                }
            }
        }
    }
}
