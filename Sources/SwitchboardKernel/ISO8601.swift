/// `Date.prototype.toISOString()` for a Unix time in milliseconds: `2026-11-25T22:10:00.123Z`.
public func iso8601(unixMilliseconds ms: Int64) -> String {
    let days = floorDiv(ms, 86_400_000)
    let msOfDay = ms - days * 86_400_000
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468
    let era = floorDiv(z, 146_097)
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    let hour = msOfDay / 3_600_000
    let minute = msOfDay / 60_000 % 60
    let second = msOfDay / 1000 % 60
    let milli = msOfDay % 1000
    // Written digit by digit into the string's own storage: one allocation, no interpolation
    // (this runs once per connection, for the `connected` message).
    // Years outside 0...9999 take JavaScript's expanded form: a sign and six digits.
    let wideYear = year < 0 || year > 9999
    let count = (wideYear ? 7 : 4) + 20
    return String(unsafeUninitializedCapacity: count) { out in
        var at = 0
        func put(_ value: Int64, _ width: Int) {
            var value = value
            for place in stride(from: at + width - 1, through: at, by: -1) {
                out[place] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
            at += width
        }
        func put(_ byte: Unicode.Scalar) {
            out[at] = UInt8(ascii: byte)
            at += 1
        }
        if wideYear {
            put(year < 0 ? "-" : "+")
            put(abs(year), 6)
        } else {
            put(year, 4)
        }
        put("-"); put(month, 2); put("-"); put(day, 2); put("T")
        put(hour, 2); put(":"); put(minute, 2); put(":"); put(second, 2); put("."); put(milli, 3); put("Z")
        return at
    }
}

private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
