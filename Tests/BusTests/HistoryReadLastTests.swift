import Foundation
import SwitchboardBus
import Testing
import TestSupport

/// `HistoryStore.readLast`, the read of the `history` query: the last `count` kept messages,
/// oldest first, with the room's epoch and offset, in memory and in a real redis-server.
@Suite struct HistoryReadLastTests {
    typealias Store = HistoryStoreTests

    static func last(_ store: some HistoryStore, _ room: String, _ count: Int) -> HistorySnapshot? {
        let answer = OneShot<HistorySnapshot?>()
        store.readLast(room: room, count: count) { answer.set($0) }
        return answer.wait(timeout: 10) ?? nil
    }

    @Test func inMemoryGivesTheLastCountOldestFirst() {
        let clock = HistoryStoreTests.Clock()
        let store = InMemoryHistoryStore(size: 4, ttlMilliseconds: 50, epoch: "e", clock: { clock.now })
        for index in 1...6 { store.append(Store.record("a", "\(index)")) { _, _ in } }
        #expect(Store.texts(Self.last(store, "a", 2)) == [#"5 {"event":"m","data":"5"}"#, #"6 {"event":"m","data":"6"}"#])
        #expect(Self.last(store, "a", 10)?.entries.map(\.offset) == [3, 4, 5, 6])  // all it keeps
        let position = Self.last(store, "a", 0)
        #expect(position == HistorySnapshot(epoch: "e", offset: 6, entries: []))
        #expect(Self.last(store, "never", 5) == HistorySnapshot(epoch: "e", offset: 0, entries: []))
        clock.now = 51  // every message older than the ttl: none, but the offset stays
        #expect(Self.last(store, "a", 3) == HistorySnapshot(epoch: "e", offset: 6, entries: []))
    }

    @Test func redisGivesTheLastCountOldestFirst() throws {
        let redis = try RedisServer()
        defer { redis.kill9() }
        let store = Store.redisStore(redis, size: 100)
        defer { store.close() }
        for index in 1...5 { store.append(Store.record("r", "\(index)")) { _, _ in } }
        #expect(pollUntil(timeout: 5) { Self.last(store, "r", 0)?.offset == 5 })
        let two = try #require(Self.last(store, "r", 2))
        #expect(Store.texts(two) == [#"4 {"event":"m","data":"4"}"#, #"5 {"event":"m","data":"5"}"#])
        #expect(two.epoch == Store.read(store, "r", after: nil)?.epoch)  // the epoch the join's read gives
        #expect(Self.last(store, "r", 9)?.entries.map(\.offset) == [1, 2, 3, 4, 5])
        #expect(Self.last(store, "r", 0)?.entries == [])
        // A room never written has an epoch and offset 0, as for a join.
        let fresh = Self.last(store, "fresh", 3)
        #expect(fresh?.offset == 0 && fresh?.entries == [] && fresh?.epoch.isEmpty == false)
    }

    @Test func redisLeavesOutEntriesOlderThanTheTTL() throws {
        let redis = try RedisServer()
        defer { redis.kill9() }
        let store = Store.redisStore(redis, ttl: 300)
        defer { store.close() }
        store.append(Store.record("r", "old")) { _, _ in }
        #expect(pollUntil(timeout: 5) { Self.last(store, "r", 0)?.offset == 1 })
        #expect(pollUntil(timeout: 5) { Self.last(store, "r", 5)?.entries.isEmpty == true })
        #expect(Self.last(store, "r", 5)?.offset == 1)
    }

    @Test func anUnreachableRedisAnswersNil() throws {
        let redis = try RedisServer(start: false)
        defer { redis.kill9() }
        let store = Store.redisStore(redis)
        #expect(Self.last(store, "r", 5) == nil)
        store.close()
        #expect(Self.last(store, "r", 5) == nil)  // closed: answered at once
    }
}
