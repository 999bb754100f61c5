// fuzz/bus-envelope: BusEnvelope.decode on arbitrary bytes, then encode -> decode.
//
// Invariants:
// - decode never crashes; it fails with `.invalidJSON` exactly when the bytes are not JSON;
// - a decoded envelope has a non-empty event and, unless broadcast, a target;
// - `decode(encoded())` succeeds and gives the envelope back: the same fields, `data` compared as
//   JS holds it (duplicate keys merged, array-index keys first) and strings byte for byte;
// - encoding is stable: the re-decoded envelope encodes to the same bytes and decodes to itself.
//
// Two differences are tolerated unless FUZZ_STRICT_ROUNDTRIP=1 is set (see fuzz/README.md,
// "Findings"): absent `data` comes back as `null`, and an empty `exclude` comes back absent.
#if canImport(Glibc)
import Glibc
#endif
import SwitchboardJSON
import SwitchboardKernel


@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBusEnvelope(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let first: BusEnvelope
    switch BusEnvelope.decode(bytes) {
    case .failure(let error):
        let isJSON = (try? JSONValue.parse(bytes)) != nil
        require((error == .invalidJSON) == !isJSON, "decode failed with \(error), input is\(isJSON ? "" : " not") JSON")
        return 0
    case .success(let envelope):
        first = envelope
    }
    require(!first.event.isEmpty, "decoded an empty event")
    require(first.kind == .broadcast || first.target != nil, "decoded a \(first.kind) envelope without target")
    _ = first.channel

    let encoded = first.encoded()
    require(isWellFormedUTF8(encoded), "encoding is not UTF-8: \(hex(encoded))")
    let second: BusEnvelope
    switch BusEnvelope.decode(encoded) {
    case .failure(let error): invariantFailed("re-decoding failed (\(error)): \(hex(encoded))", file: #fileID, line: #line)
    case .success(let envelope): second = envelope
    }
    var expected = first
    expected.data = first.data.map(jsNormalized)
    requireSame(second, expected, encoded)
    require(second.channel.utf8.elementsEqual(first.channel.utf8), "channel changed: \(first.channel) -> \(second.channel)")

    let again = second.encoded()
    require(again == encoded, "encoding is not stable: \(hex(encoded)) then \(hex(again))")
    switch BusEnvelope.decode(again) {
    case .failure(let error): invariantFailed("third decode failed (\(error))", file: #fileID, line: #line)
    case .success(let third): requireSame(third, second, again)
    }
    return 0
}

/// Field by field, strings byte for byte.
func requireSame(_ actual: BusEnvelope, _ expected: BusEnvelope, _ encoded: [UInt8]) {
    func same(_ a: String?, _ b: String?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (let x?, let y?): return x.utf8.elementsEqual(y.utf8)
        default: return false
        }
    }
    let context = "after encoding to \(String(decoding: encoded.prefix(512), as: UTF8.self))"
    require(same(actual.serverID, expected.serverID), "serverID \(actual.serverID) != \(expected.serverID) \(context)")
    require(actual.kind == expected.kind, "kind \(actual.kind) != \(expected.kind) \(context)")
    require(same(actual.target, expected.target), "target \(String(describing: actual.target)) != \(String(describing: expected.target)) \(context)")
    require(same(actual.event, expected.event), "event \(actual.event) != \(expected.event) \(context)")
    switch (actual.data, expected.data) {
    case (nil, nil): break
    case (let x?, let y?): require(identical(x, y), "data \(x) != \(y) \(context)")
    default: invariantFailed("data \(String(describing: actual.data)) != \(String(describing: expected.data)) \(context)",
                             file: #fileID, line: #line)
    }
    switch (actual.exclude, expected.exclude) {
    case (nil, nil): break
    case (let x?, let y?):
        require(x.count == y.count && zip(x, y).allSatisfy { $0.utf8.elementsEqual($1.utf8) }, "exclude \(x) != \(y) \(context)")
    default: invariantFailed("exclude \(String(describing: actual.exclude)) != \(String(describing: expected.exclude)) \(context)",
                             file: #fileID, line: #line)
    }
}
