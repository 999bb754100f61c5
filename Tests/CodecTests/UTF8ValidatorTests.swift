import TestSupport
import Testing
import SwitchboardCodec

@Suite struct UTF8ValidatorTests {
    static let valid: [[UInt8]] = [
        [], bytes("Hello-µ@ßöäüàá-UTF-8!!"),
        [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5],  // κόσμε
        [0x00], [0x7F], [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF],
        [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBD], [0xEF, 0xBF, 0xBE], [0xEF, 0xBF, 0xBF],
        [0xF0, 0x90, 0x80, 0x80], [0xF1, 0x80, 0x80, 0x80], [0xF3, 0xBF, 0xBF, 0xBF], [0xF4, 0x8F, 0xBF, 0xBF],
        bytes("ASCII run longer than eight bytes, then é, then more ASCII"),
    ]

    static let invalid: [[UInt8]] = [
        [0x80], [0xBF], [0x80, 0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xC0, 0xAF],  // stray and overlong 2-byte
        [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF], [0xE0, 0x80, 0xAF],  // overlong 3-byte
        [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF], [0xF0, 0x80, 0x80, 0xAF],  // overlong 4-byte
        [0xF8, 0x88, 0x80, 0x80, 0x80], [0xFC, 0x84, 0x80, 0x80, 0x80, 0x80],  // 5 and 6 byte forms
        [0xED, 0xA0, 0x80], [0xED, 0xAD, 0xBF], [0xED, 0xAE, 0x80], [0xED, 0xBF, 0xBF],  // surrogates
        [0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80], [0xED, 0xAF, 0xBF, 0xED, 0xBF, 0xBF],  // surrogate pairs
        [0xF4, 0x90, 0x80, 0x80], [0xF7, 0xBF, 0xBF, 0xBF], [0xF5], [0xFE], [0xFF],  // above U+10FFFF
        [0xC2, 0x41], [0xE1, 0x80, 0x41], [0xF1, 0x80, 0x80, 0x41],  // sequence cut by ASCII
        [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64],
        bytes("long ASCII prefix, sixteen+ bytes") + [0xC0],
    ]

    static let incomplete: [[UInt8]] = [[0xC2], [0xE0, 0xA0], [0xE1], [0xF0, 0x90, 0x80], [0xF4, 0x8F, 0xBF], bytes("abc") + [0xE2, 0x82]]

    @Test(arguments: valid)
    func acceptsValid(_ input: [UInt8]) {
        #expect(UTF8Validator.isValid(input))
        // Same verdict at every split point.
        for cut in 0...input.count {
            var validator = UTF8Validator()
            #expect(feed(&validator, input[..<cut]))
            #expect(feed(&validator, input[cut...]))
            #expect(validator.isComplete)
        }
    }

    @Test(arguments: invalid)
    func rejectsInvalid(_ input: [UInt8]) {
        #expect(!UTF8Validator.isValid(input))
        var validator = UTF8Validator()
        let everyByteAccepted = input.map { feed(&validator, [$0]) }.allSatisfy { $0 }
        #expect(!everyByteAccepted)
        #expect(validator.hasFailed)
        #expect(!feed(&validator, bytes("a")), "failure is sticky")
    }

    @Test(arguments: incomplete)
    func incompleteIsNotComplete(_ input: [UInt8]) {
        var validator = UTF8Validator()
        #expect(feed(&validator, input))
        #expect(!validator.isComplete)
        #expect(!validator.hasFailed)
        #expect(!UTF8Validator.isValid(input))
    }

    @Test func failsAtTheOffendingByte() {
        var surrogate = UTF8Validator()
        #expect(feed(&surrogate, [0x61, 0xED]))
        #expect(!feed(&surrogate, [0xA0]))
        var overlong = UTF8Validator()
        #expect(feed(&overlong, [0xE0]))
        #expect(!feed(&overlong, [0x9F]))
        var high = UTF8Validator()
        #expect(feed(&high, [0xF4]))
        #expect(!feed(&high, [0x90]))
        high.reset()
        #expect(feed(&high, bytes("ok")) && high.isComplete)
    }

    @Test func agreesWithTheStandardLibraryOnRandomInput() {
        var random = SeededRandom(seed: 0x5EED_0007)
        let interesting: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                    0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...12, using: &random)
            let input = (0..<length).map { _ in
                Bool.random(using: &random) ? interesting.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
            }
            let expected = String(validating: input, as: UTF8.self) != nil
            #expect(UTF8Validator.isValid(input) == expected, "\(input)")
        }
    }

    @Test func everyScalarIsAccepted() {
        var validator = UTF8Validator()
        var text: [UInt8] = []
        for value in stride(from: 0, through: 0x10FFFF, by: 1) {
            guard let scalar = Unicode.Scalar(UInt32(value)) else { continue }
            text.append(contentsOf: UTF8.encode(scalar)!)
            if text.count > 4096 {
                #expect(feed(&validator, text))
                text.removeAll(keepingCapacity: true)
            }
        }
        #expect(feed(&validator, text))
        #expect(validator.isComplete)
    }
}

/// `validate` through a function, since `#expect` cannot call a mutating method itself.
private func feed(_ validator: inout UTF8Validator, _ input: some Collection<UInt8>) -> Bool {
    validator.validate(input)
}
