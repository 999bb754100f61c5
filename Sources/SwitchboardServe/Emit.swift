import Switchboard
import SwitchboardBus

/// A command line that cannot be run; `message` is what to print.
public struct UsageError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Reads `--name value` and `--name=value` flags; every flag at most once.
struct FlagReader {
    private var rest: ArraySlice<String>
    private var seen: Set<String> = []
    let command: String

    init(_ arguments: [String], command: String) {
        rest = arguments[...]
        self.command = command
    }

    /// The next flag and its inline value (`--a=b`), or nil at the end.
    mutating func next() throws(UsageError) -> (name: String, inline: String?)? {
        guard let argument = rest.popFirst() else { return nil }
        guard argument.hasPrefix("--"), argument.count > 2 else {
            throw UsageError("\(command): unexpected argument '\(argument)'")
        }
        var name = argument, inline: String?
        if let equals = argument.firstIndex(of: "=") {
            name = String(argument[..<equals])
            inline = String(argument[argument.index(after: equals)...])
        }
        guard seen.insert(name).inserted else { throw UsageError("\(command): \(name) given twice") }
        return (name, inline)
    }

    mutating func value(_ flag: (name: String, inline: String?)) throws(UsageError) -> String {
        if let inline = flag.inline { return inline }
        guard let value = rest.popFirst() else { throw UsageError("\(command): \(flag.name) needs a value") }
        return value
    }
}

/// `switchboard emit`: one envelope (PROTOCOL.md 8) published with serverId `emitter`.
public struct EmitCommand: Equatable, Sendable {
    public var redis: RedisURL
    public var envelope: BusEnvelope

    public static let usage = """
        usage: switchboard emit --redis URL --type client|user|room|broadcast [--target T]
                                --event E --data JSON [--exclude id1,id2]
        Publishes one envelope with serverId "emitter"; --target is required for client, user
        and room; --exclude is accepted for room and broadcast only.
        """

    public static func parse(_ arguments: [String]) throws(UsageError) -> EmitCommand {
        var reader = FlagReader(arguments, command: "switchboard emit")
        var redisText: String?, typeText: String?, target: String?, event: String?, dataText: String?, excludeText: String?
        while let flag = try reader.next() {
            switch flag.name {
            case "--redis": redisText = try reader.value(flag)
            case "--type": typeText = try reader.value(flag)
            case "--target": target = try reader.value(flag)
            case "--event": event = try reader.value(flag)
            case "--data": dataText = try reader.value(flag)
            case "--exclude": excludeText = try reader.value(flag)
            default:
                let hint = suggestion(for: flag.name, among: ["--redis", "--type", "--target", "--event", "--data", "--exclude"])
                    .map { "; did you mean \($0)?" } ?? ""
                throw UsageError("switchboard emit: unknown flag \(flag.name)\(hint)")
            }
        }
        guard let redisText else { throw UsageError("switchboard emit: --redis URL is required (redis://host:port)") }
        let redis: RedisURL
        // The seed's start-up error first, then what is wrong (CONTRACT.md).
        do { redis = try RedisURL(redisText) } catch {
            throw UsageError(StartupError.invalidRedisConnection("--redis: \(error.description)").message)
        }
        guard let typeText else { throw UsageError("switchboard emit: --type is required (client, user, room or broadcast)") }
        guard let kind = BusEnvelope.Kind(rawValue: typeText) else {
            throw UsageError("switchboard emit: --type must be client, user, room or broadcast, not '\(typeText)'")
        }
        if kind == .broadcast, target != nil {
            throw UsageError("switchboard emit: --target is not used with --type broadcast")
        }
        if kind != .broadcast, target?.isEmpty ?? true {
            throw UsageError("switchboard emit: --type \(kind.rawValue) needs --target (the \(kind == .client ? "client id" : kind == .user ? "user id" : "room"))")
        }
        guard let event, !event.isEmpty else { throw UsageError("switchboard emit: --event is required (a non-empty event name)") }
        guard let dataText else { throw UsageError("switchboard emit: --data is required (a JSON value, e.g. '{\"text\":\"hi\"}' or 'null')") }
        let data: JSONValue
        do { data = try JSONValue.parse(dataText) } catch {
            throw UsageError("switchboard emit: --data is not valid JSON: \(error)")
        }
        var exclude: [String]?
        if let excludeText {
            guard kind == .room || kind == .broadcast else {
                throw UsageError("switchboard emit: --exclude is accepted for --type room and broadcast only")
            }
            exclude = excludeText.split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        }
        return EmitCommand(redis: redis, envelope: BusEnvelope(serverID: Channels.emitterServerID, kind: kind, target: target,
                                                                event: event, data: data, exclude: exclude))
    }

    /// Publishes; returns how many subscribers Redis delivered it to.
    public func publish(timeout: Duration = .seconds(5)) throws(BusError) -> Int {
        try RedisPublisher.publish(url: redis, channel: envelope.channel, message: envelope.encoded(), timeout: timeout)
    }

    /// Parses, publishes, and reports on stderr; the exit code.
    public static func main(_ arguments: [String]) -> Int32 {
        if arguments.contains("--help") || arguments.contains("-h") {
            writeAll(1, usage + "\n")
            return 0
        }
        do {
            let command = try parse(arguments)
            do {
                _ = try command.publish()
                return 0
            } catch {
                writeAll(2, "switchboard emit: \(error.message)\n")
                return 1
            }
        } catch {
            writeAll(2, error.message + "\n" + usage + "\n")
            return 1
        }
    }
}
