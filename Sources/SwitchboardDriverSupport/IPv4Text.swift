/// Dotted decimal text of an IPv4 address (`127.0.0.1`), written by hand: glibc's `inet_ntop`
/// formats IPv4 with `sprintf`, 1.7k instructions of every connection's ~114k (callgrind,
/// `scripts/callgrind connect`). For drivers that name a peer's address on every accept.
public enum IPv4Text {
    /// `octets`: the four address bytes, in network order.
    public static func dottedDecimal(_ octets: UnsafeRawBufferPointer) -> String {
        precondition(octets.count == 4, "an IPv4 address has four bytes")
        return String(unsafeUninitializedCapacity: 15) { out in
            var at = 0
            for index in 0..<4 {
                let octet = octets[index]
                if index > 0 {
                    out[at] = UInt8(ascii: ".")
                    at += 1
                }
                if octet >= 100 {
                    out[at] = UInt8(ascii: "0") + octet / 100
                    at += 1
                }
                if octet >= 10 {
                    out[at] = UInt8(ascii: "0") + octet / 10 % 10
                    at += 1
                }
                out[at] = UInt8(ascii: "0") + octet % 10
                at += 1
            }
            return at
        }
    }
}
