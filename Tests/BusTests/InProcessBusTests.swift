import SwitchboardBus
import Synchronization
import Testing

@Suite struct InProcessBusTests {
    @Test func publishesReachEveryOtherBusOnTheHubButNotThePublisher() {
        let hub = InProcessBus.Hub()
        let a = InProcessBus(hub: hub), b = InProcessBus(hub: hub), c = InProcessBus(hub: hub)
        let heard = Mutex<[String]>([])
        for (name, bus) in [("a", a), ("b", b), ("c", c)] {
            bus.start(receive: { channel, message in
                heard.withLock { $0.append("\(name) \(channel) \(String(decoding: message, as: UTF8.self))") }
            }, ready: { result in #expect((try? result.get()) != nil) })
        }
        a.publish(channel: "ws:broadcast", message: Array("hello".utf8))
        #expect(heard.withLock { $0.sorted() } == ["b ws:broadcast hello", "c ws:broadcast hello"])
        c.close()
        b.publish(channel: "ws:room:x", message: Array("again".utf8))
        #expect(heard.withLock { $0.count } == 3)
        #expect(heard.withLock { $0.last } == "a ws:room:x again")
    }

    @Test func privateHubsAreIsolated() {
        let a = InProcessBus(), b = InProcessBus()
        let count = Mutex(0)
        b.start(receive: { _, _ in count.withLock { $0 += 1 } }, ready: { _ in })
        a.start(receive: { _, _ in count.withLock { $0 += 1 } }, ready: { _ in })
        a.publish(channel: "ws:broadcast", message: [])
        #expect(count.withLock { $0 } == 0)
    }
}
