import NIOCore
import Switchboard

/// One accepted channel of an `NIODriver`, as the driver's loop sees it: what it has been
/// told (close, pause), what it holds (bytes read while paused) and its output bookkeeping.
/// Confined to the driver's EventLoop; `@unchecked Sendable` only so that NIO's `@Sendable`
/// future callbacks, which run on that same loop, may capture it.
///
/// The channel may live on another EventLoop (a Hummingbird app on several loops hands its
/// channels over with `NIODriver.adopt`): then what this object does to the channel is what
/// NIO allows from any thread (writes, closes, options by future), and the write promises are
/// the driver loop's, so that their callbacks run there.
final class NIOConnection: @unchecked Sendable {
    let id: ConnectionID
    let channel: Channel
    /// The driver's EventLoop, where this object's state lives.
    let loop: EventLoop
    /// The channel is on the driver's EventLoop: its events need no hop.
    let onDriverLoop: Bool

    /// `close` was called: writes are ignored, reads dropped.
    var closeRequested = false
    /// `pauseReading` is in force (autoRead is off).
    var paused = false
    /// `resumeReading` was called and the held bytes are not delivered yet: reads keep queuing
    /// behind them, so that nothing overtakes what was held.
    var resuming = false
    /// Bytes read while paused (NIO may finish a read batch after autoRead went off).
    var held: [ByteBuffer] = []
    /// The channel went inactive behind held bytes: `connectionClosed` waits for their delivery.
    var endPending = false
    /// The channel is closed (NIO reported `channelInactive`).
    var inactive = false
    /// The linger of `close(flushFirst: true)`: closes the channel if the peer's FIN is late.
    var linger: Scheduled<Void>?
    /// In the driver's list of connections to flush at the end of the turn.
    var dirty = false

    /// Bytes queued (held back, written or flushed) and not yet taken by the socket.
    private(set) var buffered = 0
    /// A bounded write was refused: `connectionDrained` is owed once `buffered` is 0.
    var drainOwed = false

    /// The turn's last write, held back so that the flush can carry the one promise that says
    /// when everything before it has left (NIO completes writes in order).
    private var tail: ByteBuffer?
    /// `tail` is this driver's own buffer of merged copies (it may grow), not a shared one.
    private var tailIsCopy = false
    /// Bytes queued since the last flush, `tail` included.
    private var unflushed = 0

    init(id: ConnectionID, channel: Channel, loop: EventLoop) {
        self.id = id
        self.channel = channel
        self.loop = loop
        self.onDriverLoop = channel.eventLoop === loop
    }

    /// Queues a buffer that may be shared with other connections (a fan-out is copied into a
    /// `ByteBuffer` once; NIO's copy-on-write keeps one storage for every channel).
    func append(_ buffer: ByteBuffer) {
        if let tail { channel.write(tail, promise: nil) }
        tail = buffer
        tailIsCopy = false
        buffered += buffer.readableBytes
        unflushed += buffer.readableBytes
    }

    /// Queues a copy of bytes valid only during the call, merged with a copy just before it.
    func append(copying bytes: UnsafeRawBufferPointer) {
        if tailIsCopy, var merged = tail {
            tail = nil  // unique again: the write below grows it in place
            merged.writeBytes(bytes)
            tail = merged
        } else {
            if let tail { channel.write(tail, promise: nil) }
            var fresh = channel.allocator.buffer(capacity: max(bytes.count, 512))
            fresh.writeBytes(bytes)
            tail = fresh
            tailIsCopy = true
        }
        buffered += bytes.count
        unflushed += bytes.count
    }

    /// Writes the held-back tail and flushes; `written` runs on the loop once the socket has
    /// taken everything queued so far (or the channel failed), with `buffered` already lowered.
    func flush(_ written: @escaping @Sendable (NIOConnection) -> Void) {
        guard let last = tail else { return }
        let count = unflushed
        tail = nil
        tailIsCopy = false
        unflushed = 0
        let promise = loop.makePromise(of: Void.self)  // completed on the channel's loop, run on the driver's
        promise.futureResult.whenComplete { _ in
            self.buffered -= count
            written(self)
        }
        channel.writeAndFlush(last, promise: promise)
    }

    /// `close(flushFirst: true)`: everything queued goes, then FIN (output closed), and the
    /// channel is closed when the peer's FIN comes or after `lingerMilliseconds`, whichever is
    /// first. Reading goes on meanwhile (to see the FIN); the driver drops what it reads.
    func finish(lingerMilliseconds: Int64, written: @escaping @Sendable (NIOConnection) -> Void) {
        flush(written)
        // An empty write completes once every write before it has (NIO completes in order).
        let marker = channel.eventLoop.makePromise(of: Void.self)
        let channel = self.channel
        marker.futureResult.whenComplete { _ in channel.close(mode: .output, promise: nil) }
        channel.writeAndFlush(channel.allocator.buffer(capacity: 0), promise: marker)
        linger = channel.eventLoop.scheduleTask(in: .milliseconds(lingerMilliseconds)) {
            channel.close(promise: nil)
        }
        setAutoRead(true)
    }

    /// Reading on (resume, or a close that waits for the peer's FIN) or off (pause). On another
    /// loop the option is set by a task there: reads meanwhile are held by the driver.
    func setAutoRead(_ on: Bool) {
        if onDriverLoop {
            try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: on)
        } else {
            channel.setOption(ChannelOptions.autoRead, value: on).whenFailure { _ in }
        }
    }
}

/// Connects one child channel's pipeline to its `NIODriver`: everything it sees goes to the
/// driver, which decides what to report. Bytes arrive as NIO reads them: the engine does the
/// HTTP upgrade and the WebSocket framing itself (see docs/drivers.md, "The SwiftNIO driver").
///
/// On a channel of another EventLoop (adopted), each read and the end are handed to the
/// driver's loop with `execute`, in order.
final class NIOConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let driver: NIODriver
    private var connection: NIOConnection?

    /// `connection`: an adopted channel's, known before the handler is added; nil for a
    /// channel of the driver's listener, which gets its connection when it becomes active.
    init(driver: NIODriver, connection: NIOConnection? = nil) {
        self.driver = driver
        self.connection = connection
    }

    func channelActive(context: ChannelHandlerContext) {
        // Known to the handler before it is reported: the engine may close it inside the
        // report, and NIO may then call `channelInactive` at once.
        if connection == nil {
            connection = driver.accepted(context.channel)
            if let connection { driver.reportOpened(connection) }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection else { return }
        let buffer = unwrapInboundIn(data)
        if connection.onDriverLoop {
            driver.received(connection, buffer)
        } else {
            driver.eventLoop.execute { [driver] in driver.received(connection, buffer) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let connection {
            if connection.onDriverLoop {
                driver.ended(connection)
            } else {
                driver.eventLoop.execute { [driver] in driver.ended(connection) }
            }
        }
        connection = nil
        context.fireChannelInactive()
    }

    /// The peer's FIN on a channel that allows remote half-closure (an adopted one: Hummingbird
    /// turns it on) ends the connection, as it does on the driver's own channels.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A reset or a failed write ends the connection; the close is reported through
    /// `channelInactive`.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
