import SwitchboardCrypto
import TestSupport

/// Crypto's tests draw their bytes one `next()` per byte, as they always have.
extension SeededRandom: RandomSource {
    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for i in 0..<buffer.count { buffer[i] = UInt8(truncatingIfNeeded: next()) }
    }
}

/// Replays fixed chunks of bytes, one chunk per `fill`, then repeats the last.
struct ScriptedRandom: RandomSource {
    var chunks: [[UInt8]]
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        let chunk = chunks.count > 1 ? chunks.removeFirst() : chunks[0]
        precondition(chunk.count == buffer.count, "scripted chunk has the wrong size")
        buffer.copyBytes(from: chunk)
    }
}

/// The P-256 generator G, uncompressed.
let p256Generator = hex(
    "04" + "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
        + "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
/// The order n of G.
let p256Order = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
