#if canImport(Glibc)
import Glibc
#endif

/// Repeats `condition` every `interval` seconds until it holds or `timeout` passes; the final
/// value of `condition`. Only for what nothing announces, such as a server starting to answer
/// PING: wherever an event can be awaited, await it instead.
public func pollUntil(timeout: Double, every interval: Double = 0.02, _ condition: () -> Bool) -> Bool {
    let end = deadline(after: timeout)
    while ContinuousClock.now < end {
        if condition() { return true }
        var pause = timespec(tv_sec: Int(interval), tv_nsec: Int((interval - Double(Int(interval))) * 1e9))
        nanosleep(&pause, nil)
    }
    return condition()
}
