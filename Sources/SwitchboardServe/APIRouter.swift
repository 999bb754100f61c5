import Switchboard
import SwitchboardCrypto

/// The server API (docs/api.yaml): a backend publishes, asks who is connected, disconnects
/// and reads counters over HTTP with JSON. This type only checks the key and picks the
/// endpoint; `APIEndpoints` does the work and `APIListener` (or any other HTTP front, such as
/// an internal listener) carries the bytes. `handle` never throws: every refusal is an answer.
public struct APIRouter: Sendable {
    /// Every path starts with this.
    public static let prefix = "/api/v1"

    private let keyDigest: [UInt8]
    private let maxBody: Int
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
        default:
            throw .notFound
        }
    }

    /// Each endpoint takes one method; any other is 405 with `Allow`.
    private static func method(_ request: APIRequest, _ allowed: String) throws(APIError) {
        guard request.method == allowed else { throw .methodNotAllowed(allowed) }
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
