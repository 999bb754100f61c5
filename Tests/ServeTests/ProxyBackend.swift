import Foundation
import Switchboard
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A real backend for the proxy hooks: a small python3 HTTP server on a free loopback port
/// (a thread per request, so one that never answers holds up nobody else). What it answers
/// depends on the request, so one backend serves every test:
///
/// - connect, by `data.token`: `user:NAME` admits NAME (metadata `{"plan":"pro"}`, rooms
///   `lounge` and the reserved `ws:reserved`), `deny`
///   refuses, `boom` answers 500, `garbage` a body that is not JSON, `wrong-type` a numeric
///   userId, `hang` nothing for 30 s, `flaky:NAME` 503 the first time and NAME the second;
/// - join: every room but those starting with `secret`, and 500 when one is `explode`;
/// - rpc, by `method`: `echo` answers `{"echo": data}`, `deny`/`boom`/`garbage`/`hang` as above;
/// - publish: `data.text` upper-cased with `"checked": true`; text `deny` is refused;
/// - disconnect: `{"result": {}}`.
///
/// `GET /calls` lists every request received so far (`{"path", "body"}`), in order.
final class ProxyBackend: @unchecked Sendable {
    let port: Int
    private let dir: TempDir
    private let process: Process

    static let script = #"""
    import json, sys, threading, time
    from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

    calls, seen, lock = [], set(), threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *args): pass

        def reply(self, status, body):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            with lock:
                listed = list(calls)
            self.reply(200, listed)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"null")
            with lock:
                calls.append({"path": self.path, "body": body})
            key = ""
            if self.path == "/connect": key = str((body.get("data") or {}).get("token", ""))
            if self.path == "/rpc": key = str(body.get("method", ""))
            if key == "hang":
                time.sleep(30)
                return
            if key == "boom": return self.reply(500, {"oops": True})
            if key == "garbage": return self.reply(200, b"this is not json")
            if key == "deny": return self.reply(200, {"error": {"code": 403, "message": "denied"}})
            if self.path == "/connect":
                if key == "wrong-type": return self.reply(200, {"result": {"userId": 42}})
                if key.startswith("flaky:"):
                    with lock:
                        first = key not in seen
                        seen.add(key)
                    if first: return self.reply(503, {})
                    key = "user:" + key[len("flaky:"):]
                if key.startswith("user:"):
                    return self.reply(200, {"result": {"userId": key[len("user:"):], "metadata": {"plan": "pro"},
                                                       "rooms": ["lounge", "ws:reserved"]}})
                return self.reply(200, {"error": "unknown token"})
            if self.path == "/join":
                if "explode" in body["rooms"]: return self.reply(500, {})
                return self.reply(200, {"result": {"rooms": [r for r in body["rooms"] if not r.startswith("secret")]}})
            if self.path == "/rpc":
                return self.reply(200, {"result": {"echo": body.get("data")}})
            if self.path == "/publish":
                text = str((body.get("data") or {}).get("text", ""))
                if text == "deny": return self.reply(200, {"error": "not allowed"})
                return self.reply(200, {"result": {"data": {"text": text.upper(), "checked": True}}})
            return self.reply(200, {"result": {}})

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
    """#

    init() throws {
        dir = try TempDir()
        port = freePort()
        let file = try dir.write("backend.py", Self.script)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", file, "\(port)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Nothing announces that it listens: poll its list of calls.
        guard pollUntil(timeout: 10, every: 0.05, { (try? self.calls()) != nil }) else {
            stop()
            throw TestFailure("the python3 backend did not answer on port \(port)")
        }
    }

    /// Starts one on a thread of its own: python3 takes a while to answer under load, and a
    /// wait on the cooperative pool would hold up the tasks other suites' servers run on.
    static func start() async throws -> ProxyBackend {
        try await offThePool { try ProxyBackend() }
    }

    /// `calls(path)` off the cooperative pool, for async tests.
    func recorded(_ path: String) async throws -> [JSONValue] {
        try await offThePool { try self.calls(path) }
    }

    func url(_ hook: String) -> String { "http://127.0.0.1:\(port)/\(hook)" }

    /// The `proxy:` section with every hook on this backend.
    func config(timeout: String = "500ms", retries: Int = 2, forwardHeaders: [String] = ["x-tenant"]) -> String {
        var yaml = "proxy:\n  timeout: \(timeout)\n  retries: \(retries)\n  retry_backoff: 20ms\n"
        if !forwardHeaders.isEmpty { yaml += "  forward_headers: [\(forwardHeaders.joined(separator: ", "))]\n" }
        for hook in ["connect", "join", "rpc", "publish", "disconnect"] { yaml += "  \(hook):\n    url: \(url(hook))\n" }
        return yaml
    }

    /// The bodies of the requests to `/path` so far.
    func calls(_ path: String) throws -> [JSONValue] {
        try calls().compactMap { call in call["path"]?.stringValue == "/" + path ? call["body"] : nil }
    }

    func calls() throws -> [JSONValue] {
        let reply = try rawHTTP(port: UInt16(port), request: "GET /calls HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                                timeout: 2)
        guard reply.status == 200, case .array(let calls) = try JSONValue.parse(reply.body) else {
            throw TestFailure("GET /calls answered \(reply.status): \(reply.body)")
        }
        return calls
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        dir.remove()
    }
}
