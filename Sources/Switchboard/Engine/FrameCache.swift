import SwitchboardCodec

/// A payload's WebSocket frames, plain and compressed, built on first use and kept on the
/// payload (`Payload.driverCache`): a fan-out encodes (and compresses) once for every
/// recipient.
final class FrameCache {
    var plain: SharedBytes?
    var compressed: SharedBytes?
    var compressedBits = 0

    /// The cache of a payload, created on first use. Loop thread only, like the payload's effect.
    static func of(_ payload: Payload) -> FrameCache {
        if let cache = payload.driverCache as? FrameCache { return cache }
        let cache = FrameCache()
        payload.driverCache = cache
        return cache
    }

    /// The plain text frame of a payload.
    static func plain(_ payload: Payload) -> SharedBytes {
        let cache = of(payload)
        if let plain = cache.plain { return plain }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(payload.bytes.count + 10)
        payload.bytes.withUnsafeBytes { FrameEncoder.encode(opcode: .text, payload: $0, into: &bytes) }
        let shared = SharedBytes(bytes)
        cache.plain = shared
        return shared
    }

    /// The frame for one connection: compressed when it negotiated permessage-deflate and the
    /// payload is at least `threshold` bytes, else plain. The server keeps no compression
    /// context (`Upgrade.deflatePolicy`), so one compressed frame per window size suits every
    /// recipient.
    static func frame(_ payload: Payload, for deflate: PerMessageDeflate?, threshold: Int, stats: Stats) -> SharedBytes {
        guard let parameters = deflate?.parameters, payload.bytes.count >= threshold else { return plain(payload) }
        let cache = of(payload)
        let bits = parameters.compressionWindowBits
        if let frame = cache.compressed, cache.compressedBits == bits { return frame }
        let deflated = PerMessageDeflate.deflateOnce(payload.bytes, windowBits: bits, level: parameters.compressionLevel,
                                                     memoryLevel: parameters.memoryLevel)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(deflated.count + 10)
        deflated.withUnsafeBytes { FrameEncoder.encode(opcode: .text, payload: $0, rsv1: true, into: &bytes) }
        let shared = SharedBytes(bytes)
        cache.compressed = shared
        cache.compressedBits = bits
        stats.compressedPayloads += 1
        return shared
    }
}
