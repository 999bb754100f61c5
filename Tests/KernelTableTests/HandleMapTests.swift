import Testing
@testable import SwitchboardKernel

@Suite struct HandleMapTests {
    /// Random inserts, updates and removals against `Dictionary`, with keys that collide a lot.
    @Test(arguments: [1, 2, 3])
    func agreesWithDictionary(seed: UInt64) {
        var map = HandleMap<Int>()
        var reference: [UInt64: Int] = [:]
        var state = seed
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        for step in 0..<50_000 {
            let key = next() % 512 | (next() % 4) << 32  // few distinct keys: long probe runs
            if next() % 3 == 0 {
                map[ClientHandle(key)] = nil
                reference[key] = nil
            } else {
                map[ClientHandle(key)] = step
                reference[key] = step
            }
            if step % 997 == 0 {
                for probe in 0..<600 as Range<UInt64> {
                    #expect(map[ClientHandle(probe)] == reference[probe])
                }
            }
        }
        #expect(map.count == reference.count)
        for (key, value) in reference { #expect(map[ClientHandle(key)] == value) }
    }
}
