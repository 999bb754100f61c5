// Compiled into the targets that use SwitchboardJSON (json, bus-envelope).
import SwitchboardJSON

/// A canonical decimal JS array index: "0" ... "4294967294".
func isArrayIndex(_ key: [UInt8]) -> UInt64? {
    guard !key.isEmpty, key.count <= 10, key.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
    if key.count > 1 && key[0] == 0x30 { return nil }
    let value = key.reduce(UInt64(0)) { $0 * 10 + UInt64($1 - 0x30) }
    return value <= 4_294_967_294 ? value : nil
}

/// `value` as a JS object holds it; keys are told apart by their UTF-8 bytes, as JS tells them by code units.
func jsNormalized(_ value: JSONValue) -> JSONValue {
    switch value {
    case .array(let elements):
        return .array(elements.map(jsNormalized))
    case .object(let object):
        var order: [[UInt8]] = []
        var keyMember: [[UInt8]: JSONObject.Member] = [:]
        var lastValue: [[UInt8]: JSONValue] = [:]
        for member in object.members {
            let key = keyIdentity(member)
            if lastValue[key] == nil {
                order.append(key)
                keyMember[key] = member
            }
            lastValue[key] = jsNormalized(member.value)
        }
        let indexed = order.compactMap { key in isArrayIndex(key).map { (key, $0) } }.sorted { $0.1 < $1.1 }.map(\.0)
        let named = order.filter { isArrayIndex($0) == nil }
        return .object(JSONObject(members: (indexed + named).map { key in
            var member = keyMember[key]!
            member.value = lastValue[key]!
            return member
        }))
    default:
        return value
    }
}

/// A member's key as JS tells keys apart: its UTF-8, or for an unpaired key 0xFF (never in
/// UTF-8) and its WTF-8.
func keyIdentity(_ member: JSONObject.Member) -> [UInt8] {
    if let unpaired = member.unpairedKey { return [0xFF] + unpaired.wtf8 }
    return Array(member.key.utf8)
}

/// Structural equality with strings and keys compared byte for byte (Swift's `==` on `String`
/// identifies canonically equivalent texts, JS does not).
func identical(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case (.bool(let x), .bool(let y)): return x == y
    case (.number(let x), .number(let y)): return x.literal.utf8.elementsEqual(y.literal.utf8)
    case (.string(let x), .string(let y)): return x.utf8.elementsEqual(y.utf8)
    case (.unpairedString(let x), .unpairedString(let y)): return x == y
    case (.array(let x), .array(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
    case (.object(let x), .object(let y)):
        return x.members.count == y.members.count
            && zip(x.members, y.members).allSatisfy { keyIdentity($0) == keyIdentity($1) && identical($0.value, $1.value) }
    default: return false
    }
}
