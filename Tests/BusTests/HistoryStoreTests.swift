import Foundation
import SwitchboardBus
import Testing
import TestSupport

/// The history stores (issue 19): the in-memory ring's size and age bounds and its offsets, and
/// the Redis store on a real redis-server (offsets, the published envelope, trims, a flush).
@Suite struct HistoryStoreTests {
    final class Clock: @unchecked Sendable { var now: Int64 = 0 }

    static func record(_ room: String, _ text: String, channel: String = "ws:room:r") -> HistoryRecord {
        let message = Array(#"{"event":"m","data":"\#(text)"}"#.utf8)
        let parts = [Array(#"{"serverId":"s","type":"room","target":"\#(room)","event":"m","data":"\#(text)","offset":"#.utf8),
                     Array(#","epoch":"#.utf8), Array("}".utf8)]
        return HistoryRecord(room: room, message: message, channel: channel, envelopeParts: parts, offsetFirst: true)
    }

    static func read(_ store: some HistoryStore, _ room: String, after: UInt64?) -> HistorySnapshot? {
        let answer = OneShot<HistorySnapshot?>()
        store.read(room: room, after: after) { answer.set($0) }
        return answer.wait(timeout: 10) ?? nil
    }

    static func texts(_ snapshot: HistorySnapshot?) -> [String] {
        (snapshot?.entries ?? []).map { "\($0.offset) \(String(decoding: $0.message, as: UTF8.self))" }
    }

    // MARK: - In memory

    @Test func inMemoryOffsetsGrowPerRoomAndTheRecordedCallbackSeesThem() {
        let store = InMemoryHistoryStore(size: 10, ttlMilliseconds: 1_000, epoch: "e")
        var stamps: [String] = []
        for (room, text) in [("a", "1"), ("b", "1"), ("a", "2")] {
            store.append(Self.record(room, text)) { stamps.append("\(room) \($0) \($1)") }
        }
        #expect(stamps == ["a 1 e", "b 1 e", "a 2 e"])
        #expect(Self.read(store, "a", after: 0) == HistorySnapshot(epoch: "e", offset: 2, entries: [
            HistoryStoreEntry(offset: 1, message: Self.record("a", "1").message),
            HistoryStoreEntry(offset: 2, message: Self.record("a", "2").message),
        ]))
        #expect(Self.read(store, "a", after: nil)?.entries == [])
        #expect(Self.read(store, "never", after: 0) == HistorySnapshot(epoch: "e", offset: 0, entries: []))
    }

    @Test func inMemoryKeepsAtMostSizeMessages() {
        let store = InMemoryHistoryStore(size: 3, ttlMilliseconds: 1_000_000, epoch: "e")
        for index in 1...100 { store.append(Self.record("a", "\(index)")) { _, _ in } }
        let snapshot = Self.read(store, "a", after: 0)
        #expect(snapshot?.offset == 100)
        #expect(snapshot?.entries.map(\.offset) == [98, 99, 100])
    }

    @Test func inMemoryDropsMessagesOlderThanTheTTLButKeepsTheOffset() {
        let clock = Clock()
        let store = InMemoryHistoryStore(size: 100, ttlMilliseconds: 50, epoch: "e", clock: { clock.now })
        store.append(Self.record("a", "old")) { _, _ in }
        clock.now = 40
        store.append(Self.record("a", "newer")) { _, _ in }
        clock.now = 51  // the first is 51 ms old, the second 11 ms
        #expect(Self.read(store, "a", after: 0)?.entries.map(\.offset) == [2])
        clock.now = 1_000
        let aged = Self.read(store, "a", after: 0)
        #expect(aged?.entries == [] && aged?.offset == 2)
        var next: UInt64 = 0
        store.append(Self.record("a", "after")) { offset, _ in next = offset }
        #expect(next == 3)  // offsets never repeat within the epoch
    }

    @Test func everyInMemoryStoreDrawsItsOwnEpoch() {
        #expect(InMemoryHistoryStore(size: 1, ttlMilliseconds: 1).epoch != InMemoryHistoryStore(size: 1, ttlMilliseconds: 1).epoch)
        #expect(InMemoryHistoryStore.randomEpoch().count == 16)
    }

    // MARK: - Redis

    static func redisStore(_ redis: RedisServer, size: Int = 100, ttl: Int64 = 60_000) -> RedisHistoryStore {
        let store = RedisHistoryStore(url: redis.busURL, streamKeyPrefix: "sb:history:stream:", metaKeyPrefix: "sb:history:meta:",
                                      size: size, ttlMilliseconds: ttl, epochTTLMilliseconds: 600_000)
        store.start()
        return store
    }

    @Test func redisGivesGaplessOffsetsAndPublishesTheStampedEnvelope() throws {
        let redis = try RedisServer()
        defer { redis.kill9() }
        let inbox = Inbox()
        let bus = try startedBus(redis.busURL, inbox: inbox)
        defer { bus.close() }
        let store = Self.redisStore(redis)
        defer { store.close() }
        for text in ["x", "y", "z"] { store.append(Self.record("r", text)) { _, _ in Issue.record("Redis delivers through the bus") } }
        #expect(inbox.wait { $0.count == 3 })
        let first = Self.read(store, "r", after: nil)
        let epoch = try #require(first?.epoch)
        #expect(first?.offset == 3 && first?.entries == [])
        #expect(inbox.messages.map(\.description) == ["x", "y", "z"].enumerated().map { index, text in
            #"ws:room:r {"serverId":"s","type":"room","target":"r","event":"m","data":"\#(text)","offset":\#(index + 1),"epoch":"\#(epoch)"}"#
        })
        #expect(Self.texts(Self.read(store, "r", after: 1)) == [#"2 {"event":"m","data":"y"}"#, #"3 {"event":"m","data":"z"}"#])
        // A room never written has an epoch and offset 0 (a client can hold a position).
        let empty = Self.read(store, "fresh", after: 0)
        #expect(empty?.offset == 0 && empty?.epoch.isEmpty == false)
    }

    @Test func redisAnswersNoMessagesWhenMoreWereMissedThanItKeeps() throws {
        let redis = try RedisServer()
        defer { redis.kill9() }
        let store = Self.redisStore(redis, size: 2)
        defer { store.close() }
        for index in 1...5 { store.append(Self.record("r", "\(index)")) { _, _ in } }
        #expect(pollUntil(timeout: 5) { Self.read(store, "r", after: nil)?.offset == 5 })
        #expect(Self.read(store, "r", after: 3)?.entries.map(\.offset) == [4, 5])
        #expect(Self.read(store, "r", after: 1)?.entries == [])  // 4 missed, 2 kept: cannot recover
    }

    @Test func redisDropsEntriesOlderThanTheTTL() throws {
        let redis = try RedisServer()
        defer { redis.kill9() }
        let store = Self.redisStore(redis, ttl: 300)
        defer { store.close() }
        let start = Date()
        store.append(Self.record("r", "old")) { _, _ in }
        #expect(pollUntil(timeout: 5) { Self.read(store, "r", after: nil)?.offset == 1 })
        store.append(Self.record("r", "new")) { _, _ in }
        #expect(pollUntil(timeout: 5) { Self.read(store, "r", after: nil)?.offset == 2 })
        if Date().timeIntervalSince(start) < 0.2 {  // both still younger than the ttl (a slow machine skips this)
            #expect(Self.read(store, "r", after: 0)?.entries.map(\.offset) == [1, 2])
        }
        #expect(pollUntil(timeout: 5) { Self.read(store, "r", after: 0)?.entries.isEmpty == true })
        #expect(Self.read(store, "r", after: 0)?.offset == 2)
    }

    @Test func aFlushedRedisGivesANewEpoch() throws {
        let redis = try RedisServer()
        defer { redis.kill9() }
        let store = Self.redisStore(redis)
        defer { store.close() }
        store.append(Self.record("r", "1")) { _, _ in }
        let before = try #require(Self.read(store, "r", after: nil))
        #expect(before.offset == 1)
        _ = try redis.command(["FLUSHALL"])
        let after = try #require(Self.read(store, "r", after: nil))
        #expect(after.epoch != before.epoch)
        #expect(after.offset == 0)
    }

    @Test func appendsWaitForRedisAndAreSentOnceItAnswers() throws {
        let redis = try RedisServer(start: false)
        defer { redis.kill9() }
        let store = Self.redisStore(redis)
        defer { store.close() }
        store.append(Self.record("r", "early")) { _, _ in }
        #expect(Self.read(store, "r", after: nil) == nil)  // unreachable: no answer but nil
        try redis.start()
        #expect(pollUntil(timeout: 10) { Self.read(store, "r", after: 0)?.entries.count == 1 })
    }
}
