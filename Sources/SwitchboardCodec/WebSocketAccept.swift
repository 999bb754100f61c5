import SwitchboardCrypto

/// The GUID that RFC 6455 section 1.3 appends to the client's key.
let webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/// The length of a `Sec-WebSocket-Accept` value: base64 of a 20-byte SHA-1 digest.
let webSocketAcceptCount = Base64.encodedCount(SHA1.byteCount)

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
/// SHA-1 and base64 come from SwitchboardCrypto, the package's one route to both.
public func webSocketAccept(key: String) -> String {
    String(unsafeUninitializedCapacity: webSocketAcceptCount) { out in
        writeWebSocketAccept(key: key, into: UnsafeMutableRawBufferPointer(out))
    }
}

/// Writes the `Sec-WebSocket-Accept` value for `key` at the start of `out` (at least
/// `webSocketAcceptCount` bytes) and returns its length. A key of the valid length (24) is
/// hashed from a buffer on the stack: nothing is allocated.
@discardableResult
func writeWebSocketAccept(key: String, into out: UnsafeMutableRawBufferPointer) -> Int {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: SHA1.byteCount) { digest in
        let digest = UnsafeMutableRawBufferPointer(digest)
        var key = key
        let hashed: Void? = key.withUTF8 { keyBytes in
            var guid = webSocketGUID
            return guid.withUTF8 { guidBytes in
                let total = keyBytes.count + guidBytes.count
                guard total <= 96 else { return nil }
                return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: total) { text in
                    let text = UnsafeMutableRawBufferPointer(text)
                    text.copyMemory(from: UnsafeRawBufferPointer(keyBytes))
                    UnsafeMutableRawBufferPointer(rebasing: text[keyBytes.count...]).copyMemory(from: UnsafeRawBufferPointer(guidBytes))
                    SHA1.hash(UnsafeRawBufferPointer(text), into: digest)
                }
            }
        }
        if hashed == nil {  // an oversized key: only through the public function, never a valid handshake
            Array((key + webSocketGUID).utf8).withUnsafeBytes { SHA1.hash($0, into: digest) }
        }
        return Base64.encode(UnsafeRawBufferPointer(digest), into: out)
    }
}
