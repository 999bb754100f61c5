import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Log lines for operators: level-filtered, one line each, to a sink. The default sink is
/// swift-log (`Logging.Logger`, label `switchboard`): apps bootstrap `LoggingSystem` with any
/// `LogHandler` (JSON, syslog, ...) and Switchboard's lines go there. The bundled commands
/// bootstrap it to stderr (`bootstrapStandardError`), keeping stdout for their own output.
public struct Logger: Sendable {
    public var level: LogLevel
    public var sink: @Sendable (LogLevel, String) -> Void

    public init(level: LogLevel = .info, sink: @escaping @Sendable (LogLevel, String) -> Void = Logger.swiftLog()) {
        self.level = level
        self.sink = sink
    }

    /// A sink that writes through swift-log.
    public static func swiftLog(label: String = "switchboard") -> @Sendable (LogLevel, String) -> Void {
        var logger = Logging.Logger(label: label)
        logger.logLevel = .trace  // filtering happens in `write`
        return { [logger] level, message in
            let swiftLevel: Logging.Logger.Level = switch level {
            case .debug: .debug
            case .info: .info
            case .warning: .warning
            case .error: .error
            }
            logger.log(level: swiftLevel, "\(message)")
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
    public func debug(_ message: @autoclosure () -> String) { write(.debug, message()) }
    public func info(_ message: @autoclosure () -> String) { write(.info, message()) }
    public func warning(_ message: @autoclosure () -> String) { write(.warning, message()) }
    public func error(_ message: @autoclosure () -> String) { write(.error, message()) }
}

/// Client and server ids: random UUIDs (version 4), like `crypto.randomUUID()`.
/// A simulation seeds its own generator for reproducible runs.
public struct IDGenerator: Sendable {
    private var next: @Sendable () -> (UInt64, UInt64)

    public init(random: @escaping @Sendable () -> (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }) {
        self.next = random
    }

    public mutating func uuid() -> String {
        var (high, low) = next()
        high = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000  // version 4
        low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000    // variant 10
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (index, word) in [high, low].enumerated() {
            for nibble in 0..<16 {
                let position = index * 16 + nibble
                if position == 8 || position == 12 || position == 16 || position == 20 { out.append(UInt8(ascii: "-")) }
                out.append(hex[Int((word >> UInt64(60 - nibble * 4)) & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
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
