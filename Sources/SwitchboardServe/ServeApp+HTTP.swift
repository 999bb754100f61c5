import Switchboard

/// The HTTP side of `switchboard serve`: `/metrics`, `/livez`, `/readyz`, `/healthz` and the
/// demo page on the public port, and the same operator endpoints on the internal listener.
extension ServeApp {
    /// The paths of the operator endpoints.
    static let operatorPaths: Set<String> = ["/metrics", "/healthz", "/livez", "/readyz"]

    /// What the internal listener serves: the operator endpoints, and the server API when
    /// `api.listen` is `internal` (`api`, nil otherwise). Routes are tried in order: add an
    /// endpoint for operators by appending its route here.
    static func internalRouter(app: WeakApp, api: APIRouter?) -> HTTPRouter {
        var router = HTTPRouter()
        router.append { call in await app.value?.answerOperator(call) }
        if let api {
            let mount = APIMount(router: api)
            router.append(mount.answer)
            router.bodyChecks.append(mount.bodyDecision)
        }
        return router
    }

    /// An answer on the public port (the `httpHandler`, on the loop). With the internal
    /// listener on, `internal.public` says which operator endpoints stay here.
    func answer(_ request: HTTPRequest) -> HTTPAnswerBody? {
        if Self.operatorPaths.contains(request.path) {
            guard config.internalListener.publicServes(request.path) else { return nil }
            return operatorAnswer(method: request.method, path: request.path,
                                  metrics: request.path == "/metrics" ? server.metricsOnLoop() : nil)
        }
        guard let demoPage, request.path == "/" || request.path == "/index.html" else { return nil }
        if let refused = Self.refuseMethod(request.method) { return refused }
        return HTTPAnswerBody(contentType: "text/html; charset=utf-8", body: demoPage,
                              headers: [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                                        ("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:")])
    }

    /// An answer on the internal listener (off the loop: the metrics are fetched from it).
    func answerOperator(_ call: HTTPCall) async -> HTTPAnswerBody? {
        guard Self.operatorPaths.contains(call.path) else { return nil }
        let metrics = call.path == "/metrics" && Self.refuseMethod(call.method) == nil ? try? await server.metrics() : nil
        return operatorAnswer(method: call.method, path: call.path, metrics: metrics)
    }

    /// `path` is one of `operatorPaths`; `metrics` is the server's snapshot for `/metrics`
    /// (nil: it could not be taken, a 503).
    private func operatorAnswer(method: String, path: String, metrics: ServerMetrics?) -> HTTPAnswerBody {
        if let refused = Self.refuseMethod(method) { return refused }
        let noStore = [("Cache-Control", "no-store")]
        switch path {
        case "/metrics":
            guard let metrics else {
                return HTTPAnswerBody(status: 503, reason: "Service Unavailable", text: "metrics unavailable\n")
            }
            let text = PrometheusText.render(server: metrics, serve: stats.snapshot, redis: redisBus?.stats, build: build,
                                             process: ProcessMetrics.read())
            return HTTPAnswerBody(contentType: PrometheusText.contentType, text: text, headers: noStore)
        case "/livez":
            return HTTPAnswerBody(text: "ok\n", headers: noStore)
        default:  // /readyz, /healthz
            let health = healthy
            return health.ok
                ? HTTPAnswerBody(text: "ok\n", headers: noStore)
                : HTTPAnswerBody(status: 503, reason: "Service Unavailable", text: health.reason + "\n", headers: noStore)
        }
    }

    private static func refuseMethod(_ method: String) -> HTTPAnswerBody? {
        guard method != "GET", method != "HEAD" else { return nil }
        return HTTPAnswerBody(status: 405, reason: "Method Not Allowed", text: "Method Not Allowed\n",
                              headers: [("Allow", "GET, HEAD")])
    }
}
