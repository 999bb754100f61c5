/// The fast path for the text clients send (`JSON.stringify` output): one loop over the bytes,
/// with no error reporting. It accepts only what is certainly valid and canonical and gives up
/// (nil) on anything else (whitespace, an unusual escape, a digit-led key, deep nesting, an
/// error), and the caller then takes the exact path (`skipCanonical`, or a parse).
struct CanonicalScan {
    /// Nesting the fast path follows, and keys it remembers along the path.
    static let maxDepth = 16
    static let maxKeys = 32

    /// The end offset of the canonical object starting at `start` (a `{`), nesting at most
    /// `depthLimit` containers deep; nil if the fast path cannot tell.
    /// With `numbers: .javascript` it gives up on any number but an integer of at most 15 digits
    /// (not `-0`): those are the ones JS certainly writes as they are.
    static func object(_ base: UnsafeRawPointer, from start: Int, count: Int, depthLimit: Int,
                       numbers: JSONNumberStyle = .exact) -> Int? {
        guard depthLimit > maxDepth else { return nil }
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * maxKeys + maxDepth + 1) { scratch in
            var scan = CanonicalScan(base: base, count: count, i: start, scratch: scratch.baseAddress!,
                                     plainIntegersOnly: numbers == .javascript)
            return scan.run()
        }
    }

    let base: UnsafeRawPointer
    let count: Int
    /// The read position.
    var i: Int
    /// Keys seen along the path, as (start, end) pairs; where each open object's keys begin.
    let keys: UnsafeMutablePointer<Int>
    let firstKeyOfLevel: UnsafeMutablePointer<Int>
    var keyCount = 0
    /// Bit d: the container at depth d is an object (else an array).
    var objects: UInt32 = 0
    var depth = 0
    /// Accept only numbers that every JS engine writes back as they are (`JSONNumberStyle.javascript`).
    let plainIntegersOnly: Bool

    init(base: UnsafeRawPointer, count: Int, i: Int, scratch: UnsafeMutablePointer<Int>, plainIntegersOnly: Bool) {
        self.base = base
        self.count = count
        self.i = i
        self.plainIntegersOnly = plainIntegersOnly
        self.keys = scratch
        self.firstKeyOfLevel = scratch + 2 * CanonicalScan.maxKeys
    }

    @inline(__always) func at(_ offset: Int) -> UInt8 { base.load(fromByteOffset: offset, as: UInt8.self) }

    mutating func run() -> Int? {
        while true {
            // A value at `i`.
            guard i < count else { return nil }
            switch at(i) {
            case UInt8(ascii: "\""):
                guard string() else { return nil }
            case UInt8(ascii: "{"):
                guard open(object: true) else { return nil }
                if at(i) == UInt8(ascii: "}") {
                    i += 1
                    depth -= 1
                    break
                }
                guard key() else { return nil }  // the first member
                continue
            case UInt8(ascii: "["):
                guard open(object: false) else { return nil }
                if at(i) == UInt8(ascii: "]") {
                    i += 1
                    depth -= 1
                    break
                }
                continue  // the first element
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard number() else { return nil }
            case UInt8(ascii: "t"): guard word("true") else { return nil }
            case UInt8(ascii: "f"): guard word("false") else { return nil }
            case UInt8(ascii: "n"): guard word("null") else { return nil }
            default:
                return nil
            }
            // After a value: `,` then the next member or element, or close containers.
            while true {
                if depth == 0 { return i }
                guard i < count else { return nil }
                let byte = at(i)
                i += 1
                let inObject = objects & (1 << depth) != 0
                if byte == UInt8(ascii: ",") {
                    if inObject {
                        guard key() else { return nil }
                    }
                    break
                }
                guard byte == (inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) else { return nil }
                if inObject { keyCount = firstKeyOfLevel[depth] }
                depth -= 1
            }
        }
    }

    /// Steps into the container whose bracket is at `i`; false if too deep or at the end.
    @inline(__always) mutating func open(object: Bool) -> Bool {
        guard depth < CanonicalScan.maxDepth else { return false }
        depth += 1
        i += 1
        if object {
            objects |= 1 << depth
            firstKeyOfLevel[depth] = keyCount
        } else {
            objects &= ~(1 << depth)
        }
        return i < count
    }

    /// Steps over the string whose opening quote is at `i`; false if the fast path gives up.
    @inline(__always) mutating func string() -> Bool {
        i += 1
        while true {
            let stop = JSONParser.firstSpecialByte(base, from: i, count: count, orNonASCII: true)
            guard stop < count else { return false }
            let byte = at(stop)
            if byte == UInt8(ascii: "\"") {
                i = stop + 1
                return true
            }
            if byte >= 0x80 {
                let length = JSONParser.utf8SequenceLength(base + stop, available: count - stop)
                guard length > 0 else { return false }
                i = stop + length
                continue
            }
            guard byte == UInt8(ascii: "\\"), stop + 1 < count else { return false }  // a control byte
            switch at(stop + 1) {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                 UInt8(ascii: "r"), UInt8(ascii: "t"):
                i = stop + 2
            default:
                return false  // \u and \/: the exact path decides
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` at `i`.
    @inline(__always) mutating func number() -> Bool {
        if at(i) == UInt8(ascii: "-") { i += 1 }
        guard i < count else { return false }
        if at(i) == UInt8(ascii: "0") {
            // `-0` is written `0` by JS.
            if plainIntegersOnly && at(i - 1) == UInt8(ascii: "-") { return false }
            i += 1
        } else {
            let start = i
            guard digits() else { return false }
            if plainIntegersOnly && i - start > 15 { return false }  // maybe beyond 2^53
        }
        if plainIntegersOnly, i < count, at(i) == UInt8(ascii: ".") || at(i) | 0x20 == UInt8(ascii: "e") {
            return false  // a fraction or an exponent: the exact path compares with the JS text
        }
        if i < count && at(i) == UInt8(ascii: ".") {
            i += 1
            guard digits() else { return false }
        }
        if i < count && at(i) | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < count && (at(i) == UInt8(ascii: "+") || at(i) == UInt8(ascii: "-")) { i += 1 }
            guard digits() else { return false }
        }
        return true
    }

    /// One or more digits at `i`.
    @inline(__always) mutating func digits() -> Bool {
        guard i < count, at(i) &- UInt8(ascii: "0") < 10 else { return false }
        // Eight at a time while all eight are digits (timestamps and ids are long).
        while i &+ 8 <= count {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let high = word & 0xF0F0_F0F0_F0F0_F0F0
            let carried = (word &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0
            guard high == 0x3030_3030_3030_3030 && carried == 0x3030_3030_3030_3030 else { break }
            i &+= 8
        }
        while i < count && at(i) &- UInt8(ascii: "0") < 10 { i += 1 }
        return true
    }

    @inline(__always) mutating func word(_ text: StaticString) -> Bool {
        let length = text.utf8CodeUnitCount
        guard i + length <= count else { return false }
        for offset in 0..<length where at(i + offset) != text.utf8Start[offset] { return false }
        i += length
        return true
    }

    /// A key at `i` of the object at `depth`, and its colon: no array index (not even a
    /// digit-led key), no duplicate in this object.
    @inline(__always) mutating func key() -> Bool {
        guard i < count, at(i) == UInt8(ascii: "\"") else { return false }
        let keyStart = i + 1
        guard string() else { return false }
        let keyEnd = i - 1
        let length = keyEnd - keyStart
        if length > 0, at(keyStart) &- UInt8(ascii: "0") < 10 { return false }
        guard keyCount < CanonicalScan.maxKeys else { return false }
        var index = firstKeyOfLevel[depth]
        while index < keyCount {
            let otherStart = keys[2 &* index]
            if keys[2 &* index &+ 1] &- otherStart == length && JSONParser.sameBytes(base, otherStart, keyStart, length) {
                return false
            }
            index &+= 1
        }
        keys[2 &* keyCount] = keyStart
        keys[2 &* keyCount &+ 1] = keyEnd
        keyCount &+= 1
        guard i < count, at(i) == UInt8(ascii: ":") else { return false }
        i += 1
        return true
    }
}
