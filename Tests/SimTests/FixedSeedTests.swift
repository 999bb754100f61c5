// The seeds `make test` runs, picked from a sweep of seeds 1-1200 so that together they cover
// every fault the swarm draws: encryption with and without handshakeFn, no validateRoomFn, no
// pings, bus outages, closes 1001/1002/1007/1008/1009/4001/4002/4003/4004, stale hook answers,
// backpressure-heavy worlds, one to three instances, 1 to 200 clients, shutdown endings.
// When the swarm changes, re-pick them (`scripts/sim 1-1200` prints each seed's summary). The
// event loops of each server (1-3) are drawn by a generator of their own: adding them left every
// seed's faults as they were, and most of these seeds now run a server of several loops.
import SwitchboardSim
import Testing

let fixedSeeds: [UInt64] = [
    18, 85, 115, 182, 200, 271, 299, 315, 337, 361, 448, 480, 495, 585, 622, 635, 715, 776, 834, 893, 952, 1026,
]

@Test("Fixed seed passes the reference model", arguments: fixedSeeds)
func fixedSeed(_ seed: UInt64) async {
    let report = await Simulation.run(seed: seed)
    #expect(report.passed, Comment(rawValue: report.failureText))
    #expect(report.traceLines > 100)
}
