import SwitchboardCodec
import SwitchboardKernel

/// The HTTP side of a connection: reads the request head, then either switches to WebSocket
/// (101, negotiating permessage-deflate) or answers over HTTP and closes. Every HTTP answer the
/// server gives is made in `Answer.bytes`: the spec's (`HTTPAnswer`, spec `http`) or the app's.
/// An upgrade is refused for a foreign `Origin` and, through a trusted proxy, for a client
/// address at its connection limit (`refusal`).
final class Upgrade {
    /// The server's permessage-deflate policy: no server context (compress once per publish),
    /// no client context (no zlib memory held per connection).
    static let deflatePolicy = DeflateOptions(serverNoContextTakeover: true, clientNoContextTakeover: true)

    /// What became of the bytes given to `receive`.
    enum Outcome {
        /// The head is not complete yet.
        case needMore
        /// Answered over HTTP; the connection is closing.
        case answered
        /// Switched to WebSocket; the bytes from `consumed` on are frames.
        case upgraded(consumed: Int)
    }

    private let driver: any Driver
    private let path: String
    private let perMessageDeflate: Bool
    private let maxPayloadLength: Int
    private let httpHandler: (@Sendable (HTTPRequest) -> HTTPAnswerBody?)?
    private let links: LinkRegistry
    private let origins: OriginPolicy
    let proxies: ProxyAddresses
    /// Lower-cased names of the headers kept for `Hooks.authenticateClient`; nil: keep no
    /// context (no such hook).
    private let contextHeaders: Set<String>?

    init(driver: any Driver, links: LinkRegistry, options: ServerOptions,
         httpHandler: (@Sendable (HTTPRequest) -> HTTPAnswerBody?)?, keepsClientContext: Bool = false) {
        self.contextHeaders = keepsClientContext ? Set(options.hookHeaders.map { $0.lowercased() }) : nil
        self.driver = driver
        self.links = links
        self.origins = OriginPolicy(options.allowedOrigins)
        self.proxies = ProxyAddresses(options.trustedProxies)
        self.path = options.path
        self.perMessageDeflate = options.perMessageDeflate
        self.maxPayloadLength = options.maxPayloadLength
        self.httpHandler = httpHandler
    }

    /// Feeds request bytes of a connection that is not upgraded yet.
    func receive(_ link: Link, _ bytes: UnsafeRawBufferPointer) -> Outcome {
        guard let request = link.request else { return .needMore }
        switch request.parser.feed(bytes) {
        case .needMore:
            return .needMore
        case .failed(let error):
            answer(link, .spec(Upgrade.answer(to: error)))
            return .answered
        case .complete(let head, let consumed):
            link.request = nil  // not needed after the head
            switch classifyUpgrade(head, path: path) {
            case .upgrade(let key, let extensions, _):
                if let refusal = refusal(link, head) {
                    answer(link, .spec(refusal))
                    return .answered
                }
                if let contextHeaders { keepContext(link, head, contextHeaders) }
                switchProtocols(link, key: key, extensions: extensions)
                return .upgraded(consumed: consumed)
            case .versionNotSupported:
                answer(link, .spec(.upgradeRequired))
            case .upgradeFailed:
                answer(link, .spec(.upgradeFailed))
            case .notAnUpgrade:
                answer(link, application(head).map { .application($0) } ?? .spec(ConnectionPolicy.notFoundAnswer))
            }
            return .answered
        }
    }

    /// The spec's answer when an upgrade request may not become a WebSocket: its `Origin` is
    /// not allowed, or it came through a trusted proxy for a client address already at
    /// `maxConnectionsPerIP` (a direct peer's address was counted at accept). Nil: go ahead.
    private func refusal(_ link: Link, _ head: HTTPRequestHead) -> HTTPAnswer? {
        if !origins.admits(head.header("origin")) { return ConnectionPolicy.originForbiddenAnswer }
        if links.limitsAddresses, proxies.isTrusted(link.peer),
           !links.count(link.id, as: proxies.clientAddress(peer: link.peer, head: head)) {
            return ConnectionPolicy.tooManyConnectionsAnswer
        }
        return nil
    }

    /// The address and the named headers `Hooks.authenticateClient` gets.
    private func keepContext(_ link: Link, _ head: HTTPRequestHead, _ names: Set<String>) {
        let address = proxies.isTrusted(link.peer) ? proxies.clientAddress(peer: link.peer, head: head) : link.peer
        let headers = head.headers.filter { names.contains($0.name.lowercased()) }.map { ($0.name.lowercased(), $0.value) }
        link.clientContext = (address, headers)
    }

    /// 101, with the negotiated extension; the link gets its frame decoder.
    private func switchProtocols(_ link: Link, key: String, extensions: [String]) {
        var headers: [(name: String, value: String)] = []
        if perMessageDeflate,
           let (header, parameters) = PerMessageDeflate.negotiate(offers: extensions, policy: Upgrade.deflatePolicy) {
            headers.append((name: "Sec-WebSocket-Extensions", value: header))
            link.deflate = PerMessageDeflate(parameters: parameters)
        }
        driver.write(link.id, SharedBytes(HTTPResponse.switchingProtocols(key: key, extraHeaders: headers)))
        var decoder = FrameDecoder(maxMessageBytes: maxPayloadLength, allowsRSV1: link.deflate != nil)
        if link.deflate != nil {
            decoder.maxCompressedMessageBytes = PerMessageDeflate.compressedLimit(forMessageLimit: maxPayloadLength)
        }
        link.decoder = decoder
    }

    /// An ordinary HTTP request: the app's handler (demo page, metrics, health) may answer it.
    private func application(_ head: HTTPRequestHead) -> HTTPAnswerBody? {
        guard let handler = httpHandler else { return nil }
        return handler(HTTPRequest(method: head.method, path: head.path, target: head.target,
                                   headers: head.headers.map { ($0.name, $0.value) }))
    }

    /// Writes an HTTP answer and closes the connection once it is flushed.
    func answer(_ link: Link, _ answer: Answer) {
        link.closing = true
        driver.write(link.id, SharedBytes(answer.bytes))
        driver.close(link.id, flushFirst: true)
    }

    /// The spec's answer to a request head the parser refused (400, 431 or 505).
    static func answer(to error: HTTPParseError) -> HTTPAnswer {
        switch error.status {
        case HTTPAnswer.headTooLarge.status: .headTooLarge
        case HTTPAnswer.versionNotSupported.status: .versionNotSupported
        default: .badRequest
        }
    }

    /// Every HTTP answer the server gives instead of (or before) a WebSocket.
    enum Answer {
        /// One of the spec's `http` answers, byte for byte as the spec writes it.
        case spec(HTTPAnswer)
        /// The app's `httpHandler` answered.
        case application(HTTPAnswerBody)

        var bytes: [UInt8] {
            switch self {
            case .spec(let answer):
                HTTPResponse.simple(status: answer.status, reason: answer.reason, body: answer.body,
                                    extraHeaders: answer.headers)
            case .application(let response):
                HTTPResponse.simple(status: response.status, reason: response.reason, contentType: response.contentType,
                                    body: response.body, extraHeaders: response.headers.map { (name: $0.0, value: $0.1) })
            }
        }
    }
}
