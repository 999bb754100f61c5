import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Log lines for operators: level-filtered, one line each, to a sink. The default sink is
/// swift-log (`Logging.Logger`, label `switchboard`): apps bootstrap `LoggingSystem` with any
/// `LogHandler` (JSON, syslog, ...) and Switchboard's lines go there. An app that has its own
/// `Logging.Logger` (with its label, level and metadata) passes it with `init(_:)` or
/// `Server(options:hooks:logger:)`. The bundled commands bootstrap swift-log to stderr
/// (`bootstrapStandardError`), keeping stdout for their own output.
///
/// Lines about one client carry structured metadata (`client_id`, `user_id` when known,
/// `close_code` for closes). A swift-log sink receives it as swift-log metadata, so a JSON
/// handler can index it; a plain string sink gets it appended to the message
/// (`text [client_id=... user_id=...]`).
public struct Logger: Sendable {
    public typealias Metadata = Logging.Logger.Metadata

    public var level: LogLevel
    /// The string sink. Setting it replaces the metadata sink too, so a sink installed this
    /// way sees every line (with its metadata appended to the text).
    public var sink: @Sendable (LogLevel, String) -> Void {
        didSet { metadataSink = nil }
    }
    /// Where lines go with their metadata; when nil, lines go to `sink` as text.
    public var metadataSink: (@Sendable (LogLevel, String, Metadata) -> Void)?

    /// Lines at `level` and above, to swift-log under the label `switchboard`, with metadata.
    public init(level: LogLevel = .info) {
        self.level = level
        self.sink = Logger.swiftLog()
        self.metadataSink = Logger.swiftLog(Logger.unfiltered(label: "switchboard"))
    }

    /// Lines at `level` and above, as text, to `sink`.
    public init(level: LogLevel = .info, sink: @escaping @Sendable (LogLevel, String) -> Void) {
        self.level = level
        self.sink = sink
        self.metadataSink = nil
    }

    /// Lines at `level` and above, with metadata, to `sink`.
    public init(level: LogLevel = .info, metadataSink: @escaping @Sendable (LogLevel, String, Metadata) -> Void) {
        self.level = level
        self.sink = { level, message in metadataSink(level, message, [:]) }
        self.metadataSink = metadataSink
    }

    /// Lines to the app's own swift-log logger (its handler, label and metadata), filtered by
    /// that logger's level (`trace` counts as debug, `notice` as info, `critical` as error).
    public init(_ logger: Logging.Logger) {
        self.init(level: LogLevel(logger.logLevel), metadataSink: Logger.swiftLog(logger))
    }

    /// A sink that writes through swift-log.
    public static func swiftLog(label: String = "switchboard") -> @Sendable (LogLevel, String) -> Void {
        let sink = swiftLog(Logger.unfiltered(label: label))  // filtering happens in `write`
        return { level, message in sink(level, message, [:]) }
    }

    /// A sink that writes through the given swift-log logger, metadata included.
    public static func swiftLog(_ logger: Logging.Logger) -> @Sendable (LogLevel, String, Metadata) -> Void {
        { [logger] level, message, metadata in
            logger.log(level: level.swiftLog, "\(message)", metadata: metadata.isEmpty ? nil : metadata)
        }
    }

    public static let stderr: @Sendable (LogLevel, String) -> Void = { level, message in
        writeAll(2, "switchboard [\(level)] \(message)\n")
    }

    /// Sends swift-log's output to stderr (once per process; later calls do nothing).
    public static func bootstrapStandardError() {
        _ = bootstrapOnce
    }
    private static let bootstrapOnce: Void = LoggingSystem.bootstrap(StreamLogHandler.standardError)

    public func write(_ level: LogLevel, _ message: @autoclosure () -> String) {
        guard level >= self.level else { return }
        sink(level, message())
    }

    /// A line with metadata; neither is built unless the level passes.
    public func write(_ level: LogLevel, _ message: @autoclosure () -> String, metadata: @autoclosure () -> Metadata) {
        guard level >= self.level else { return }
        if let metadataSink {
            metadataSink(level, message(), metadata())
        } else {
            sink(level, Logger.appending(metadata(), to: message()))
        }
    }

    public func debug(_ message: @autoclosure () -> String) { write(.debug, message()) }
    public func info(_ message: @autoclosure () -> String) { write(.info, message()) }
    public func warning(_ message: @autoclosure () -> String) { write(.warning, message()) }
    public func error(_ message: @autoclosure () -> String) { write(.error, message()) }

