import CZlib
import Synchronization

// The zlib streams behind `PerMessageDeflate`: raw DEFLATE (negative windowBits), one message
// per call, the RFC 7692 section 7.2.1 trailer handled here. Each z_stream lives at a fixed heap
// address (zlib keeps a back pointer to it) and is freed in `deinit`.

/// A zeroed z_stream at a fixed heap address, set up by `initialize` (`inflateInit2_` or
/// `deflateInit2_`); a setup that fails is a bug or an exhausted heap, so it stops the process.
private func makeStream(_ name: String, _ initialize: (UnsafeMutablePointer<z_stream>) -> Int32) -> UnsafeMutablePointer<z_stream> {
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    let status = initialize(stream)
    precondition(status == Z_OK, "\(name) failed: \(status)")
    return stream
}

/// Ends a stream made by `makeStream` with `end` (`inflateEnd` or `deflateEnd`) and frees it.
private func freeStream(_ stream: UnsafeMutablePointer<z_stream>, end: (UnsafeMutablePointer<z_stream>) -> Int32) {
    _ = end(stream)
    stream.deinitialize(count: 1)
    stream.deallocate()
}

/// `output` moved into a new array of `capacity` bytes that `fill` writes on through `stream`.
/// When `fill` starts, `next_out` points just past the kept bytes with `avail_out` 0 (`fill`
/// hands zlib room with `giveRoom`); the array ends where `next_out` stands when it returns.
@inline(__always)
private func extend(_ output: [UInt8], to capacity: Int, through stream: UnsafeMutablePointer<z_stream>,
                    _ fill: (_ base: UnsafeMutablePointer<UInt8>) -> Void) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
        let base = buffer.baseAddress!
        let kept = output.count
        if kept > 0 { output.withUnsafeBufferPointer { base.initialize(from: $0.baseAddress!, count: kept) } }
        stream.pointee.next_out = base + kept
        stream.pointee.avail_out = 0
        fill(base)
        count = stream.pointee.next_out - base
    }
}

/// Inside `extend`'s `fill`: when zlib has no room left, hands it the rest of the array (at most
/// `UInt32.max` bytes at a time). False when the array is full: a larger one is needed.
@inline(__always)
private func giveRoom(_ stream: UnsafeMutablePointer<z_stream>, base: UnsafeMutablePointer<UInt8>, capacity: Int) -> Bool {
    if stream.pointee.avail_out == 0 {
        let used = stream.pointee.next_out - base
        if used == capacity { return false }
        stream.pointee.avail_out = UInt32(min(capacity - used, Int(UInt32.max)))
    }
    return true
}

/// What one inflate call did, for the caller's bookkeeping and for tests.
struct InflateOutcome {
    var result: InflateResult
    /// The compressed message ended with a BFINAL block: the stream must be reset.
    var streamEnded: Bool
    /// The largest output buffer allocated during the call, in bytes.
    var peakCapacity: Int
    /// Compressed bytes (excluding the trailer) not consumed when the call stopped.
    var unconsumedInput: Int
}

/// A raw-DEFLATE decompressor. Not thread-safe: one user at a time (the pool hands it out exclusively).
final class ZlibInflater: @unchecked Sendable {
    let stream: UnsafeMutablePointer<z_stream>
    /// The window used, 9...15.
    let windowBits: Int

    init(windowBits: Int) {
        precondition((9...15).contains(windowBits))
        stream = makeStream("inflateInit2") { inflateInit2_($0, -Int32(windowBits), zlibVersion(), Int32(MemoryLayout<z_stream>.size)) }
        self.windowBits = windowBits
    }

    deinit { freeStream(stream, end: inflateEnd) }

    /// Forgets the window (the next message starts with no context).
    func reset() { inflateReset(stream) }

