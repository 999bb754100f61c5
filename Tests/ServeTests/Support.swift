import Foundation
import Switchboard
import Testing
#if canImport(Glibc)
import Glibc
#endif

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

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

/// Runs a program to completion; its status and standard output.
@discardableResult
func run(_ arguments: [String], stdin: Data? = nil) throws -> (status: Int32, output: Data) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let out = Pipe(), err = Pipe(), input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(stdin) }
    try input.fileHandleForWriting.close()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    if process.terminationStatus != 0 {
        throw TestFailure("\(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): "
            + String(decoding: errors, as: UTF8.self))
    }
    return (process.terminationStatus, data)
}

// MARK: - Sockets

/// A blocking TCP socket to 127.0.0.1 with a receive timeout.
final class Socket {
    let fd: Int32

    init(port: Int, timeoutSeconds: Int = 5) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw TestFailure("cannot connect to 127.0.0.1:\(port)")
        }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw TestFailure("send failed") }
            offset += written
        }
    }

    /// Some bytes; empty at end of stream; throws on timeout.
    func receive() throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 { throw TestFailure("receive timed out or failed (errno \(errno))") }
        return Array(buffer[0..<count])
    }
}

struct HTTPResult {
    var status: Int
    var headers: [String: String]
    var body: String
}

/// One HTTP/1.1 request; the server closes after answering.
func http(_ method: String = "GET", port: Int, path: String) throws -> HTTPResult {
    let socket = try Socket(port: port)
    try socket.send(Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
    var bytes: [UInt8] = []
    while true {
        let chunk = try socket.receive()
        if chunk.isEmpty { break }
        bytes += chunk
    }
    let text = String(decoding: bytes, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { throw TestFailure("no HTTP head in: \(text)") }
    let lines = text[..<split.lowerBound].split(separator: "\r\n")
    let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
    var headers: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return HTTPResult(status: status, headers: headers, body: String(text[split.upperBound...]))
}

/// A minimal WebSocket client: text frames out (masked), text/close frames in.
final class WSClient {
    private let socket: Socket
    private var buffer: [UInt8] = []
    private(set) var closeCode: UInt16?

    init(port: Int, path: String = "/ws") throws {
        socket = try Socket(port: port)
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        try socket.send(Array(request.utf8))
        while true {
            if let end = buffer.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                guard head.hasPrefix("HTTP/1.1 101") else { throw TestFailure("upgrade refused: \(head)") }
                buffer.removeSubrange(..<end.upperBound)
                return
            }
            let chunk = try socket.receive()
            if chunk.isEmpty { throw TestFailure("closed during upgrade") }
            buffer += chunk
        }
    }

    func send(_ event: String, _ data: JSONValue? = nil) throws {
        var members: [(String, JSONValue)] = [("event", .string(event))]
        if let data { members.append(("data", data)) }
        try sendText(JSONValue.object(JSONObject(members)).serialized())
    }

    func sendText(_ text: String) throws {
        let payload = Array(text.utf8)
        var frame: [UInt8] = [0x81]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        let mask: [UInt8] = [1, 2, 3, 4]
        frame += mask
        for (index, byte) in payload.enumerated() { frame.append(byte ^ mask[index % 4]) }
        try socket.send(frame)
    }

    /// The next text message as `{event, data}`; nil once the server closed.
    func receive() throws -> (event: String, data: JSONValue?)? {
        while true {
            if let (opcode, payload) = takeFrame() {
                switch opcode {
                case 0x1:
                    let value = try JSONValue.parse(payload)
                    return (value["event"]?.stringValue ?? "", value["data"])
                case 0x8:
                    closeCode = payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
                    return nil
                default:
                    continue
                }
            }
            let chunk = try socket.receive()
            if chunk.isEmpty { return nil }
            buffer += chunk
        }
    }

    /// The next message whose event is `event`, skipping others.
    func receive(event: String) throws -> JSONValue? {
        while let message = try receive() {
            if message.event == event { return message.data }
        }
        throw TestFailure("closed (\(closeCode.map(String.init) ?? "-")) before a '\(event)' event")
    }

    private func takeFrame() -> (UInt8, [UInt8])? {
        guard buffer.count >= 2 else { return nil }
        var length = Int(buffer[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard buffer.count >= 4 else { return nil }
            length = Int(buffer[2]) << 8 | Int(buffer[3])
            offset = 4
        } else if length == 127 {
            guard buffer.count >= 10 else { return nil }
            length = buffer[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        guard buffer.count >= offset + length else { return nil }
        let opcode = buffer[0] & 0x0F
        let payload = Array(buffer[offset..<(offset + length)])
        buffer.removeSubrange(..<(offset + length))
        return (opcode, payload)
    }
}
