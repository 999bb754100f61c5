// nio-websocket-echo: the other half of docs/drivers.md's codec measurement. A WebSocket echo
// server on SwiftNIO's own HTTP/1 upgrade and frame codec (NIOHTTP1, NIOWebSocket), one
// EventLoop, as NIODriver runs: what `switchboard-fixture --raw-echo --driver nio` does with the
// engine's sans-IO codec instead. Each message (fragments aggregated, text checked as UTF-8, as
// the engine does) is echoed; the turn's replies are flushed once, after the read batch.
//
//   nio-websocket-echo [--port N]   prints `LISTENING <port>`, like the fixture
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
#if canImport(Glibc)
import Glibc
#endif

/// Echoes every data message and ping; answers a close with a close and ends the connection.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            let payload = frame.unmaskedData
            if frame.opcode == .text, payload.withUnsafeReadableBytes({ String(validating: $0, as: UTF8.self) }) == nil {
                close(context, code: 1007)
                return
            }
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: frame.opcode, data: payload)), promise: nil)
        case .ping:
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            close(context, code: 1000)
        default:
            break
        }
    }

    /// The end of the read batch: one flush for the turn's replies (as NIODriver's end-of-turn flush).
    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    private func close(_ context: ChannelHandlerContext, code: UInt16) {
        var body = context.channel.allocator.buffer(capacity: 2)
        body.writeInteger(code)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: body)
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
    }
}

var port = 8080
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard flag == "--port", let value = arguments.popFirst().flatMap({ Int($0) }) else {
        print("usage: nio-websocket-echo [--port N]")
        exit(2)
    }
    port = value
}

/// The server: HTTP/1 with NIO's WebSocket upgrader on /ws, then the aggregator and the echo.
/// A function, so that its closures are not those of top-level code (main-actor isolated).
func makeBootstrap(group: EventLoopGroup) -> ServerBootstrap {
    let upgrader = NIOWebSocketServerUpgrader(
        maxFrameSize: 1 << 17,  // the gateway's default maxPayloadLength
        shouldUpgrade: { channel, head in
            channel.eventLoop.makeSucceededFuture(head.uri == "/ws" || head.uri.hasPrefix("/ws?") ? HTTPHeaders() : nil)
        },
        upgradePipelineHandler: { channel, _ in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16,
                                                maxAccumulatedFrameSize: 1 << 17))
                try channel.pipeline.syncOperations.addHandler(EchoHandler())
            }
        })
    return ServerBootstrap(group: group)
        .serverChannelOption(ChannelOptions.backlog, value: 1024)
        .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.pipeline.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
        }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let bootstrap = makeBootstrap(group: group)
let channel = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
print("LISTENING \(channel.localAddress?.port ?? port)")
fflush(nil)  // every stream: the line must reach the pipe now

// SIGTERM (scripts/codec-compare, scripts/bench) ends the process; the OS closes the sockets.
signal(SIGTERM, SIG_DFL)
try channel.closeFuture.wait()
