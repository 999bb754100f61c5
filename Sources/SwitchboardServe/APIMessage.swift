import Switchboard

/// One request to the server API, however it arrived (the API listener today, an internal
/// listener later): what `APIRouter.handle` needs and nothing of the socket.
public struct APIRequest: Sendable {
    public var method: String
    /// The path without the query string, still percent-encoded.
    public var path: String
    /// What follows `?` in the request target (empty without one), still percent-encoded.
    public var query: String
    /// Header names lower-cased.
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(method: String, path: String, query: String = "", headers: [(String, String)] = [], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers.map { ($0.0.lowercased(), $0.1) }
        self.body = body
    }

    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.0 == lowered }?.1
    }
}

/// The answer: a status and a JSON body (every answer of the API is JSON, errors included).
public struct APIResponse: Sendable, Equatable {
    public var status: Int
    public var body: JSONValue
    /// Besides `Content-Type` and `Content-Length`, which the listener writes.
    public var headers: [(String, String)]

    public init(status: Int = 200, body: JSONValue, headers: [(String, String)] = []) {
        self.status = status
        self.body = body
        self.headers = headers
    }

    public var bodyBytes: [UInt8] {
        var out: [UInt8] = []
        body.serialize(into: &out)
        out.append(0x0A)
        return out
    }

    public static func == (a: APIResponse, b: APIResponse) -> Bool {
        a.status == b.status && a.body == b.body && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }

    static func ok(_ members: [(String, JSONValue)]) -> APIResponse {
        APIResponse(body: .object(JSONObject(members)))
    }
}

/// A refused request: `{"error": {"code", "field"?, "message"}}` with a 4xx or 5xx status.
/// `code` is a stable machine-readable name (docs/api.yaml lists them); `field` names the
/// member of the JSON body or the path segment at fault, when one is.
public struct APIError: Error, Sendable, Equatable {
    public var status: Int
    public var code: String
    public var field: String?
    public var message: String
    public var headers: [(String, String)] = []

    public init(status: Int, code: String, field: String? = nil, message: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.field = field
        self.message = message
        self.headers = headers
    }

    public static func == (a: APIError, b: APIError) -> Bool {
        a.status == b.status && a.code == b.code && a.field == b.field && a.message == b.message
    }

    public var response: APIResponse {
        var members: [(String, JSONValue)] = [("code", .string(code))]
        if let field { members.append(("field", .string(field))) }
        members.append(("message", .string(message)))
        return APIResponse(status: status, body: .object(JSONObject([("error", .object(JSONObject(members)))])), headers: headers)
    }

    static func invalid(_ field: String, _ message: String) -> APIError {
        APIError(status: 400, code: "invalid_field", field: field, message: message)
    }
    static func missing(_ field: String) -> APIError {
        APIError(status: 400, code: "missing_field", field: field, message: "'\(field)' is required")
    }
    static let unauthorized = APIError(status: 401, code: "unauthorized",
                                       message: "send the API key as 'Authorization: Bearer KEY'",
                                       headers: [("WWW-Authenticate", "Bearer realm=\"switchboard\"")])
    static let notFound = APIError(status: 404, code: "not_found", message: "no such endpoint (see docs/api.yaml)")
    static func methodNotAllowed(_ allowed: String) -> APIError {
        APIError(status: 405, code: "method_not_allowed", message: "use \(allowed)", headers: [("Allow", allowed)])
    }
    static func tooLarge(_ limit: Int) -> APIError {
        APIError(status: 413, code: "payload_too_large", message: "the body is larger than \(limit) bytes (api.max_body)")
    }
    static let unavailable = APIError(status: 503, code: "unavailable", message: "the gateway is not running")
}

/// The reason phrase of the statuses the API answers with.
enum HTTPReason {
    static func phrase(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        default: "Status \(status)"
        }
    }
}
