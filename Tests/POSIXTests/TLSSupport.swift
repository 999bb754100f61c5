import COpenSSL
import Foundation
import Glibc
import SwitchboardPOSIX
import TestSupport

/// Runs `openssl` with `arguments` in `directory`; its exit status and output (standard output,
/// then standard error). `stdin` is written and closed first. Killed after `failureTimeout`.
func runOpenSSL(_ arguments: [String], in directory: String? = nil, stdin: String = "") throws -> (status: Int32, output: String) {
    let result = try runProgram("/usr/bin/env", ["openssl"] + arguments, stdin: Array(stdin.utf8), in: directory,
                                timeout: failureTimeout)
    return (result.status, result.output)
}

/// A self-signed P-256 certificate for `localhost` made with the `openssl` tool in a
/// temporary directory, a second unrelated key, a server `TLSContext` and a client
/// `SSL_CTX` that trusts exactly that certificate. Made once per test process; the
/// directory is removed at exit.
final class TLSFixture: @unchecked Sendable {
    static let shared = Result { try TLSFixture() }
    nonisolated(unsafe) private static var removeAtExit: String?

    let directory: String
    let certificate: String
    let key: String
    let otherKey: String
    let server: TLSContext
    /// Verifies the server against `certificate` and checks the name `localhost`.
    let client: OpaquePointer

    private init() throws {
        signal(SIGPIPE, SIG_IGN)  // the test clients use OpenSSL's socket BIO (write(2))
        directory = NSTemporaryDirectory() + "switchboard-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        Self.removeAtExit = directory
        atexit { TLSFixture.removeAtExit.map { try? FileManager.default.removeItem(atPath: $0) } }
        certificate = directory + "/c.pem"
        key = directory + "/k.pem"
        otherKey = directory + "/other-k.pem"
        for (keyFile, certificateFile) in [("k.pem", "c.pem"), ("other-k.pem", "other-c.pem")] {
            let result = try runOpenSSL(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                         "-nodes", "-days", "1", "-subj", "/CN=localhost",
                                         "-keyout", keyFile, "-out", certificateFile], in: directory)
            guard result.status == 0 else { throw TestFailure("openssl req failed: \(result.output)") }
        }
        server = try TLSContext(certificateChainFile: certificate, privateKeyFile: key)
        client = try Self.clientContext(trusting: certificate)
    }

    static func clientContext(trusting file: String?) throws -> OpaquePointer {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw TestFailure("SSL_CTX_new") }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        // Read whole socket buffers, not one record header and body at a time.
        _ = SSL_CTX_ctrl(context, SSL_CTRL_SET_READ_AHEAD, 1, nil)
        SSL_CTX_set_default_read_buffer_len(context, 1 << 17)
        if let file {
            guard SSL_CTX_load_verify_locations(context, file, nil) == 1 else {
                throw TestFailure("cannot trust \(file)")
            }
        }
        return context
    }
}

/// A blocking TLS client over a POSIX socket (`SSL_connect`, `SSL_read`, `SSL_write`).
final class TLSClient {
    let fd: Int32
    let ssl: OpaquePointer

    /// Connects and completes the handshake, or throws with OpenSSL's reason.
    convenience init(port: Int, context: OpaquePointer, alpn: Bool = true, receiveBuffer: Int32? = nil) throws {
        let fd = try TLSClient.connectSocket(port: port, receiveBuffer: receiveBuffer)
        try self.init(socket: fd, context: context, alpn: alpn)
    }

    /// Runs the handshake over an already connected socket (which it then owns).
    init(socket fd: Int32, context: OpaquePointer, alpn: Bool = true) throws {
        self.fd = fd
        guard let ssl = SSL_new(context) else {
            Glibc.close(fd)
            throw TestFailure("SSL_new")
        }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        _ = SSL_set1_host(ssl, "localhost")
        if alpn {
            let protocols: [UInt8] = [8] + Array("http/1.1".utf8)
            _ = SSL_set_alpn_protos(ssl, protocols, UInt32(protocols.count))
        }
        ERR_clear_error()
        guard SSL_connect(ssl) == 1 else {
            let code = ERR_get_error()
            ERR_clear_error()
            let reason = ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(code)"
            throw TestFailure("SSL_connect: \(reason)")
        }
    }

    static func connectSocket(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var timeout = timeval(tv_sec: Int(failureTimeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw TestFailure("connect: errno \(code)")
        }
        return fd
    }

    deinit {
        SSL_free(ssl)
        Glibc.close(fd)
    }

    var localPort: Int { Client.localPort(fd) }

    /// The negotiated ALPN protocol, if any.
    var alpn: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { send($0) }
    }

    func send(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            var written = 0
            guard SSL_write_ex(ssl, bytes.baseAddress! + offset, bytes.count - offset, &written) == 1 else { return false }
            offset += written
        }
        return true
    }

    /// Reads exactly `count` bytes (fewer on close, error or timeout).
    func receive(count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        let got = result.withUnsafeMutableBytes { receive(into: $0) }
        return Array(result[0..<got])
    }

    /// Fills `buffer` (less on close, error or timeout); returns the byte count.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var offset = 0
        while offset < buffer.count {
            var n = 0
            guard SSL_read_ex(ssl, buffer.baseAddress! + offset, buffer.count - offset, &n) == 1 else { break }
            offset += n
        }
        return offset
    }

    /// Reads until the server's `close_notify` (`clean`) or any other end.
    func receiveToEnd() -> (bytes: [UInt8], clean: Bool) {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var n = 0
            let ok = buffer.withUnsafeMutableBytes { SSL_read_ex(ssl, $0.baseAddress!, $0.count, &n) }
            if ok == 1 {
                result.append(contentsOf: buffer[0..<n])
                continue
            }
            let clean = SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN
            ERR_clear_error()
            return (result, clean)
        }
    }

    /// Sends `close_notify`.
    func sendCloseNotify() { _ = SSL_shutdown(ssl) }
}

extension CloseReason {
    var tlsReason: String? {
        if case .tlsFailed(let reason) = self { return reason }
        return nil
    }
}
