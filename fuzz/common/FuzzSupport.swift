// Compiled into every fuzz target (same module as the target's entry point).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Stops the run with `message` when `condition` is false; libFuzzer records the input as a crash.
@inline(__always)
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
             file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { invariantFailed(message(), file: file, line: line) }
}

@inline(never)
func invariantFailed(_ message: String, file: StaticString, line: UInt) -> Never {
    let text = "INVARIANT FAILED (\(file):\(line)): \(message)\n"
    _ = text.utf8.withContiguousStorageIfAvailable { write(2, $0.baseAddress, $0.count) }
    abort()
}

/// Lowercase hex of `bytes`, cut after `limit` bytes.
func hex<C: Collection>(_ bytes: C, limit: Int = 256) -> String where C.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes.prefix(limit) {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0xF)])
    }
    if bytes.count > limit { out += Array("...".utf8) }
    return String(decoding: out, as: UTF8.self)
}

/// Whether `bytes` is well-formed UTF-8 (independent of the project's validators).
func isWellFormedUTF8<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
    String(validating: bytes, as: UTF8.self) != nil
}

/// Chunk lengths for feeding `count` bytes, derived from a 16-bit `seed` taken from the input.
///
/// The low three bits pick a chunk-size ceiling (whole, 1, 2, 3, 7, 16, 64, 512 bytes); the rest
/// seeds a xorshift generator that draws each length in 1...ceiling.
struct SplitPlan {
    static let ceilings = [0, 1, 2, 3, 7, 16, 64, 512]

    var state: UInt32
    let ceiling: Int

    init(seed: UInt16) {
        ceiling = Self.ceilings[Int(seed & 7)]
        state = UInt32(seed) &* 0x9E37_79B9 | 1
    }

    mutating func nextRandom() -> UInt32 {
        state ^= state << 13
        state ^= state >> 17
        state ^= state << 5
        return state
    }

    /// Lengths summing to `count` (one chunk when the ceiling is 0, i.e. "whole").
    mutating func chunks(count: Int) -> [Int] {
        guard ceiling > 0 else { return count > 0 ? [count] : [] }
        var lengths: [Int] = []
        var left = count
        while left > 0 {
            let length = min(left, 1 + Int(nextRandom() % UInt32(ceiling)))
            lengths.append(length)
            left -= length
        }
        return lengths
    }
}

/// The first two bytes of the input as a seed, and the rest.
func splitSeed(_ input: UnsafeRawBufferPointer) -> (seed: UInt16, rest: UnsafeRawBufferPointer) {
    guard input.count >= 2 else { return (0, UnsafeRawBufferPointer(rebasing: input[input.count...])) }
    let seed = UInt16(input[0]) << 8 | UInt16(input[1])
    return (seed, UnsafeRawBufferPointer(rebasing: input[2...]))
}
