import Switchboard

/// The server API on the internal listener (`api.listen: internal`): the same `APIRouter` that
/// `APIListener` serves on the API's own port, reached through the internal listener's
/// `HTTPRouter`. Only the conversions live here, so both ports answer alike: the key is
/// checked by the router, a body over `api.max_body` (or chunked) is refused from the head
/// by `APIRouter.refusalBeforeBody`, and every answer, errors included, is the router's JSON.
///
/// What differs is the connection, not the API: the internal listener answers one request
/// per connection (`Connection: close`), and a malformed request line or head gets its plain
/// text refusal, since nothing of it is known to be an API request.
struct APIMount: Sendable {
    let router: APIRouter

    /// The route: API paths only; the rest is left to the listener's other routes.
    func answer(_ call: HTTPCall) async -> HTTPAnswerBody? {
        guard APIRouter.owns(call.path) else { return nil }
        return Self.answerBody(await router.handle(Self.request(call)))
    }

    /// The body check: for an API path, the router's refusal, or a body up to `api.max_body`.
    func bodyDecision(_ call: HTTPCall, contentLength: Int, chunked: Bool) -> HTTPRouter.BodyDecision? {
        guard APIRouter.owns(call.path) else { return nil }
        if let refusal = router.refusalBeforeBody(Self.request(call), contentLength: contentLength, chunked: chunked) {
            return .refuse(Self.answerBody(refusal))
        }
        return .read(limit: router.maxBody)
    }

    static func request(_ call: HTTPCall) -> APIRequest {
        let query = call.target.firstIndex(of: "?").map { String(call.target[call.target.index(after: $0)...]) } ?? ""
        return APIRequest(method: call.method, path: call.path, query: query, headers: call.headers.map { ($0.name, $0.value) },
                          body: call.body)
    }

    /// With the headers `APIListener` writes besides the framing ones.
    static func answerBody(_ response: APIResponse) -> HTTPAnswerBody {
        HTTPAnswerBody(status: response.status, reason: HTTPReason.phrase(response.status), contentType: "application/json",
                       body: response.bodyBytes, headers: [("Cache-Control", "no-store")] + response.headers)
    }
}
