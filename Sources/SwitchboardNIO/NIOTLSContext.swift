import Foundation
import NIOSSL
import Synchronization

/// The `wss://` side of an `NIODriver`: a certificate chain and a private key read from PEM
/// files into a swift-nio-ssl `NIOSSLContext`, with the POSIX driver's policy: TLS 1.2 and
/// 1.3 only, TLS 1.2 restricted to ECDHE with AEAD ciphers, ALPN answering `http/1.1`.
///
/// Each accepted channel gets an `NIOSSLServerHandler` made from the context current at its
/// accept, first in its pipeline; everything behind it sees plaintext, so the driver and the
/// engine do not change. `reload()` reads the files again and swaps the context: a handler
/// keeps the context it was made with, so established connections are untouched and new
/// handshakes present the new certificate.
///
/// One difference from the POSIX driver: a client that offers ALPN but not `http/1.1` is
/// served without ALPN (swift-nio-ssl's choice) instead of getting a fatal
/// `no_application_protocol` alert.
public final class NIOTLSContext: Sendable {
    public let certificateChainFile: String
    public let privateKeyFile: String
    /// Swapped whole by `reload()`; `NIOSSLContext` itself is thread-safe.
    private let current: Mutex<NIOSSLContext>

    /// Reads both files; throws `NIOTLSError` naming the file that cannot be used.
    public init(certificateChainFile: String, privateKeyFile: String) throws(NIOTLSError) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        current = Mutex(try Self.makeContext(certificateChainFile: certificateChainFile, privateKeyFile: privateKeyFile))
    }

    /// Reads the files again (a renewed certificate); handshakes from now on use them. On any
    /// error the context in use is kept. Thread-safe; it reads files and parses keys, so call
    /// it off the EventLoop (a signal handler's queue, for example).
    public func reload() throws(NIOTLSError) {
        let fresh = try Self.makeContext(certificateChainFile: certificateChainFile, privateKeyFile: privateKeyFile)
        current.withLock { $0 = fresh }
    }

    /// A new connection's TLS handler, on the context current now.
    func makeHandler() -> NIOSSLServerHandler { NIOSSLServerHandler(context: current.withLock { $0 }) }

    private static func makeContext(certificateChainFile: String, privateKeyFile: String) throws(NIOTLSError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(try read(certificateChainFile))
        } catch {
            throw NIOTLSError(operation: "load certificate", file: certificateChainFile, reason: "\(error)")
        }
        guard !chain.isEmpty else {
            throw NIOTLSError(operation: "load certificate", file: certificateChainFile, reason: "no PEM certificate in the file")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: try read(privateKeyFile), format: .pem)
        } catch {
            throw NIOTLSError(operation: "load private key", file: privateKeyFile, reason: "\(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuites = "ECDHE+AESGCM:ECDHE+CHACHA20"  // TLS 1.2 only; 1.3's are all AEAD
        configuration.applicationProtocols = ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            // BoringSSL checks the key against the certificate when it is set.
            throw NIOTLSError(operation: "load private key", file: privateKeyFile, reason: "\(error)")
        }
    }

    /// The file's bytes; the error says why it cannot be read (`No such file or directory`),
    /// which swift-nio-ssl's own loaders do not.
    private static func read(_ path: String) throws -> [UInt8] {
        guard let handle = fopen(path, "rb") else { throw NIOTLSError.Reason(String(cString: strerror(errno))) }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = fread(&chunk, 1, chunk.count, handle)
            bytes += chunk[0..<count]
            if count < chunk.count { break }
        }
        if ferror(handle) != 0 { throw NIOTLSError.Reason("read error") }
        return bytes
    }
}

/// Loading a certificate or key for `NIOTLSContext` failed: `cannot load certificate
/// /x.pem: No such file or directory` (the form of the POSIX driver's `TLSError`). It never
/// contains file contents.
public struct NIOTLSError: Error, Sendable, CustomStringConvertible {
    /// `load certificate` or `load private key`.
    public let operation: String
    public let file: String
    public let reason: String

    public var description: String { "cannot \(operation) \(file): \(reason)" }

    /// A reason on its own, wrapped into an `NIOTLSError` by the caller that knows the file.
    struct Reason: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
