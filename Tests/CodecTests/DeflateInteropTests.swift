import Foundation
import TestSupport
import Testing
@testable import SwitchboardCodec

/// Server-to-client interoperability, live: Python's stdlib `zlib` decompresses what the
/// server compressed, with exactly the negotiated window (8 included) and at most 7 output
/// bytes per call, so every reference outside a call must come from the window. Requires
/// `python3` (stdlib only); fails, not skips, without it.
@Suite struct DeflateInteropTests {
    /// argv: <window bits> <keep context 0/1> <file with one hex payload per line>; prints one hex message per line.
    static let script = #"""
        import sys, zlib
        bits, keep, path = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
        decoder = zlib.decompressobj(-bits)
        for line in open(path).read().split():
            if not keep:
                decoder = zlib.decompressobj(-bits)
            data, out = bytes.fromhex(line) + b"\x00\x00\xff\xff", b""
            while True:
                chunk = decoder.decompress(data, 7)
                data = decoder.unconsumed_tail
                out += chunk
                if not data and not chunk:
                    break
            print(out.hex())
        """#

    struct PythonFailure: Error, CustomStringConvertible { let description: String }

    /// Decompresses `payloads` in Python; returns the hex of each message.
    static func pythonInflate(_ payloads: [[UInt8]], bits: Int, keepContext: Bool) throws -> [String] {
        let directory = FileManager.default.temporaryDirectory
        let id = UUID().uuidString
        let scriptURL = directory.appendingPathComponent("switchboard-deflate-\(id).py")
        let dataURL = directory.appendingPathComponent("switchboard-deflate-\(id).txt")
        try script.write(to: scriptURL, atomically: true, encoding: .utf8)
        try payloads.map { hexString($0) }.joined(separator: "\n").write(to: dataURL, atomically: true, encoding: .utf8)
        defer {
            try? FileManager.default.removeItem(at: scriptURL)
            try? FileManager.default.removeItem(at: dataURL)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", scriptURL.path, String(bits), keepContext ? "1" : "0", dataURL.path]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch {
            throw PythonFailure(description: "Deflate interop tests need python3 on PATH: \(error)")
        }
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PythonFailure(description: "python3 exited \(process.terminationStatus): \(String(decoding: stderr, as: UTF8.self))")
        }
        return String(decoding: stdout, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast().map(String.init)
    }

    static func messages(bits: Int) -> [[UInt8]] {
        let window = 1 << bits
        var out: [[UInt8]] = [[], Array("Hello".utf8), sampleText(3000, seed: 1)]
        for index in 0..<3 {
            let block = sampleRandom(window - 6 + index * 4, seed: UInt64(bits * 10 + index))
            out.append(block + block + Array(block.prefix(200)))
        }
        out.append(sampleText(3000, seed: 1))   // repeats an earlier message: uses the context
        return out
    }

    @Test(arguments: 8...15)
    func pythonInflatesWithTheNegotiatedWindow(_ bits: Int) throws {
        let messages = Self.messages(bits: bits)
        for keep in [true, false] {
            var server = PerMessageDeflate(parameters: DeflateParameters(serverNoContextTakeover: !keep, serverMaxWindowBits: bits))
            let payloads = messages.map { server.deflate($0) }
            let decoded = try Self.pythonInflate(payloads, bits: bits, keepContext: keep)
            #expect(decoded == messages.map { hexString($0) }, "\(bits) bits, context \(keep)")
        }
        // Shared payloads decode with or without the receiver keeping its window.
        let shared = messages.map { PerMessageDeflate.deflateOnce($0, windowBits: bits) }
        #expect(try Self.pythonInflate(shared, bits: bits, keepContext: true) == messages.map { hexString($0) })
        #expect(try Self.pythonInflate(shared, bits: bits, keepContext: false) == messages.map { hexString($0) })
    }
}
