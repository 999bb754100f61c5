/// Incremental UTF-8 validator (a byte-class DFA with an ASCII fast path).
///
/// Rejects overlong forms, surrogates (U+D800...U+DFFF) and code points above U+10FFFF, as soon as
/// the offending byte is seen. A sequence may be split across calls; `isComplete` tells whether
/// the input so far ends on a character boundary.
public struct UTF8Validator: Sendable, Hashable {
    // States. `accept` must be 0 and `reject` 1; the others name what the next byte must be.
    @usableFromInline static let accept: UInt8 = 0
    @usableFromInline static let reject: UInt8 = 1
    // 2: one continuation byte left; 3: two left; 4: three left;
    // 5: after E0 (next A0...BF); 6: after ED (next 80...9F);
    // 7: after F0 (next 90...BF); 8: after F4 (next 80...8F).
    static let stateCount = 9
    static let classCount = 12

    /// Byte classes: 0 ASCII, 1 80-8F, 2 90-9F, 3 A0-BF, 4 never valid (C0 C1 F5-FF), 5 C2-DF,
    /// 6 E0, 7 E1-EC EE EF, 8 ED, 9 F0, 10 F1-F3, 11 F4.
    static let byteClass: [UInt8] = (0...255).map { (byte: Int) -> UInt8 in
        switch byte {
        case 0x00...0x7F: return 0
        case 0x80...0x8F: return 1
        case 0x90...0x9F: return 2
        case 0xA0...0xBF: return 3
        case 0xC2...0xDF: return 5
        case 0xE0: return 6
        case 0xED: return 8
        case 0xE1...0xEF: return 7
        case 0xF0: return 9
        case 0xF1...0xF3: return 10
        case 0xF4: return 11
        default: return 4
        }
    }

    /// `transitions[state * classCount + class]` is the next state.
    static let transitions: [UInt8] = {
        let r: UInt8 = 1
        return [
            //  asc 80  90  A0  bad C2  E0  E1  ED  F0  F1  F4
            /*0*/ 0, r, r, r, r, 2, 5, 3, 6, 7, 4, 8,
            /*1*/ r, r, r, r, r, r, r, r, r, r, r, r,
            /*2*/ r, 0, 0, 0, r, r, r, r, r, r, r, r,
            /*3*/ r, 2, 2, 2, r, r, r, r, r, r, r, r,
            /*4*/ r, 3, 3, 3, r, r, r, r, r, r, r, r,
            /*5*/ r, r, r, 2, r, r, r, r, r, r, r, r,
            /*6*/ r, 2, 2, r, r, r, r, r, r, r, r, r,
            /*7*/ r, r, 3, 3, r, r, r, r, r, r, r, r,
            /*8*/ r, 3, r, r, r, r, r, r, r, r, r, r,
        ]
    }()

    @usableFromInline var state: UInt8 = 0

    /// A validator at the start of a text.
    public init() {}

    /// True when every byte so far was valid and the last character is complete.
    @inlinable
    public var isComplete: Bool { state == Self.accept }

    /// True once an invalid byte has been seen (sticky until `reset()`).
    @inlinable
    public var hasFailed: Bool { state == Self.reject }

    /// Starts over at the beginning of a new text.
    @inlinable
    public mutating func reset() { state = Self.accept }

    /// Feeds the next bytes; false as soon as the input so far cannot be a prefix of valid UTF-8.
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard state != Self.reject else { return false }
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress else { return true }
        var current = state
        var index = 0
        Self.byteClass.withUnsafeBufferPointer { classes in
            Self.transitions.withUnsafeBufferPointer { table in
                while index < count {
                    if current == 0 {
                        // ASCII fast path: skip 8 bytes at a time while no high bit is set.
                        while index + 8 <= count,
                              base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                            index += 8
                        }
                        if index == count { break }
                    }
                    let byte = base.load(fromByteOffset: index, as: UInt8.self)
                    current = table[Int(current) * Self.classCount + Int(classes[Int(byte)])]
                    if current == Self.reject { break }
                    index += 1
                }
            }
        }
        state = current
        return current != Self.reject
    }

    /// Feeds the next bytes from any contiguous or non-contiguous collection.
    public mutating func validate(_ bytes: some Collection<UInt8>) -> Bool {
        if let result = bytes.withContiguousStorageIfAvailable({ validate(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        let copy = Array(bytes)
        return copy.withUnsafeBytes { validate($0) }
    }

    /// Whether `bytes` is, on its own, complete and valid UTF-8.
    public static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        var validator = UTF8Validator()
        return validator.validate(bytes) && validator.isComplete
    }
}
