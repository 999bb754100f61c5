import SwitchboardCodec

/// One accepted TCP connection as the engine sees it, from the first byte of its HTTP request
/// to `connectionClosed`: the request parser until the upgrade, then the frame decoder and
/// negotiated compression, and whether the kernel has a client record for it.
///
/// (Named `Link`, not `Connection`: the driver's `ConnectionID` names the socket, and other
/// modules have a `Connection` of their own.)
///
/// The properties marked `@exclusivity(unchecked)` are read on every message (and per
/// recipient of a fan-out). Without the marks here, in `Stats`, on `Outbox.batch` and
/// `FrameHandler.engine`: 3.4 more dynamic checks per echo round trip, 8,030 instead of 7,658
/// instructions (callgrind; see `Engine`).
final class Link {
    /// The driver's name for the socket.
    let id: ConnectionID
    /// The kernel's name for the client: registry slot | generation << 32 (`LinkRegistry`).
    let handle: ClientHandle
    let openedAt: Int64
    let peer: String
    /// The request-head parser; nil once the head is complete. Boxed: inline, its fields
    /// took 130 bytes of every upgraded connection's record for the rest of its life, 5% of an
    /// idle connection's memory in `make bench`. Unchecked: fed and then dropped once per
    /// connection, two dynamic checks for nothing.
    @exclusivity(unchecked) var request: RequestHead?
    /// The frame decoder; nil until the upgrade (so `decoder == nil` means "still HTTP").
    @exclusivity(unchecked) var decoder: FrameDecoder?
    /// Negotiated permessage-deflate; dropped when the close frame is sent.
    @exclusivity(unchecked) var deflate: PerMessageDeflate?
    @exclusivity(unchecked) var lastReceive: Int64
    /// A ping was sent by the idle sweep and no pong has come back yet.
    var pingOutstanding = false
    /// A close frame was sent or the connection is going: nothing more is written.
    @exclusivity(unchecked) var closing = false
    /// A message to it was dropped for backpressure and its queue has not drained since.
    var backpressured = false
    /// Messages dropped for backpressure so far (reported to `Hooks.backpressureDropped`).
    var drops = 0
    /// The kernel has a record for it (upgraded, not raw echo, not released).
    @exclusivity(unchecked) var isClient = false
    /// The client's wire id once upgraded. Unchecked: set once per connection.
    @exclusivity(unchecked) var clientID: String?
    /// Async hook calls spawned for it and not answered yet (`InboundFlow`).
    var pendingHookCalls = 0
    /// `InboundFlow` asked the driver to stop reading from it.
    var readingPaused = false
    /// The client's address (a trusted proxy's forwarded one) and the upgrade's headers named
    /// by `ServerOptions.hookHeaders`, kept for `Hooks.authenticateClient` only (nil without it).
    var clientContext: (address: String, headers: [(String, String)])?

    init(id: ConnectionID, handle: ClientHandle, peer: String, now: Int64, maxHeaderBytes: Int) {
        self.id = id
        self.handle = handle
        self.peer = peer
        self.openedAt = now
        self.lastReceive = now
        self.request = RequestHead(HTTPRequestParser(maxHeaderBytes: maxHeaderBytes))
    }

    /// Past the HTTP upgrade: its bytes are frames (before it, they are the request head).
    var isUpgraded: Bool { decoder != nil }
}

/// A connection's request-head parser, held by reference until the head is complete.
final class RequestHead {
    var parser: HTTPRequestParser

    init(_ parser: HTTPRequestParser) {
        self.parser = parser
    }
}
