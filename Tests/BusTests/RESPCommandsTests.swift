@testable import SwitchboardBus
import Testing

/// The history store writes its append command argument by argument (`begin`, `argument`):
/// the bytes must be those of the whole-command form, whose RESP Redis is known to accept.
@Suite struct RESPCommandsTests {
    @Test func argumentByArgumentWritesTheSameBytesAsAWholeCommand() {
        for (counter, size, room) in [(UInt64(0), UInt64(0), ""), (9, 100, "lobby"), (0xABCDEF, 1 << 40, "ü r")] {
            var whole = RESPCommands()
            whole.command([Array("EVALSHA".utf8), Array("ab12".utf8), Array(("sb:meta:" + room).utf8),
                           Array(("e0" + String(counter, radix: 16)).utf8), Array(String(size).utf8), [], [0, 13, 10, 255]])
            var parts = RESPCommands()
            parts.begin(7)
            parts.argument("EVALSHA".utf8)
            parts.argument("ab12".utf8)
            parts.argument("sb:meta:".utf8, room.utf8)
            parts.argument("e0".utf8, hex: counter)
            parts.argument(decimal: size)
            parts.argument([UInt8]())
            parts.argument([0, 13, 10, 255] as [UInt8])
            #expect(parts.bytes == whole.bytes, "\(String(decoding: parts.bytes, as: UTF8.self))")
        }
    }
}
