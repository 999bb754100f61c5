import SwitchboardCodec
import SwitchboardKernel

/// What an upgraded connection's frames become: messages for the kernel (or echoed back in
/// raw-echo mode), pongs for pings, activity for the heartbeat, and the closing handshake.
/// The per-connection state (decoder, compression, ping outstanding) lives on the `Link`;
/// `close` is the one place a connection is closed with a close frame.
final class FrameHandler {
    private let driver: any Driver
    private let stats: Stats
    private let outbox: Outbox
    private let maxPayloadLength: Int
    private let rawEcho: Bool
    private let log: Logger
    /// Where messages and activity go (set once by the engine after it is built).
    /// Unchecked: read on every read from the socket (measured with `Link`'s marks, see there).
    @exclusivity(unchecked) unowned(unsafe) var engine: Engine?

    init(driver: any Driver, stats: Stats, outbox: Outbox, options: ServerOptions, log: Logger) {
        self.driver = driver
        self.stats = stats
        self.outbox = outbox
        self.maxPayloadLength = options.maxPayloadLength
        self.rawEcho = options.rawEcho
        self.log = log
    }

    /// Decodes what arrived and acts on each complete frame, until the connection closes.
    func receive(_ link: Link, _ bytes: UnsafeRawBufferPointer) {
        let engine = self.engine!
        let framesBefore = link.decoder!.framesCompleted
        link.decoder!.feed(bytes)
        var eventsSeen = 0
        defer {
            // Fragments of a message not yet complete are frames too: they count as activity.
            if link.isClient, !link.closing, link.decoder!.framesCompleted - framesBefore > eventsSeen {
                engine.input(.activity(link.handle))
            }
        }
        while !link.closing, var event = link.decoder!.next() {
            eventsSeen += 1
            if link.decoder!.lastMessageWasCompressed {
                // Inflated within maxPayloadLength (1009 past it), UTF-8 checked after inflating.
                event = link.deflate!.inflateMessage(event, maxOutput: maxPayloadLength)
            }
            let handle = link.handle
            let opcode: Opcode = if case .binary = event { .binary } else { .text }
            switch consume event {
            case .text(let message), .binary(let message):
                stats.messagesIn += 1
                if rawEcho {
                    echo(link, opcode, message)
                } else if link.isClient {
                    engine.input(.message(handle, message))
                }
            case .ping(let payload):
                outbox.keepOrder()
                var pong: [UInt8] = []
                payload.withUnsafeBytes { FrameEncoder.encode(opcode: .pong, payload: $0, into: &pong) }
                driver.write(link.id, SharedBytes(pong))
                if link.isClient { engine.input(.activity(handle)) }
            case .pong:
                link.pingOutstanding = false
                if link.isClient { engine.input(.activity(handle)) }
            case .close(let code, _):
                // Echo the peer's code (RFC 6455 5.5.1), then close; the kernel hears it at once.
                close(link, code: code, reason: "")
                if link.isClient { engine.input(.closed(handle)) }
            case .failure(let code, let detail):
                // The codec's code is one of the spec's `origin: codec` close codes: the wire gets
                // the spec's reason; the codec's detail ("Reserved opcode", ...) is for the log.
                stats.closes[code, default: 0] += 1
                close(link, code: code, reason: CloseCode(codec: code)?.reason ?? detail)
                if link.isClient { engine.input(.closed(handle)) }
            }
        }
    }

    /// Raw-echo mode (no kernel): the message goes back as it came, compressed if negotiated.
    private func echo(_ link: Link, _ opcode: Opcode, _ message: [UInt8]) {
        var frame: [UInt8] = []
        if link.deflate != nil {
            let compressed = link.deflate!.deflate(message)
            frame.reserveCapacity(compressed.count + 10)
            compressed.withUnsafeBytes { FrameEncoder.encode(opcode: opcode, payload: $0, rsv1: true, into: &frame) }
        } else {
            frame.reserveCapacity(message.count + 10)
            message.withUnsafeBytes { FrameEncoder.encode(opcode: opcode, payload: $0, into: &frame) }
        }
        driver.write(link.id, SharedBytes(frame))
    }

    /// Sends a close frame (nothing more is written after it) and closes once it is flushed.
    /// `code` nil sends a close frame without a status code.
    func close(_ link: Link, code: UInt16?, reason: String) {
        guard !link.closing else { return }
        outbox.keepOrder()
        link.closing = true
        log.write(.debug, "closing: \(reason.isEmpty ? "no reason" : reason)", metadata: Self.closeMetadata(link, code))
        let frame = code.map { FrameEncoder.close(code: $0, reason: reason) } ?? FrameEncoder.close()
        link.deflate = nil
        driver.write(link.id, SharedBytes(frame))
        driver.close(link.id, flushFirst: true)
    }

    /// `client_id` (once upgraded) and `close_code` (when the frame has one) of a close.
    private static func closeMetadata(_ link: Link, _ code: UInt16?) -> Logger.Metadata {
        var metadata = Logger.client(link.clientID)
        if let code { metadata["close_code"] = .stringConvertible(code) }
        return metadata
    }

    /// The idle sweep's ping (one frame shared by every connection pinged in a sweep).
    static func ping() -> SharedBytes { SharedBytes(FrameEncoder.ping()) }
}