    /// The metadata of a line about one client: its id, and its user's id when known.
    static func client(_ clientID: String?, userID: String? = nil) -> Metadata {
        var metadata: Metadata = [:]
        if let clientID { metadata["client_id"] = .string(clientID) }
        if let userID { metadata["user_id"] = .string(userID) }
        return metadata
    }

    /// `message [key=value ...]`, keys sorted, for string sinks.
    static func appending(_ metadata: Metadata, to message: String) -> String {
        guard !metadata.isEmpty else { return message }
        let pairs = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return "\(message) [\(pairs.joined(separator: " "))]"
    }
}

extension Logger {
    /// A swift-log logger that passes every line (Switchboard's `level` filters before it).
    static func unfiltered(label: String) -> Logging.Logger {
        var logger = Logging.Logger(label: label)
        logger.logLevel = .trace
        return logger
    }
}

extension LogLevel {
    /// The swift-log level of this one.
    var swiftLog: Logging.Logger.Level {
        switch self {
        case .debug: .debug
        case .info: .info
        case .warning: .warning
        case .error: .error
        }
    }

    /// The nearest of these four to a swift-log level.
    init(_ level: Logging.Logger.Level) {
        switch level {
        case .trace, .debug: self = .debug
        case .info, .notice: self = .info
        case .warning: self = .warning
        case .error, .critical: self = .error
        }
    }
}

/// Client and server ids: random UUIDs (version 4), like `crypto.randomUUID()`.
/// A simulation seeds its own generator for reproducible runs.
///
/// With several loops (`ServerOptions.loops`), each loop's generator writes the loop's index
/// into the id's last 10 bits (`shard`), so that any thread tells a client's loop from its id
/// (`shard(of:)`); 112 random bits remain.
public struct IDGenerator: Sendable {
    private var next: @Sendable () -> (UInt64, UInt64)
    /// The loop index written into every id; nil: all bits random.
    var shard: UInt64?
    /// How many loops an id can name (`ServerOptions.loops` is at most this).
    static let shardLimit = 1024

    /// `random` gives two random words per id; by default from `RandomPool` (kernel randomness
    /// read in bulk, not a system call per word).
    public init(random: @escaping @Sendable () -> (UInt64, UInt64) = { RandomPool.shared.pair() }) {
        self.next = random
    }

    public mutating func uuid() -> String {
        var (high, low) = next()
        high = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000  // version 4
        low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000    // variant 10
        if let shard { low = (low & ~UInt64(Self.shardLimit - 1)) | shard }
        // Written into the string's own storage: one allocation (once per connection). The
        // words are read in place (a `[high, low]` to loop over was a second allocation).
        let digits = ("0123456789abcdef" as StaticString).utf8Start
        return String(unsafeUninitializedCapacity: 36) { out in
            var at = 0
            // 8-4-4-4-12 digits: dashes before nibbles 8 and 12 of the high word, 0 and 4 of the low.
            for nibble in 0..<16 {
                if nibble == 8 || nibble == 12 {
                    out[at] = UInt8(ascii: "-")
                    at += 1
                }
                out[at] = digits[Int((high >> UInt64(60 - nibble * 4)) & 0xF)]
                at += 1
            }
            for nibble in 0..<16 {
                if nibble == 0 || nibble == 4 {
                    out[at] = UInt8(ascii: "-")
                    at += 1
                }
                out[at] = digits[Int((low >> UInt64(60 - nibble * 4)) & 0xF)]
                at += 1
            }
            return at
        }
    }
}

extension IDGenerator {
    /// The loop index in the last 10 bits of an id shaped as `uuid()` writes it (36 characters,
    /// lowercase hex); nil for anything else.
    static func shard(of id: String) -> Int? {
        var id = id
        return id.withUTF8 { bytes -> Int? in
            guard bytes.count == 36, bytes[8] == UInt8(ascii: "-"), bytes[23] == UInt8(ascii: "-") else { return nil }
            var value = 0
            for byte in bytes[33...] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                default: return nil
                }
                value = value << 4 | Int(digit)
            }
            return value & (shardLimit - 1)
        }
    }
}

/// Writes a whole string to a file descriptor (stdout/stderr without C's shared FILE state).
public func writeAll(_ fd: Int32, _ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }
}
