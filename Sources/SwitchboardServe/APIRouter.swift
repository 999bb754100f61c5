import Switchboard
import SwitchboardCrypto

/// The server API (docs/api.yaml): a backend publishes, asks who is connected, disconnects
/// and reads counters over HTTP with JSON. This type only checks the key and picks the
/// endpoint; `APIEndpoints` does the work, and an HTTP front carries the bytes: `APIListener`
/// on the API's own port, or the internal listener (`ServeApp.internalRouter`). A front asks
/// `refusalBeforeBody` once the head is read and calls `handle` with the whole request, so both
/// answer the same. `handle` never throws: every refusal is an answer.
public struct APIRouter: Sendable {
    /// Every path starts with this.
    public static let prefix = "/api/v1"

    private let keyDigest: [UInt8]
    /// `api.max_body`: larger bodies are refused (413) without being read.
    public let maxBody: Int
    private let endpoints: APIEndpoints

    /// `key`: the bearer token a request must carry. `maxBody`: larger bodies get 413.
    public init(server: Server, key: [UInt8], maxBody: Int) {
        self.keyDigest = SHA256.hash(key)
        self.maxBody = maxBody
        self.endpoints = APIEndpoints(server: server)
    }

    /// Whether `path` belongs to the API (a front may answer other paths itself).
    public static func owns(_ path: String) -> Bool { path == prefix || path.hasPrefix(prefix + "/") }

    /// Whether the request carries the key (`Authorization: Bearer KEY`). Both sides are
    /// hashed first, so the comparison takes the same time whatever the length of a guess.
    public func authorized(_ request: APIRequest) -> Bool {
        guard let header = request.header("authorization") else { return false }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        let token = String(parts[1]).trimmingSpaces()
        return constantTimeEquals(SHA256.hash(Array(token.utf8)), keyDigest)
    }

    /// The answer to a request whose body must not be read, decided on its head (`request`
    /// without a body): a chunked body is 411, and one longer than `maxBody` is 413, or 401
    /// without the key, so that the size limit tells a stranger nothing. nil: read the
    /// `contentLength` bytes and call `handle`.
    public func refusalBeforeBody(_ request: APIRequest, contentLength: Int, chunked: Bool) -> APIResponse? {
        if chunked {
            return APIError(status: 411, code: "length_required",
                            message: "send the body with Content-Length (chunked bodies are not read)").response
        }
        guard contentLength > maxBody else { return nil }
        return (authorized(request) ? APIError.tooLarge(maxBody) : APIError.unauthorized).response
    }

    public func handle(_ request: APIRequest) async -> APIResponse {
        guard authorized(request) else { return APIError.unauthorized.response }
        guard request.body.count <= maxBody else { return APIError.tooLarge(maxBody).response }
        do {
            return try await route(request)
        } catch {
            return error.response
        }
    }

    private func route(_ request: APIRequest) async throws(APIError) -> APIResponse {
        guard Self.owns(request.path) else { throw .notFound }
        let segments = try Self.segments(request.path.dropFirst(Self.prefix.count))
        switch segments.count {
        case 1:
            switch segments[0] {
            case "publish":
                try Self.method(request, "POST")
                return try await endpoints.publish(APIBody(request))
            case "disconnect":
                try Self.method(request, "POST")
                return try await endpoints.disconnect(APIBody(request))
            case "stats":
                try Self.method(request, "GET")
                return try await endpoints.stats()
            default: throw .notFound
            }
        case 2 where segments[0] == "clients":
            try Self.method(request, "GET")
            return try await endpoints.client(segments[1])
        case 3 where segments[0] == "users" && segments[2] == "clients":
            try Self.method(request, "GET")
            return try await endpoints.clients(ofUser: segments[1])
        case 3 where segments[0] == "rooms" && segments[2] == "members":
            try Self.method(request, "GET")
            return try await endpoints.members(ofRoom: segments[1])
        case 3 where segments[0] == "rooms" && segments[2] == "history":
            try Self.method(request, "GET")
            return try await endpoints.history(ofRoom: segments[1], try Self.parameters(request.query))
        default:
            throw .notFound
        }
    }

    /// Each endpoint takes one method; any other is 405 with `Allow`.
    private static func method(_ request: APIRequest, _ allowed: String) throws(APIError) {
        guard request.method == allowed else { throw .methodNotAllowed(allowed) }
    }

    /// The query string's `name=value` pairs, percent-decoded (`+` is a space, as forms write
    /// it); a name given twice keeps the last value.
    static func parameters(_ query: String) throws(APIError) -> [String: String] {
        var parameters: [String: String] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let plus = { (text: Substring) in Substring(String(text.map { $0 == "+" ? " " : $0 })) }
            guard let name = percentDecoded(plus(parts[0])), let value = percentDecoded(plus(parts.count > 1 ? parts[1] : "")) else {
                throw APIError(status: 400, code: "invalid_query", message: "the query string is not valid percent-encoded UTF-8")
            }
            parameters[name] = value
        }
        return parameters
    }

    /// The percent-decoded segments after the prefix (`/users/a%2Fb/clients` -> users, a/b, clients).
    static func segments(_ rest: Substring) throws(APIError) -> [String] {
        var segments: [String] = []
        for raw in rest.split(separator: "/", omittingEmptySubsequences: true) {
            guard let decoded = percentDecoded(raw) else {
                throw APIError(status: 400, code: "invalid_path", message: "the path is not valid percent-encoded UTF-8")
            }
            segments.append(decoded)
        }
        return segments
    }

    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) else { return nil }
            bytes.append(value)
            utf8 = utf8.dropFirst(2)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