    /// Inflates one message: `input` then the 00 00 FF FF trailer. Output beyond `maxOutput`
    /// bytes is never produced: the call stops with `.tooBig` once `maxOutput + 1` bytes exist.
    func inflate(_ input: UnsafeRawBufferPointer, maxOutput: Int) -> InflateOutcome {
        precondition(maxOutput >= 0)
        let limit = maxOutput == Int.max ? Int.max : maxOutput + 1
        var trailer: (UInt8, UInt8, UInt8, UInt8) = (0x00, 0x00, 0xFF, 0xFF)
        return withUnsafeMutableBytes(of: &trailer) { trailerBytes in
            let strm = stream
            var inputBase = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: UInt8.self)) }
            var inputLeft = input.count
            var trailerFed = false
            strm.pointee.avail_in = 0

            enum Step { case needSpace, finished(streamEnd: Bool), invalid }
            var step = Step.needSpace
            var capacity = input.count >= limit / 4 ? limit : min(limit, max(512, input.count * 4))
            var peak = 0
            var output: [UInt8] = []
            while true {
                peak = max(peak, capacity)
                output = extend(output, to: capacity, through: strm) { base in
                    step = .needSpace
                    while true {
                        if strm.pointee.avail_in == 0 {
                            if inputLeft > 0 {
                                let piece = min(inputLeft, Int(UInt32.max))
                                strm.pointee.next_in = inputBase
                                strm.pointee.avail_in = UInt32(piece)
                                inputBase = inputBase.map { $0 + piece }
                                inputLeft -= piece
                            } else if !trailerFed {
                                strm.pointee.next_in = trailerBytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
                                strm.pointee.avail_in = 4
                                trailerFed = true
                            }
                        }
                        if !giveRoom(strm, base: base, capacity: capacity) { step = .needSpace; break }
                        let status = CZlib.inflate(strm, Z_NO_FLUSH)
                        if status == Z_STREAM_END {
                            // A block with BFINAL set ended the stream (RFC 7692 section 7.2.3.4).
                            // Compressed bytes after it start a new stream (the RFC's example has
                            // an empty stored block there); what is left of the trailer is dropped.
                            if trailerFed || Int(strm.pointee.avail_in) + inputLeft == 0 {
                                step = .finished(streamEnd: true)
                                break
                            }
                            inflateReset(strm)
                            continue
                        }
                        if status == Z_OK || status == Z_BUF_ERROR {
                            if trailerFed && strm.pointee.avail_in == 0 && strm.pointee.avail_out > 0 {
                                step = .finished(streamEnd: false)
                                break
                            }
                            if status == Z_BUF_ERROR && strm.pointee.avail_in > 0 && strm.pointee.avail_out > 0 {
                                step = .invalid
                                break
                            }
                            continue
                        }
                        if status == Z_MEM_ERROR { fatalError("zlib inflate: out of memory") }
                        step = .invalid  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR
                        break
                    }
                }
                guard case .needSpace = step else { break }
                if output.count >= limit { break }
                capacity = capacity >= limit / 2 ? limit : min(limit, max(capacity * 2, capacity + 16384))
            }
            let unconsumed = Int(trailerFed ? 0 : strm.pointee.avail_in) + inputLeft
            switch step {
            case .needSpace:
                return InflateOutcome(result: .tooBig, streamEnded: false, peakCapacity: peak, unconsumedInput: unconsumed)
            case .invalid:
                return InflateOutcome(result: .invalid, streamEnded: false, peakCapacity: peak, unconsumedInput: unconsumed)
            case .finished(let streamEnd):
                if output.count > maxOutput {
                    return InflateOutcome(result: .tooBig, streamEnded: streamEnd, peakCapacity: peak, unconsumedInput: unconsumed)
                }
                return InflateOutcome(result: .ok(output), streamEnded: streamEnd, peakCapacity: peak, unconsumedInput: unconsumed)
            }
        }
    }
}

/// A raw-DEFLATE compressor. Not thread-safe: one user at a time (the pool hands it out exclusively).
final class ZlibDeflater: @unchecked Sendable {
    let stream: UnsafeMutablePointer<z_stream>
    /// The zlib window, 9...15 (zlib cannot compress raw DEFLATE with 8).
    let windowBits: Int
    let level: Int
    let memoryLevel: Int

