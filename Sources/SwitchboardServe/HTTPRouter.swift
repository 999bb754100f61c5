import Switchboard

/// One request on the internal listener. Unlike the library's `HTTPRequest` (an upgrade
/// port's plain GET), it carries its body, so a server API can take POSTs here.
public struct HTTPCall: Sendable {
    public var method: String
    /// The request target as sent (path and query).
    public var target: String
    /// The path without the query string.
    public var path: String
    /// Header names lower-cased, in the order sent.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String, target: String, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.path = String(target.prefix { $0 != "?" })
        self.headers = headers.map { ($0.name.lowercased(), $0.value) }
        self.body = body
    }

    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name == lowered }?.value
    }
}

/// What the internal listener serves: an ordered list of routes, each a function that answers
/// the requests it knows and returns nil for the others; the first answer wins, and a request
/// nobody answers is a 404.
///
/// This is the seam for more operator endpoints (a server API): `ServeApp` builds the router
/// with its own `/metrics` and probe routes, and a new feature appends its route there. A
/// route runs in a task on the internal listener's loop thread: it may await the server
/// (`Server.metrics()`, `Server.query`) freely, but must not block (hop off for slow work).
public struct HTTPRouter: Sendable {
    public typealias Route = @Sendable (HTTPCall) async -> HTTPAnswerBody?

    /// What a route says of a request from its head alone, before any body byte is read.
    public enum BodyDecision: Sendable {
        /// Read a `Content-Length` body of up to `limit` bytes (instead of the listener's own limit).
        case read(limit: Int)
        /// Answer this without reading the body (the connection then closes).
        case refuse(HTTPAnswerBody)
    }

    /// Looks at a request whose head is read (`call.body` is empty; `contentLength` is 0
    /// without the header, -1 when it is not a number): nil leaves the request to the next
    /// check and, in the end, to the listener's own limits.
    public typealias BodyCheck = @Sendable (_ call: HTTPCall, _ contentLength: Int, _ chunked: Bool) -> BodyDecision?

    public var routes: [Route]
    /// Tried in order on each head; the first decision wins. A route with limits of its own (a
    /// server API with `api.max_body`) appends one here.
    public var bodyChecks: [BodyCheck] = []

    public init(routes: [Route] = []) { self.routes = routes }

    public mutating func append(_ route: @escaping Route) { routes.append(route) }

    public func bodyDecision(_ call: HTTPCall, contentLength: Int, chunked: Bool) -> BodyDecision? {
        for check in bodyChecks {
            if let decision = check(call, contentLength, chunked) { return decision }
        }
        return nil
    }

    public func answer(_ call: HTTPCall) async -> HTTPAnswerBody {
        for route in routes {
            if let answer = await route(call) { return answer }
        }
        return HTTPAnswerBody(status: 404, reason: "Not Found", text: "Not Found\n")
    }
}
