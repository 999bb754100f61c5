import Foundation
import Testing
import SwitchboardJSON

/// Every seed in `fuzz/json/corpus` reads as its name prefix says.
@Suite struct CorpusTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz/json/corpus")

    @Test func seedsClassifyAsNamed() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: CorpusTests.directory.path).sorted()
        #expect(names.count >= 20)
        for name in names {
            let bytes = [UInt8](try Data(contentsOf: CorpusTests.directory.appendingPathComponent(name)))
            let envelope = InboundEnvelope.read(bytes)
            let kind: String
            switch envelope {
            case .invalidJSON: kind = "invalid-"
            case .noEvent: kind = "noevent-"
            case .message: kind = "message-"
            }
            #expect(name.hasPrefix(kind), "\(name) reads as \(envelope)")
            #expect((try? JSONValue.parse(bytes)) == nil ? kind == "invalid-" : kind != "invalid-", "\(name)")
        }
    }
}
