import AsyncHTTPClient
import Switchboard

/// Why a backend call gave no usable answer. Each one becomes a throw of the hook it serves,
/// which the spec maps to an error the client gets (docs/proxy.md, "Failures").
public enum ProxyFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// No answer within the hook's timeout.
    case timeout
    /// The connection failed (refused, reset, TLS).
    case transport(String)
    /// An answer with a status other than 2xx.
    case status(Int)
    /// A 2xx answer whose body is not JSON.
    case badJSON
    /// JSON, but not the documented shape (`result` or `error`, and the fields' types).
    case badAnswer(String)

    public var description: String {
        switch self {
        case .timeout: "no answer within the timeout"
        case .transport(let text): "connection failed: \(text)"
        case .status(let code): "answered HTTP \(code)"
        case .badJSON: "answered a body that is not JSON"
        case .badAnswer(let text): "answered an unexpected JSON shape: \(text)"
        }
    }

    /// What a retry may cure: the backend was slow, unreachable or failing, not wrong.
    var isTransient: Bool {
        switch self {
        case .timeout, .transport: true
        case .status(let code): code >= 500
        case .badJSON, .badAnswer: false
        }
    }

    /// A label for metrics.
    public var label: String {
        switch self {
        case .timeout: "timeout"
        case .transport: "transport"
        case .status: "status"
        case .badJSON: "bad_json"
        case .badAnswer: "bad_answer"
        }
    }
}

/// What the backend decided: `{"result": ...}` or `{"error": ...}` (exactly one of them).
public enum ProxyAnswer: Equatable, Sendable {
    case result(JSONValue)
    /// A refusal; `error` is the backend's own value, logged, never shown to the client.
    case error(JSONValue)
}

/// POSTs one hook's JSON to its URL with AsyncHTTPClient and reads the answer: a timeout per
/// attempt, and for idempotent hooks up to `retries` more attempts with a doubling backoff
/// after a transient failure. It never runs on the gateway's loop: the hooks await it.
public struct ProxyClient: Sendable {
    public let config: ProxyConfig
    /// Largest answer read; a longer one is a bad answer.
    static let maxAnswerBytes = 1 << 20

    public init(config: ProxyConfig) { self.config = config }

    /// The backend's decision for `body`, or the failure of the last attempt.
    public func call(_ hook: ProxyConfig.Hook, _ body: JSONValue) async throws(ProxyFailure) -> ProxyAnswer {
        guard let url = config.url(hook) else { throw .transport("no URL for the \(hook.rawValue) hook") }
        let bytes = body.serialized()
        var backoff = config.retryBackoff
        var attempt = 1
        while true {
            do {
                return try await post(url, bytes, timeoutMilliseconds: config.timeout(hook))
            } catch {
                guard error.isTransient, attempt < config.attempts(hook) else { throw error }
            }
            attempt += 1
            if backoff > 0 { try? await Task.sleep(for: .milliseconds(backoff)) }
            backoff *= 2
        }
    }

    /// One attempt: the whole exchange, the answer's body included, races the timeout, and
    /// the loser is cancelled (AsyncHTTPClient drops the connection of a cancelled request).
    func post(_ url: String, _ body: String, timeoutMilliseconds: Int64) async throws(ProxyFailure) -> ProxyAnswer {
        let answer: [UInt8]
        do {
            answer = try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                group.addTask { try await Self.exchange(url, body, timeoutMilliseconds: timeoutMilliseconds) }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(timeoutMilliseconds))
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let bytes = first else { throw ProxyFailure.timeout }
                return bytes
            }
        } catch let failure as ProxyFailure {
            throw failure
        } catch let error as HTTPClientError where [HTTPClientError.deadlineExceeded, .readTimeout, .connectTimeout].contains(error) {
            throw .timeout
        } catch {
            throw .transport("\(error)")
        }
        return try Self.decode(answer)
    }

    /// POST, a 2xx status, and the body (at most `maxAnswerBytes`).
    private static func exchange(_ url: String, _ body: String, timeoutMilliseconds: Int64) async throws -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.body = .bytes(Array(body.utf8))
        let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(timeoutMilliseconds))
        guard (200..<300).contains(Int(response.status.code)) else { throw ProxyFailure.status(Int(response.status.code)) }
        do {
            return Array(try await response.body.collect(upTo: maxAnswerBytes).readableBytesView)
        } catch where !(error is CancellationError) {
            throw ProxyFailure.badAnswer("unreadable or longer than \(maxAnswerBytes) bytes")
        }
    }

    /// `{"result": R}` or `{"error": E}`, nothing else.
    static func decode(_ bytes: [UInt8]) throws(ProxyFailure) -> ProxyAnswer {
        guard let value = try? JSONValue.parse(bytes) else { throw .badJSON }
        guard case .object(let object) = value else { throw .badAnswer("expected an object") }
        switch (object["result"], object["error"]) {
        case (let result?, nil): return .result(result)
        case (nil, let error?): return .error(error)
        case (nil, nil): throw .badAnswer("neither 'result' nor 'error'")
        case (.some, .some): throw .badAnswer("both 'result' and 'error'")
        }
    }
}
