import COpenSSL
import Glibc
import Synchronization

/// A TLS server configuration: certificate chain and private key loaded from PEM files,
/// shared by every connection of every loop that listens with it.
///
/// TLS 1.2 and 1.3 only (TLS 1.2 restricted to ECDHE with AEAD ciphers), ALPN answers
/// `http/1.1` (clients offering no ALPN are accepted; clients offering only other protocols
/// get a `no_application_protocol` alert), renegotiation refused, session tickets and the
/// server session cache on, and a peer that closes without `close_notify` is treated as a
/// normal close. Encrypted private keys are rejected rather than prompting for a password.
///
/// `reload()` reads the files again (a renewed certificate) without touching established
/// connections: each `SSL *` holds a reference to the `SSL_CTX` it was made from, so a
/// connection keeps the old one alive until it closes, while new handshakes use the new one.
public final class TLSContext: @unchecked Sendable {
    /// The current `SSL_CTX *`. Each one is immutable once made, and OpenSSL locks what it
    /// mutates (session cache, reference counts), so one context serves many loop threads;
    /// the lock guards only the swap against an `SSL_new` from another thread.
    private let current: Mutex<ContextHandle>
    /// A handshake not finished this long after accept closes the connection.
    public let handshakeTimeoutMilliseconds: Int64
    public let certificateChainFile: String
    public let privateKeyFile: String

    public init(certificateChainFile: String, privateKeyFile: String,
                handshakeTimeoutMilliseconds: Int64 = 10_000) throws(TLSError) {
        self.current = Mutex(try Self.makeContext(certificateChainFile: certificateChainFile, privateKeyFile: privateKeyFile))
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.handshakeTimeoutMilliseconds = handshakeTimeoutMilliseconds
    }

    deinit { current.withLock { SSL_CTX_free($0.pointer) } }

    /// Reads the certificate chain and key files again; handshakes from now on present the new
    /// certificate. On any error (unreadable file, a key that does not match the certificate)
    /// it throws and the context in use is kept. Thread-safe.
    public func reload() throws(TLSError) {
        let fresh = try Self.makeContext(certificateChainFile: certificateChainFile, privateKeyFile: privateKeyFile)
        let old = current.withLock { handle in
            defer { handle = fresh }
            return handle
        }
        // Connections made from the old context hold their own references to it.
        SSL_CTX_free(old.pointer)
    }

    private static func makeContext(certificateChainFile: String, privateKeyFile: String) throws(TLSError) -> ContextHandle {
        ERR_clear_error()
        guard let context = SSL_CTX_new(TLS_server_method()) else {
            throw TLSError(operation: "create TLS context", file: nil, reason: takeOpenSSLReason())
        }
        func fail(_ operation: String, _ file: String?) -> TLSError {
            let error = TLSError(operation: operation, file: file, reason: takeOpenSSLReason())
            SSL_CTX_free(context)
            return error
        }
        // A key file with a passphrase would make OpenSSL prompt on the terminal.
        SSL_CTX_set_default_passwd_cb(context) { _, _, _, _ in 0 }
        let minimumVersion = SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        _ = SSL_CTX_set_options(context, TLSOptions.context)
        _ = SSL_CTX_ctrl(context, SSL_CTRL_MODE, TLSOptions.mode, nil)
        _ = SSL_CTX_ctrl(context, SSL_CTRL_SET_READ_AHEAD, 1, nil)
        let ciphers = SSL_CTX_set_cipher_list(context, "ECDHE+AESGCM:ECDHE+CHACHA20")
        guard minimumVersion == 1, ciphers == 1 else { throw fail("configure TLS context", nil) }
        SSL_CTX_set_alpn_select_cb(context, selectHTTP11, nil)

        guard SSL_CTX_use_certificate_chain_file(context, certificateChainFile) == 1 else {
            throw fail("load certificate", certificateChainFile)
        }
        guard SSL_CTX_use_PrivateKey_file(context, privateKeyFile, SSL_FILETYPE_PEM) == 1,
              SSL_CTX_check_private_key(context) == 1 else {
            throw fail("load private key", privateKeyFile)
        }
        return ContextHandle(pointer: context)
    }

    /// A server-side `SSL *` doing its I/O on `connection`'s descriptor through
    /// `socketBIOMethod`; nil if OpenSSL is out of memory.
    func makeConnection(for connection: ConnectionSlot) -> OpaquePointer? {
        guard let ssl = current.withLock({ SSL_new($0.pointer) }) else {
            takeOpenSSLReason()
            return nil
        }
        guard let bio = BIO_new(socketBIOMethod) else {
            takeOpenSSLReason()
            SSL_free(ssl)
            return nil
        }
        // Unretained: connections live in the loop's slot table until the loop is freed,
        // and the SSL (with its BIO) is freed before the slot is reused.
        BIO_set_data(bio, Unmanaged.passUnretained(connection).toOpaque())
        BIO_set_init(bio, 1)
        SSL_set_bio(ssl, bio, bio)  // the SSL owns the BIO from here on
        SSL_set_accept_state(ssl)
        return ssl
    }
}

/// An `SSL_CTX *` that may cross threads (see `TLSContext.current`).
private struct ContextHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Creating a `TLSContext` failed. `description` names the step, the file and OpenSSL's
/// reason, e.g. `cannot load certificate /x.pem: No such file or directory`. It never
/// contains file contents.
public struct TLSError: Error, Sendable, CustomStringConvertible {
    /// `load certificate`, `load private key`, `create TLS context` or `configure TLS context`.
    public let operation: String
    /// The file being loaded, if the step reads one.
    public let file: String?
    /// OpenSSL's reason for the earliest error of the failed call.
    public let reason: String

