@testable import SwitchboardBus
import Testing

/// `RESPPush.parse` reads pub/sub pushes in place; anything else, or a push cut short, is left
/// to hiredis (nil), never misread.
@Suite struct RESPPushTests {
    private func parse(_ text: String, at start: Int = 0) -> (channel: String, payload: [UInt8], end: Int)? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { raw in
            RESPPush.parse(raw, at: start).map { (String(decoding: raw[$0.channel], as: UTF8.self), Array(raw[$0.payload]), $0.end) }
        }
    }

    @Test func aMessageAndAPmessageGiveTheActualChannelAndThePayload() {
        let message = "*3\r\n$7\r\nmessage\r\n$12\r\nws:broadcast\r\n$2\r\nhi\r\n"
        let found = parse(message)
        #expect(found?.channel == "ws:broadcast" && found?.payload == Array("hi".utf8) && found?.end == message.utf8.count)
        let pmessage = "*4\r\n$8\r\npmessage\r\n$9\r\nws:room:*\r\n$9\r\nws:room:r\r\n$0\r\n\r\n"
        let second = parse(message + pmessage, at: message.utf8.count)
        #expect(second?.channel == "ws:room:r" && second?.payload == [] && second?.end == (message + pmessage).utf8.count)
    }

    @Test func aPayloadWithCRLFAndStarsInsideIsReadByItsLength() {
        let payload = "a\r\n*3\r\n$1\r\nb"
        let found = parse("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$\(payload.utf8.count)\r\n\(payload)\r\n")
        #expect(found?.payload == Array(payload.utf8))
    }

    @Test func everyCutShortOfTheEndIsIncomplete() {
        let message = Array("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$3\r\nabc\r\n".utf8)
        for cut in 0..<message.count {
            let found = Array(message[..<cut]).withUnsafeBytes { RESPPush.parse($0, at: 0) }
            #expect(found == nil, "cut at \(cut)")
        }
    }

    @Test func confirmationsRepliesAndMalformedFramesAreNotPushes() {
        #expect(parse("*3\r\n$9\r\nsubscribe\r\n$12\r\nws:broadcast\r\n:1\r\n") == nil)
        #expect(parse("*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n:1\r\n") == nil)          // payload not a bulk string
        #expect(parse("*4\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n") == nil)  // 4 parts but not pmessage
        #expect(parse("*3\r\n$8\r\npmessage\r\n$1\r\nc\r\n$1\r\nd\r\n") == nil)       // 3 parts but pmessage
        #expect(parse("*3\r\n$7\r\nmessage\r\n$1\r\ncX\n$1\r\nd\r\n") == nil)         // no CRLF after a bulk
        #expect(parse("+PONG\r\n") == nil)
        #expect(parse("-ERR nope\r\n") == nil)
        #expect(parse("*3\r\n$99999999999\r\n") == nil)
    }
}
