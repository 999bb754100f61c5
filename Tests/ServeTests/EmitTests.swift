import Switchboard
import SwitchboardBus
import Testing
@testable import SwitchboardServe

@Suite struct EmitArgumentTests {
    @Test func aRoomEnvelope() throws {
        let command = try EmitCommand.parse(["--redis", "redis://127.0.0.1:6380/2", "--type", "room", "--target", "lobby",
                                             "--event", "news", "--data", #"{"a":1}"#, "--exclude", "x, y,"])
        #expect(command.redis.nodes.map(\.description) == ["127.0.0.1:6380"])
        #expect(command.redis.database == 2)
        #expect(command.envelope.channel == "ws:room:lobby")
        #expect(String(decoding: command.envelope.encoded(), as: UTF8.self)
            == #"{"serverId":"emitter","type":"room","target":"lobby","event":"news","data":{"a":1},"exclude":["x","y"]}"#)
    }

    @Test func everyType() throws {
        let base = ["--redis=redis://h", "--event=e", "--data=null"]
        let broadcast = try EmitCommand.parse(base + ["--type=broadcast", "--exclude=a"])
        #expect(broadcast.envelope.channel == "ws:broadcast")
        #expect(String(decoding: broadcast.envelope.encoded(), as: UTF8.self)
            == #"{"serverId":"emitter","type":"broadcast","event":"e","data":null,"exclude":["a"]}"#)
        #expect(try EmitCommand.parse(base + ["--type=user", "--target=u1"]).envelope.channel == "ws:user:u1")
        #expect(try EmitCommand.parse(base + ["--type=client", "--target=c1"]).envelope.channel == "ws:client:c1")
        let decoded = try BusEnvelope.decode(EmitCommand.parse(base + ["--type=user", "--target=u1"]).envelope.encoded()).get()
        #expect(decoded.serverID == "emitter" && decoded.kind == .user && decoded.target == "u1" && decoded.data == .null)
    }

    @Test(arguments: [
        ([], "switchboard emit: --redis URL is required (redis://host:port)"),
        (["--redis", "http://x", "--type", "room"], "Invalid redis connection! (--redis: unsupported scheme 'http://'; expected redis://)"),
        (["--redis", "", "--type", "room"], "Invalid redis connection! (--redis: the Redis URL is empty)"),
        (["--redis", "redis://h"], "switchboard emit: --type is required (client, user, room or broadcast)"),
        (["--redis", "redis://h", "--type", "rooms"], "switchboard emit: --type must be client, user, room or broadcast, not 'rooms'"),
        (["--redis", "redis://h", "--type", "broadcast", "--target", "x", "--event", "e", "--data", "1"],
         "switchboard emit: --target is not used with --type broadcast"),
        (["--redis", "redis://h", "--type", "user", "--event", "e", "--data", "1"],
         "switchboard emit: --type user needs --target (the user id)"),
        (["--redis", "redis://h", "--type", "room", "--target", "", "--event", "e", "--data", "1"],
         "switchboard emit: --type room needs --target (the room)"),
        (["--redis", "redis://h", "--type", "room", "--target", "r", "--data", "1"],
         "switchboard emit: --event is required (a non-empty event name)"),
        (["--redis", "redis://h", "--type", "room", "--target", "r", "--event", "e"],
         #"switchboard emit: --data is required (a JSON value, e.g. '{"text":"hi"}' or 'null')"#),
        (["--redis", "redis://h", "--type", "client", "--target", "c", "--event", "e", "--data", "1", "--exclude", "a"],
         "switchboard emit: --exclude is accepted for --type room and broadcast only"),
        (["--redis", "redis://h", "--tpye", "room"], "switchboard emit: Unknown option '--tpye'. Did you mean '--type'?"),
        (["--redis", "redis://h", "--redis", "redis://g"], "switchboard emit: --redis given twice"),
        (["room"], "switchboard emit: Unexpected argument 'room'"),
        (["--redis"], "switchboard emit: Missing value for '--redis <url>'"),
    ])
    func badArguments(_ arguments: [String], _ message: String) {
        #expect(throws: UsageError(message)) { try EmitCommand.parse(arguments) }
    }

    @Test func invalidJSONIsNamed() {
        do {
            _ = try EmitCommand.parse(["--redis", "redis://h", "--type", "room", "--target", "r", "--event", "e", "--data", "{nope"])
            Issue.record("expected an error")
        } catch {
            #expect(error.message.hasPrefix("switchboard emit: --data is not valid JSON: "))
        }
    }

    @Test func anUnreachableRedisIsAClearErrorAndExit1() throws {
        let arguments = ["--redis", "redis://127.0.0.1:1", "--type", "room", "--target", "r", "--event", "e", "--data", "{}"]
        let command = try EmitCommand.parse(arguments)
        do throws(BusError) {
            _ = try command.publish(timeout: .seconds(2))
            Issue.record("publishing to a closed port succeeded")
        } catch {
            #expect(error.message.hasPrefix("cannot connect to Redis at 127.0.0.1:1"))
        }
        #expect(EmitCommand.main(arguments) == 1)
        #expect(EmitCommand.main(["--type", "x"]) == 1)
    }
}

@Suite struct SpecCommandTests {
    @Test func validateTheRepositorySpec() {
        var out = "", err = ""
        let status = SpecCommand.main(["validate", "--root", repoRoot], out: { out += $0 }, err: { err += $0 })
        #expect(status == 0)
        #expect(out.hasPrefix("spec/protocol.yaml: ok ("))
        #expect(SpecCommand.main(["table", "--root", repoRoot], out: { out = $0 }, err: { err += $0 }) == 0)
        #expect(out.contains("unauthorized"))
        #expect(SpecCommand.main(["check", "--root", repoRoot], out: { out = $0 }, err: { err += $0 }) == 0)
    }

    @Test func errorsExit1() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let spec = try dir.write("bad.yaml", "protocol: 5\n")
        var err = ""
        #expect(SpecCommand.main(["validate", "--spec", spec], out: { _ in }, err: { err += $0 }) == 1)
        #expect(err.contains("bad.yaml:1: error:"))
        #expect(SpecCommand.main(["frobnicate"], out: { _ in }, err: { _ in }) == 1)
        #expect(SpecCommand.main(["validate", "--spek", "x"], out: { _ in }, err: { _ in }) == 1)
        #expect(SpecCommand.main(["validate", "--spec", dir.path + "/none.yaml"], out: { _ in }, err: { _ in }) == 1)
    }
}
