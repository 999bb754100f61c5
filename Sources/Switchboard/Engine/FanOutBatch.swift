import SwitchboardCodec

/// Small fan-out frames to one recipient list, back to back, so that the broadcasts of one
/// read cost each recipient one lookup, one backpressure check and one copy (`Outbox.flush`).
///
/// Performance contract with the kernel: the recipient list is recognized by its array's
/// storage address, not by comparing handles. The kernel hands out a room's member array
/// itself (copy-on-write, not a copy), so consecutive broadcasts to an unchanged audience
/// share one buffer; a changed audience is a new buffer. Holding `handles` here keeps that
/// buffer alive, so its address cannot be reused by a different list while the batch waits.
/// A list that is equal but separately built is just not batched with it (correct, slower).
struct FanOutBatch {
    private(set) var handles: [ClientHandle] = []
    private(set) var payloads: [Payload] = []
    /// The plain frames, back to back ...
    private(set) var bytes: [UInt8] = []
    /// ... and where each one ends.
    private(set) var ends: [Int] = []

    var isEmpty: Bool { ends.isEmpty }

    /// Whether `other` is the very array (same storage) this batch goes to.
    func hasRecipients(_ other: [ClientHandle]) -> Bool {
        handles.count == other.count && handles.withUnsafeBufferPointer { mine in
            other.withUnsafeBufferPointer { $0.baseAddress == mine.baseAddress }
        }
    }

    mutating func add(_ payload: Payload, recipients: [ClientHandle]) {
        if ends.isEmpty { handles = recipients }
        // Grow geometrically here: the encoder reserves exactly what one frame needs.
        let needed = bytes.count + payload.bytes.count + 10
        if bytes.capacity < needed { bytes.reserveCapacity(max(needed, bytes.capacity * 2)) }
        payload.bytes.withUnsafeBytes { FrameEncoder.encode(opcode: .text, payload: $0, into: &bytes) }
        ends.append(bytes.count)
        payloads.append(payload)
    }

    mutating func reset() {
        handles = []
        payloads.empty()  // usually one payload: see `Array.empty`
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
    }
}