    public var description: String {
        if let file { return "cannot \(operation) \(file): \(reason)" }
        return "cannot \(operation): \(reason)"
    }
}

enum TLSOptions {
    /// `SSL_OP_*` are `SSL_OP_BIT(n)` macros, which Swift does not import.
    static let context: UInt64 =
        1 << 7     // SSL_OP_IGNORE_UNEXPECTED_EOF: EOF without close_notify reads as a close
        | 1 << 17  // SSL_OP_NO_COMPRESSION
        | 1 << 22  // SSL_OP_CIPHER_SERVER_PREFERENCE
        | 1 << 30  // SSL_OP_NO_RENEGOTIATION
    /// Partial writes make `SSL_write_ex` return after each record, so `bufferedAmount` is
    /// exact; a retried write may come from a different address (the queue's buffer can
    /// move); idle connections give their record buffers back.
    static let mode = Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
        | SSL_MODE_RELEASE_BUFFERS)
    /// The plaintext size of a full TLS record: small queued messages are coalesced up to it.
    static let recordSize = 16384
}

/// ALPN: picks `http/1.1` from the client's list, else refuses with a fatal alert (RFC 7301).
/// Only called when the client sent the extension. `out` points into the client's list,
/// which OpenSSL copies before it is freed.
private func selectHTTP11(
    _ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?, _ offered: UnsafePointer<UInt8>?,
    _ offeredLength: UInt32, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let out, let outLength, let offered else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    let wanted: StaticString = "http/1.1"
    let total = Int(offeredLength)
    var i = 0
    while i < total {
        let length = Int(offered[i])
        let start = i + 1
        guard start + length <= total else { break }
        if length == wanted.utf8CodeUnitCount,
           memcmp(offered + start, wanted.utf8Start, length) == 0 {
            out.pointee = offered + start
            outLength.pointee = UInt8(length)
            return SSL_TLSEXT_ERR_OK
        }
        i = start + length
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL
}

/// Empties this thread's OpenSSL error queue and returns the reason of its earliest entry
/// (the root cause; later entries are the callers' wrappers).
@discardableResult
func takeOpenSSLReason() -> String {
    let code = ERR_get_error()
    ERR_clear_error()
    guard code != 0 else { return "no reason given" }
    // OpenSSL 3 packs a failed system call's errno (e.g. from fopen) under ERR_SYSTEM_FLAG.
    let systemFlag = UInt(Int32.max) + 1
    if code & systemFlag != 0 { return errnoText(Int32(truncatingIfNeeded: code & ~systemFlag)) }
    if let reason = ERR_reason_error_string(code) { return String(cString: reason) }
    return "error 0x\(String(code, radix: 16))"
}

/// A socket BIO of our own; its data pointer is the (unretained) `ConnectionSlot`. Unlike
/// OpenSSL's socket BIO, writes use `send(MSG_NOSIGNAL)`, so a peer reset is `EPIPE`, never
/// `SIGPIPE`, and add `MSG_MORE` while the flush has further records to send, so the kernel
/// packs consecutive 16 KiB records into full segments. A short `recv` marks the socket as
/// drained, which spares `readTLS` the `recv` that would only return `EAGAIN`. `EAGAIN` sets the retry flags (`SSL_ERROR_WANT_READ`/`WANT_WRITE`); any other
/// failure leaves `errno` for `SSL_ERROR_SYSCALL`; end of input sets the EOF flag that
/// `SSL_OP_IGNORE_UNEXPECTED_EOF` looks for.
nonisolated(unsafe) let socketBIOMethod: OpaquePointer = {
    guard let method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "switchboard socket") else {
        fatalError("SwitchboardPOSIX: BIO_meth_new failed")
    }
    _ = BIO_meth_set_write_ex(method) { bio, data, length, written in
        let connection = Unmanaged<ConnectionSlot>.fromOpaque(BIO_get_data(bio)!)
        let (fd, more) = connection._withUnsafeGuaranteedRef { ($0.fd, $0.tlsMoreToSend) }
        let flags = Int32(MSG_NOSIGNAL) | (more ? Int32(MSG_MORE) : 0)
        BIO_clear_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY)
        while true {
            let n = send(fd, data, length, flags)
            if n >= 0 {
                written?.pointee = n
                return 1
            }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK {
                BIO_set_flags(bio, BIO_FLAGS_WRITE | BIO_FLAGS_SHOULD_RETRY)
            }
            written?.pointee = 0
            return 0
        }
    }
    _ = BIO_meth_set_read_ex(method) { bio, data, length, read in
        let connection = Unmanaged<ConnectionSlot>.fromOpaque(BIO_get_data(bio)!)
        let fd = connection._withUnsafeGuaranteedRef { $0.fd }
        BIO_clear_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY)
        read?.pointee = 0
        while true {
            let n = recv(fd, data, length, 0)
            if n > 0 {
                connection._withUnsafeGuaranteedRef { $0.tlsInputDrained = n < length }
                read?.pointee = n
                return 1
            }
            if n == 0 {
                if length > 0 { BIO_set_flags(bio, BIO_FLAGS_IN_EOF) }
                return 0
            }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK {
                BIO_set_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY)
            }
            return 0
        }
    }
    _ = BIO_meth_set_ctrl(method) { bio, command, _, _ in
        switch command {
        case BIO_CTRL_FLUSH: return 1
        case BIO_CTRL_EOF: return BIO_test_flags(bio, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0
        default: return 0
        }
    }
    return method
}()
