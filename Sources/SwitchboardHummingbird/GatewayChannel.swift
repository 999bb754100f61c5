import HummingbirdCore
import Logging
import NIOCore
import SwitchboardNIO

/// A Hummingbird child channel that serves the gateway's path itself and every other request
/// with Hummingbird's own HTTP/1 channel, on one port. The first request line decides: a
/// request for the gateway's path (an upgrade, or a plain request the engine then answers as
/// on its own listener) hands the connection to the `NIODriver`, bytes and all; anything else
/// goes to `HTTP1Channel` as if nothing had looked.
public struct GatewayHTTP1Channel: ServerChildChannel {
    /// What the first request line decided.
    public enum Route: Sendable {
        /// A connection of the app's routes.
        case http(HTTP1Channel.Value)
        /// A connection the gateway took over; Hummingbird only waits for it to close.
        case gateway
    }

    /// The channel and its route, known once the request line has arrived. Setup cannot wait
    /// for it: Hummingbird's server registers a channel (and so reads) only after its setup.
    public struct Value: ServerChildChannelValue {
        public let channel: any Channel
        let route: EventLoopFuture<Route>
    }

    let http: HTTP1Channel
    let path: String
    let driver: NIODriver

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let route = channel.eventLoop.makePromise(of: Route.self)
        let (http, driver) = (self.http, self.driver)
        // Runs on the loop inside the sniffer's channelRead: the pipeline changes before any
        // further byte is read.
        let sniffer = RequestLineSniffer(path: path, failed: route.fail) { sniffer, toGateway in
            if toGateway {
                route.completeWith(Result {
                    try driver.adopt(channel, buffered: sniffer.leave())
                    return .gateway
                })
            } else {
                http.setup(channel: channel, logger: logger).flatMapThrowing { value in
                    sniffer.replayAndLeave()
                    return .http(value)
                }.cascade(to: route)
            }
        }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(sniffer)
            return Value(channel: channel, route: route.futureResult)
        }
    }

    public func handle(value: Value, logger: Logger) async {
        switch try? await value.route.get() {
        case .http(let asyncChannel): await http.handle(value: asyncChannel, logger: logger)
        case .gateway: try? await value.channel.closeFuture.get()
        case nil: value.channel.close(promise: nil)
        }
    }
}

/// Holds a connection's first bytes until its request line is complete, then says whether
/// its target is the gateway's path (`/ws`, `/ws?...`). It then leaves the pipeline, giving
/// what it held to the gateway or replaying it to the HTTP handlers added behind it.
final class RequestLineSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// A request line longer than this is not the gateway's: HTTP answers it.
    static let limit = 8192

    private let path: String
    private let failed: (Error) -> Void
    private let decided: (RequestLineSniffer, Bool) -> Void
    private var held: ByteBuffer?
    private var context: ChannelHandlerContext?
    private var decision: Bool?

    /// `decided` is told the route once (on the loop); `failed` if the channel ends before.
    init(path: String, failed: @escaping (Error) -> Void, decided: @escaping (RequestLineSniffer, Bool) -> Void) {
        self.path = path
        self.failed = failed
        self.decided = decided
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        held.setOrWriteBuffer(&bytes)
        guard decision == nil, let buffer = held else { return }
        let view = buffer.readableBytesView
        guard let end = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > Self.limit { decide(false) }
            return
        }
        let parts = view[view.startIndex..<end].split(separator: UInt8(ascii: " "))
        let target = parts.count >= 2 ? String(decoding: parts[1], as: UTF8.self) : ""
        decide(target == path || target.hasPrefix(path + "?"))
    }

    /// Read completions wait for the replay: the handlers behind see one after their bytes.
    func channelReadComplete(context: ChannelHandlerContext) {}

    func channelInactive(context: ChannelHandlerContext) {
        if decision == nil {
            decision = false
            failed(ChannelError.eof)
        }
        context.fireChannelInactive()
    }

    private func decide(_ toGateway: Bool) {
        decision = toGateway
        decided(self, toGateway)
    }

    /// Leaves the pipeline and returns what was held (for the gateway).
    func leave() -> ByteBuffer {
        let bytes = held ?? ByteBuffer()
        held = nil
        if let context { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
        return bytes
    }

    /// Passes what was held to the handlers behind, then leaves the pipeline.
    func replayAndLeave() {
        guard let context else { return }
        if let bytes = held {
            held = nil
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
