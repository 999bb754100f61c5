import Testing
@testable import SwitchboardKernel

/// The compact storage of `ClientRecord` against the plain collections it replaced.
@Suite struct ClientRecordStorageTests {
    /// Random joins and leaves against `Set`, across the size where the hash index appears and
    /// back below it.
    @Test(arguments: [1, 2, 3])
    func roomSetAgreesWithSet(seed: UInt64) {
        var rooms = RoomSet()
        var reference = Set<String>()
        var state = seed
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        for step in 0..<20_000 {
            // 40 names, so the set crosses indexedAbove (16) often; more joins early, more leaves late.
            let room = "room-\(next() % 40)"
            if next() % 100 < (step < 10_000 ? 70 : 30) {
                #expect(rooms.insert(room) == reference.insert(room).inserted)
            } else {
                #expect(rooms.remove(room) == (reference.remove(room) != nil))
            }
            #expect(rooms.count == reference.count)
            #expect(rooms.isEmpty == reference.isEmpty)
            if step % 101 == 0 {
                #expect(rooms.sorted() == reference.sorted())
                #expect(Set(rooms) == reference)
                for probe in 0..<42 { #expect(rooms.contains("room-\(probe)") == reference.contains("room-\(probe)")) }
            }
        }
    }

    @Test func timerGenerationsKeepEachKindApart() {
        var timers = TimerGenerations()
        for kind in TimerKind.allCases { #expect(timers[kind] == 0) }
        for kind in TimerKind.allCases { timers[kind] = UInt64(kind.rawValue) + 100 }
        for kind in TimerKind.allCases { #expect(timers[kind] == UInt64(kind.rawValue) + 100) }
        timers[TimerKind.allCases[0]] = 0
        #expect(timers[TimerKind.allCases[0]] == 0)
        for kind in TimerKind.allCases.dropFirst() { #expect(timers[kind] == UInt64(kind.rawValue) + 100) }
    }

    /// The out-of-line fields read back what was set, and the box goes once every one is clear.
    @Test func extrasComeAndGo() {
        let record = ClientRecord(handle: ClientHandle(1), id: "c1", now: 0)
        #expect(record.hasExtras == false)
        record.authData = .string("token")
        record.admissionRooms = ["a", "b"]
        #expect(record.hasExtras)
        #expect(record.authData == .string("token"))
        #expect(record.admissionRooms == ["a", "b"])
        record.authData = nil
        #expect(record.hasExtras)  // admissionRooms still set
        record.admissionRooms = []
        #expect(record.hasExtras == false)
        record.salt = nil  // clearing an absent field allocates nothing
        #expect(record.hasExtras == false)
        record.serverPublicKey = "key"
        record.salt = "salt"
        #expect(record.serverPublicKey == "key" && record.salt == "salt")
        #expect(record.authData == nil && record.admissionRooms.isEmpty && record.joinSince == nil)
    }
}
