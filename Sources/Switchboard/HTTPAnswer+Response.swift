import SwitchboardCodec
import SwitchboardKernel

extension HTTPAnswer {
    /// The bytes of this spec answer: status line, headers, `Content-Length`, `Connection: close`, body.
    var response: [UInt8] {
        HTTPResponse.simple(status: status, reason: reason, body: body, extraHeaders: headers)
    }

    /// The spec's answer to a request head the parser refused (400, 431 or 505).
    init(_ error: HTTPParseError) {
        switch error.status {
        case HTTPAnswer.headTooLarge.status: self = .headTooLarge
        case HTTPAnswer.versionNotSupported.status: self = .versionNotSupported
        default: self = .badRequest
        }
    }
}
