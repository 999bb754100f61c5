@testable import Switchboard
import Testing

/// The transport's clock-driven work (`Lifecycle`) and the connection registry.
@Suite("Lifecycle and registry")
struct LifecycleTests {
    static func options(idleTimeout: Int64 = 4_000, upgradeTimeout: Int64 = 1_000) -> ServerOptions {
        var options = ServerOptions()
        options.idleTimeout = idleTimeout
        options.upgradeTimeout = upgradeTimeout
        return options
    }

    @Test("A request head not complete within upgradeTimeout is answered 408 at the next sweep")
    func upgradeTimeout() {
        let world = EngineHarness(options: Self.options())
        world.engine.connectionOpened(1, peer: "p")
        world.receive(1, Array("GET /ws HTTP/1.1\r\nHost: t\r\n".utf8))
        world.driver.clock += 1_000
        world.engine.timerFired(Timers.idleSweep)
        #expect(world.driver.writes[1] == nil, "not late yet")
        world.driver.clock += 1
        world.engine.timerFired(Timers.idleSweep)
        let answer = String(decoding: world.driver.written(1), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), "\(answer)")
        #expect(world.driver.closed[1] == true, "closed after the answer is flushed")
        #expect(world.engine.stats.upgradeTimeouts == 1)
    }

    @Test("A silent WebSocket is pinged after half the idle timeout and closed after all of it")
    func idleTimeout() async {
        let world = EngineHarness(options: Self.options())
        await world.connect(1...1)
        world.driver.clock += 2_001
        world.engine.timerFired(Timers.idleSweep)
        #expect(world.driver.writes[1]?.map(\.bytes) == [[0x89, 0x00]])
        world.driver.clock += 1_000
        world.engine.timerFired(Timers.idleSweep)
        #expect(world.driver.writes[1]?.count == 1, "one ping while it is outstanding")
        #expect(world.driver.closed[1] == nil)
        world.driver.clock += 1_000
        world.engine.timerFired(Timers.idleSweep)
        #expect(world.driver.closed[1] == false, "closed at once, nothing flushed")
        #expect(world.engine.stats.idleTimeouts == 1)
    }

    @Test("A handle of a closed connection finds nothing, even when its slot is reused")
    func staleHandle() throws {
        let links = LinkRegistry(maxHeaderBytes: 1_024, maxConnectionsPerIP: 0)
        let first = try #require(links.open(1, peer: "p", now: 0))
        #expect(links.remove(1) === first)
        let second = try #require(links.open(2, peer: "p", now: 0))
        #expect(first.handle.rawValue & 0xFFFF_FFFF == second.handle.rawValue & 0xFFFF_FFFF, "the slot is reused")
        #expect(links[first.handle] == nil)
        #expect(links[second.handle] === second)
        #expect(links[ConnectionID(2)] === second && links[ConnectionID(1)] == nil)
    }

    @Test("maxConnectionsPerIP counts the open connections of each address")
    func perAddressLimit() {
        let links = LinkRegistry(maxHeaderBytes: 1_024, maxConnectionsPerIP: 2)
        #expect(links.open(1, peer: "a", now: 0) != nil)
        #expect(links.open(2, peer: "a", now: 0) != nil)
        #expect(links.open(3, peer: "a", now: 0) == nil)
        #expect(links.open(4, peer: "b", now: 0) != nil)
        _ = links.remove(1)
        #expect(links.open(5, peer: "a", now: 0) != nil)
        #expect(links.count == 3)
    }
}
