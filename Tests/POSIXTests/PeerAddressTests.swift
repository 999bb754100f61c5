import Testing
import SwitchboardPOSIX
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `PeerAddress.host` writes IPv4 by hand: every value must read as glibc's `inet_ntop` does.
@Suite struct PeerAddressTests {
    func inetNtop(_ address: UInt32) -> String {
        var raw = address.bigEndian
        var text = [CChar](repeating: 0, count: 16)
        _ = inet_ntop(AF_INET, &raw, &text, 16)
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    @Test func ipv4TextIsInetNtops() throws {
        var random = SeededRandom(seed: 6455)  // the same addresses every run
        let edges: [UInt32] = [0, 0xFFFF_FFFF, 0x7F00_0001, 0x0A00_0001, 0xC0A8_6409, 0x6463_0A09, 0x0909_0909, 0x6464_6464]
        let samples = edges + (0..<2000).map { _ in UInt32.random(in: .min ... .max, using: &random) }
        for address in samples {
            let expected = inetNtop(address)
            let peer = try #require(PeerAddress(host: expected, port: 80))
            #expect(peer.host == expected)
            #expect(peer.description == "\(expected):80")
        }
    }

    @Test func ipv6StaysInetNtops() throws {
        for text in ["::1", "fe80::1", "2001:db8::ff00:42:8329", "::ffff:192.0.2.1"] {
            #expect(try #require(PeerAddress(host: text, port: 443)).host == text)
        }
    }
}
