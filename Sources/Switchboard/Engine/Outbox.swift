import SwitchboardCodec

/// Writes messages to clients under backpressure: one frame to one client, one payload to
/// many (small fan-outs batched), and the one place a message is dropped (`dropped`).
///
/// Backpressure (PROTOCOL.md 7) is checked per message before it is queued: a message that
/// finds more than `backpressureLimit` bytes queued for its client is dropped, counted, and
/// reported to the kernel as `.backpressured`, whose table decides on closing.
///
/// Ordering: a batched fan-out is written when the batch is flushed, so every other write to
/// a client (a reply, a pong, a close frame) first calls `keepOrder()`.
final class Outbox {
    /// Frames up to this size are copied into the connection's cork buffer rather than shared:
    /// a turn's messages leave in one iovec instead of one per message.
    static let copyThreshold = 512
    /// Its frame (header at most 10 bytes) is within `copyThreshold`: copied, not shared.
    @inline(__always)
    static func isSmall(_ payload: Payload) -> Bool { payload.count + 10 <= copyThreshold }

    private let driver: any Driver
    private let stats: Stats
    private let links: LinkRegistry
    private let backpressureLimit: Int
    private let compressionThreshold: Int
    /// Where a drop is reported (set once by the engine after it is built).
    unowned(unsafe) var engine: Engine?
    /// Small fan-outs to one recipient list, waiting for `flush()`.
    /// Unchecked: `keepOrder` reads it before every write to one client (one dynamic check per
    /// echo round trip without the mark; measured with `Link`'s marks, see there).
    @exclusivity(unchecked) private var batch = FanOutBatch()

    init(driver: any Driver, stats: Stats, links: LinkRegistry, backpressureLimit: Int, compressionThreshold: Int) {
        self.driver = driver
        self.stats = stats
        self.links = links
        self.backpressureLimit = backpressureLimit
        self.compressionThreshold = compressionThreshold
    }

    /// Before any write to a client outside the batch: the batched frames go first.
    @inline(__always)
    func keepOrder() {
        if !batch.isEmpty { flush() }
    }

    /// A payload for one client (a reply, a message to a client or user).
    func send(_ payload: Payload, to link: Link) {
        if link.deflate == nil, Outbox.isSmall(payload), payload.driverCache == nil {
            sendSmall(payload, to: link)
        } else {
            send(frame(payload, for: link), to: link)
        }
    }

    /// The frame of a payload as this client takes it (compressed or plain).
    func frame(_ payload: Payload, for link: Link) -> SharedBytes {
        link.deflate == nil ? FrameCache.plain(payload)
            : FrameCache.frame(payload, for: link.deflate, threshold: compressionThreshold, stats: stats)
    }

    /// One frame to one client, if backpressure allows.
    func send(_ frame: SharedBytes, to link: Link) {
        guard !link.closing else { return }
        let count = frame.bytes.count
        let limit = backpressureLimit
        let queued = count <= Outbox.copyThreshold
            ? frame.bytes.withUnsafeBytes { driver.write(link.id, copying: $0, ifBufferedAtMost: limit) }
            : driver.write(link.id, frame, ifBufferedAtMost: limit)
        guard queued else { return dropped(link) }
        stats.messagesOut += 1
        stats.bytesOut += count
    }

    /// A small payload for one recipient (an echo, a reply): header and payload are copied
    /// straight into the connection's cork buffer, with no frame built or cached.
    private func sendSmall(_ payload: Payload, to link: Link) {
        guard !link.closing else { return }
        // Header and payload go in as two copies, which the queue merges into one segment
        // (no temporary buffer, and no closure context retaining what it captures).
        var header: (UInt64, UInt64) = (0, 0)
        let headerCount = withUnsafeMutableBytes(of: &header) {
            FrameEncoder.writeHeader(opcode: .text, payloadCount: payload.count, to: $0.baseAddress!)
        }
        let queued = withUnsafeBytes(of: &header) { header in
            payload.withUnsafeBytes {
                driver.write(link.id, copying: UnsafeRawBufferPointer(rebasing: header[..<headerCount]), $0,
                             ifBufferedAtMost: backpressureLimit)
            }
        }
        guard queued else { return dropped(link) }
        stats.messagesOut += 1
        stats.bytesOut += headerCount + payload.count
    }

    /// One payload to many. A small frame joins the batch of fan-outs to the same recipients
    /// (the publishes of one read), written once per recipient when the batch is flushed.
    func fanOut(_ payload: Payload, to handles: [ClientHandle]) {
        stats.fanOuts += 1
        if Outbox.isSmall(payload) {
            if !batch.isEmpty, !batch.hasRecipients(handles) { flush() }
            batch.add(payload, recipients: handles)
            return
        }
        keepOrder()
        let plain = FrameCache.plain(payload)
        for handle in handles {
            guard let link = links[handle] else { continue }
            send(link.deflate == nil ? plain : frame(payload, for: link), to: link)
        }
    }

    /// Writes the batched fan-outs: every frame at once to each plain recipient (one lookup and
    /// one copy per recipient, not per message). Per-message backpressure is kept exactly: a
    /// recipient gets the longest prefix of the frames each of which found at most
    /// `backpressureLimit` bytes queued before it; the rest are dropped.
    func flush() {
        guard !batch.isEmpty else { return }
        var work = FanOutBatch()
        swap(&work, &batch)  // re-entrant flushes (a backpressure close) see an empty batch
        defer {
            work.reset()
            if batch.isEmpty { swap(&work, &batch) }  // keep the buffers' capacity
        }
        let limit = backpressureLimit
        let frames = work.ends.count
        let total = work.bytes.count
        // Every frame fits when the last one does: at most this much queued before the batch.
        let allFit = limit - (frames > 1 ? work.ends[frames - 2] : 0)
        var sent = 0
        var sentBytes = 0
        work.bytes.withUnsafeBytes { all in
            for handle in work.handles {
                guard let link = links[handle], !link.closing else { continue }
                if link.deflate != nil {
                    for payload in work.payloads { send(frame(payload, for: link), to: link) }
                    continue
                }
                if allFit >= 0, driver.write(link.id, copying: all, ifBufferedAtMost: allFit) {
                    sent += frames
                    sentBytes += total
                    continue
                }
                let queued = driver.bufferedAmount(link.id)
                var fitting = 0
                while fitting < frames, queued + (fitting == 0 ? 0 : work.ends[fitting - 1]) <= limit { fitting += 1 }
                if fitting > 0 {
                    let end = work.ends[fitting - 1]
                    driver.write(link.id, copying: UnsafeRawBufferPointer(rebasing: all[0..<end]))
                    sent += fitting
                    sentBytes += end
                }
                dropped(link, count: frames - fitting)
            }
        }
        stats.messagesOut += sent
        stats.bytesOut += sentBytes
    }

    /// The one place messages are dropped for backpressure: `count` messages to `link` did not
    /// fit. Counted, and reported to the kernel once (which may close the client; that close
    /// can re-enter `flush`, which then finds the batch empty).
    func dropped(_ link: Link, count: Int = 1) {
        link.backpressured = true
        stats.backpressureDrops += count
        link.drops += count
        if let report = engine!.hooks.backpressureDropped, let clientID = link.clientID {
            for total in link.drops - count + 1...link.drops { report(clientID, total) }
        }
        if link.isClient { engine!.input(.backpressured(link.handle)) }
    }
}
