import Foundation
import Switchboard
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The package root (Tests/ServeTests/Support.swift -> ../..).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// A fresh directory under /tmp, removed with `remove()`.
struct TempDir {
    let path: String

    init() throws {
        var template = Array("/tmp/serve-tests-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        path = String(cString: made)
    }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Runs `arguments` through `/usr/bin/env`; its status and standard output.
/// - Throws: when the program fails (with its standard error).
@discardableResult
func run(_ arguments: [String], stdin: Data? = nil) throws -> (status: Int32, output: Data) {
    let result = try runProgram("/usr/bin/env", arguments, stdin: stdin.map { [UInt8]($0) })
    if result.status != 0 {
        throw TestFailure("\(arguments.joined(separator: " ")) failed (\(result.status)): \(result.stderr)")
    }
    return (result.status, Data(result.stdoutBytes))
}

/// One HTTP/1.1 request; the server closes after answering.
func http(_ method: String = "GET", port: Int, path: String) throws -> HTTPReply {
    try rawHTTP(port: UInt16(port), request: "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                timeout: 5)
}

/// The shared client as these tests use it: messages as `{event, data}`, waits of 5 s.
extension WSClient {
    convenience init(port: Int) throws {
        try self.init(port: UInt16(port), timeout: 5)
    }

    /// The next text message; nil once the server closed (its code in `closeCode`).
    func nextMessage() throws -> Message? {
        while true {
            let frame: Frame
            do {
                frame = try receive(timeout: 5)
            } catch where endOfStream {
                return nil
            }
            switch frame {
            case .text(let text):
                let value = try JSONValue.parse(text)
                return Message(event: value["event"]?.stringValue ?? "", data: value["data"], raw: text)
            case .close:
                return nil
            default:
                continue
            }
        }
    }

    /// The next message whose event is `event`, skipping others.
    func receive(event: String) throws -> JSONValue? {
        while let message = try nextMessage() {
            if message.event == event { return message.data }
        }
        throw TestFailure("closed (\(closeCode.map(String.init) ?? "-")) before a '\(event)' event")
    }
}
