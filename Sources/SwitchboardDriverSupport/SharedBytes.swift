/// Immutable bytes shared by many connections' output queues: encode once, write to many.
/// A driver queues it without copying (the POSIX driver's `writev` points straight into
/// `bytes`). It lives below every driver so that the `Driver` protocol can name it without
/// naming any one driver.
public final class SharedBytes: @unchecked Sendable {
    public let bytes: [UInt8]
    /// Base of `bytes`' storage; stable because `bytes` is an immutable stored array.
    package let base: UnsafeRawPointer?

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.base = self.bytes.withUnsafeBytes { $0.baseAddress }
    }

    public var count: Int { bytes.count }
}
