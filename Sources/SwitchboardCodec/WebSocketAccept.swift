import COpenSSL

/// The GUID that RFC 6455 section 1.3 appends to the client's key.
let webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
public func webSocketAccept(key: String) -> String {
    let input = Array((key + webSocketGUID).utf8)
    var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
    input.withUnsafeBufferPointer { source in
        digest.withUnsafeMutableBufferPointer { out in
            _ = SHA1(source.baseAddress, source.count, out.baseAddress)
        }
    }
    return Base64.encode(digest)
}
