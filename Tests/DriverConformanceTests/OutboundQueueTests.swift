import Glibc
import Switchboard
import Testing

/// `OutboundQueue`, the building block a loop-thread driver writes from.
@Suite("OutboundQueue")
struct OutboundQueueTests {
    @Test("shared and copied bytes leave in order through iovecs; partial writes keep their place")
    func order() {
        var queue = OutboundQueue()
        queue.append(SharedBytes(Array("ab".utf8)))
        Array("cd".utf8).withUnsafeBytes { queue.append(copying: $0) }
        Array("ef".utf8).withUnsafeBytes { queue.append(copying: $0) }  // merged with cd
        #expect(queue.bytes == 6)
        let iovecs = UnsafeMutablePointer<iovec>.allocate(capacity: 8)
        defer { iovecs.deallocate() }
        let (count, total) = queue.fill(iovecs, capacity: 8)
        #expect(count == 2 && total == 6)
        queue.consume(3)
        #expect(Array(queue.firstSegment()) == Array("def".utf8))
        queue.consume(3)
        #expect(queue.isEmpty)
        queue.discardAll()
    }

    @Test("a refusal or a backlog owes one drain, reported when the queue empties")
    func drains() {
        var queue = OutboundQueue()
        #expect(settle(&queue) == [true, false])  // empty, nothing owed
        queue.append(SharedBytes([UInt8](repeating: 1, count: 10)))
        #expect(accept(&queue, 10))
        #expect(!accept(&queue, 9))  // refused: a drain is owed
        queue.consume(10)
        #expect(settle(&queue) == [true, true])
        #expect(settle(&queue) == [true, false])  // owed once
        queue.append(SharedBytes([1, 2]))
        #expect(settle(&queue) == [false, false])  // left queued after a write attempt: owed
        queue.consume(2)
        #expect(settle(&queue) == [true, true])
        queue.discardAll()
    }
}

/// `settle()` as [isEmpty, drained] (a mutating call cannot sit inside `#expect`).
private func settle(_ queue: inout OutboundQueue) -> [Bool] {
    let (isEmpty, drained) = queue.settle()
    return [isEmpty, drained]
}

private func accept(_ queue: inout OutboundQueue, _ limit: Int) -> Bool { queue.accepts(limit) }
