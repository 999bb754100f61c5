import Testing
@testable import Switchboard

/// Client ids are RFC 9562 version 4 UUIDs in lowercase hex, as `crypto.randomUUID()` writes them.
@Suite struct IDGeneratorTests {
    @Test func writesTheRandomBitsWithVersionAndVariant() {
        var ids = IDGenerator(random: { (0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210) })
        #expect(ids.uuid() == "01234567-89ab-4def-bedc-ba9876543210")
        var ones = IDGenerator(random: { (.max, .max) })
        #expect(ones.uuid() == "ffffffff-ffff-4fff-bfff-ffffffffffff")
        var zeros = IDGenerator(random: { (0, 0) })
        #expect(zeros.uuid() == "00000000-0000-4000-8000-000000000000")
    }

    @Test func randomIDsHaveTheShapeAndDiffer() throws {
        var ids = IDGenerator()
        let shape = try Regex("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        let made = (0..<100).map { _ in ids.uuid() }
        for id in made { #expect(id.wholeMatch(of: shape) != nil, "\(id)") }
        #expect(Set(made).count == made.count)
    }

    /// With several loops an id names its loop in its last 10 bits, and every other bit stays.
    @Test func aLoopsIndexIsWrittenAndReadBack() {
        var ones = IDGenerator(random: { (.max, .max) })
        ones.shard = 5
        #expect(ones.uuid() == "ffffffff-ffff-4fff-bfff-fffffffffc05")
        #expect(IDGenerator.shard(of: "ffffffff-ffff-4fff-bfff-fffffffffc05") == 5)
        for shard in [0, 1, 2, 1023] {
            var ids = IDGenerator()
            ids.shard = UInt64(shard)
            for _ in 0..<20 { #expect(IDGenerator.shard(of: ids.uuid()) == shard) }
        }
        for notAnID in ["", "room", "ffffffff-ffff-4fff-bfff-fffffffffC05", "ffffffff-ffff-4fff-bfff-fffffffffc0", "x" + String(repeating: "0", count: 35)] {
            #expect(IDGenerator.shard(of: notAnID) == nil, "\(notAnID)")
        }
    }
}