    init(windowBits: Int, level: Int, memoryLevel: Int) {
        precondition((9...15).contains(windowBits) && (0...9).contains(level) && (1...9).contains(memoryLevel))
        stream = makeStream("deflateInit2") {
            deflateInit2_($0, Int32(level), Z_DEFLATED, -Int32(windowBits), Int32(memoryLevel),
                          Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        }
        self.windowBits = windowBits
        self.level = level
        self.memoryLevel = memoryLevel
    }

    deinit { freeStream(stream, end: deflateEnd) }

    /// Forgets the window (the next message references nothing before it).
    func reset() { deflateReset(stream) }

    /// Compresses one message, ending it with a sync flush whose 00 00 FF FF tail is removed
    /// (RFC 7692 section 7.2.1). The stream keeps its window unless `reset()` is called.
    func deflate(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        // An empty stored block (RFC 7692 section 7.2.3.6). zlib would emit nothing for a second
        // sync flush in a row; the stream is byte-aligned after every message, so this is valid.
        if input.count == 0 { return [0x00] }
        let strm = stream
        var inputBase = input.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: UInt8.self)) }
        var inputLeft = input.count
        var lastPieceFed = false
        strm.pointee.avail_in = 0
        var done = false
        // deflateBound covers Z_FINISH; a sync flush adds at most an empty stored block and a partial byte.
        var capacity = Int(deflateBound(strm, uLong(min(input.count, Int(UInt32.max))))) + 16
        var output: [UInt8] = []
        while !done {
            output = extend(output, to: capacity, through: strm) { base in
                while true {
                    if strm.pointee.avail_in == 0 && !lastPieceFed {
                        let piece = min(inputLeft, Int(UInt32.max))
                        strm.pointee.next_in = inputBase
                        strm.pointee.avail_in = UInt32(piece)
                        inputBase = inputBase.map { $0 + piece }
                        inputLeft -= piece
                        lastPieceFed = inputLeft == 0
                    }
                    if !giveRoom(strm, base: base, capacity: capacity) { break }
                    let status = CZlib.deflate(strm, lastPieceFed ? Z_SYNC_FLUSH : Z_NO_FLUSH)
                    precondition(status == Z_OK || status == Z_BUF_ERROR, "deflate failed: \(status)")
                    if lastPieceFed && strm.pointee.avail_in == 0 && strm.pointee.avail_out > 0 {
                        done = true
                        break
                    }
                }
            }
            capacity = capacity >= Int.max / 2 ? Int.max : max(capacity * 2, capacity + 4096)
        }
        precondition(output.count >= 4 && output[output.count - 4] == 0 && output[output.count - 3] == 0
                     && output[output.count - 2] == 0xFF && output[output.count - 1] == 0xFF,
                     "a sync flush ends with 00 00 FF FF")
        output.removeLast(4)
        return output
    }
}

/// Idle zlib streams shared by every connection that negotiated no context takeover in a
/// direction: such a stream is borrowed for one message, reset, and returned, so those
/// connections hold no zlib memory of their own. A few idle streams are kept per kind.
enum ZlibPool {
    static let idleLimit = 8
    static let inflaters = Mutex<[ZlibInflater]>([])
    static let deflaters = Mutex<[ZlibDeflater]>([])

    /// Runs `body` with a reset 15-bit inflater that no one else uses meanwhile.
    static func withInflater<R>(_ body: (ZlibInflater) -> R) -> R {
        let inflater = inflaters.withLock { $0.popLast() } ?? ZlibInflater(windowBits: 15)
        let result = body(inflater)
        inflater.reset()
        inflaters.withLock { idle in
            if idle.count < idleLimit { idle.append(inflater) }
        }
        return result
    }

    /// Runs `body` with a fresh deflater of these settings that no one else uses meanwhile.
    static func withDeflater<R>(windowBits: Int, level: Int, memoryLevel: Int, _ body: (ZlibDeflater) -> R) -> R {
        let pooled = deflaters.withLock { idle -> ZlibDeflater? in
            guard let index = idle.lastIndex(where: {
                $0.windowBits == windowBits && $0.level == level && $0.memoryLevel == memoryLevel
            }) else { return nil }
            return idle.remove(at: index)
        }
        let deflater = pooled ?? ZlibDeflater(windowBits: windowBits, level: level, memoryLevel: memoryLevel)
        let result = body(deflater)
        deflater.reset()
        deflaters.withLock { idle in
            if idle.count >= idleLimit { idle.removeFirst() }
            idle.append(deflater)
        }
        return result
    }
}
