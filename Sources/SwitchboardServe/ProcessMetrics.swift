#if canImport(Glibc)
import Glibc
#endif

/// The standard `process_*` facts of the running process, read from `/proc/self` (Linux).
/// Elsewhere `read()` answers nil and `/metrics` leaves the family out.
public struct ProcessMetrics: Sendable, Equatable {
    /// User plus system CPU time.
    public var cpuSeconds: Double
    public var residentBytes: Int
    public var openFileDescriptors: Int
    /// When the process started, in seconds since the Unix epoch.
    public var startTimeSeconds: Double

    public init(cpuSeconds: Double, residentBytes: Int, openFileDescriptors: Int, startTimeSeconds: Double) {
        self.cpuSeconds = cpuSeconds
        self.residentBytes = residentBytes
        self.openFileDescriptors = openFileDescriptors
        self.startTimeSeconds = startTimeSeconds
    }

    /// Now, from `/proc/self/stat` (utime, stime, starttime, rss), `/proc/stat` (btime) and
    /// the entries of `/proc/self/fd`.
    public static func read() -> ProcessMetrics? {
        #if os(Linux)
        guard let stat = readText("/proc/self/stat"), let system = readText("/proc/stat") else { return nil }
        // The command name (field 2) may hold spaces and parentheses: fields count from its last ')'.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After ')': field 3 (state) is fields[0], so field n is fields[n - 3].
        guard fields.count > 21, let utime = Double(fields[11]), let stime = Double(fields[12]),
              let started = Double(fields[19]), let rssPages = Int(fields[21]) else { return nil }
        guard let btimeLine = system.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let bootTime = Double(btimeLine.dropFirst("btime ".count)) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        return ProcessMetrics(cpuSeconds: (utime + stime) / ticks, residentBytes: rssPages * pageSize,
                              openFileDescriptors: countFileDescriptors(), startTimeSeconds: bootTime + started / ticks)
        #else
        return nil
        #endif
    }

    #if os(Linux)
    /// Entries of `/proc/self/fd`, less the one the listing itself holds open.
    private static func countFileDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { count += 1 }
        }
        return max(count - 1, 0)
    }

    /// A small `/proc` file whole (their sizes read as 0, so read until the end).
    private static func readText(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got < 0 { return nil }
            if got == 0 { break }
            bytes += buffer[..<got]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
    #endif
}
