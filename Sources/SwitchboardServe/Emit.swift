import ArgumentParser
import Switchboard
import SwitchboardBus

/// `switchboard emit`: the flags as ArgumentParser reads them.
struct EmitCLI: CLICommand, UsageExitCode {
    static let configuration = CommandConfiguration(
        commandName: "emit",
        abstract: "Publish one envelope (PROTOCOL.md 8) with serverId \"emitter\" on Redis.",
        discussion: """
            --target is required for client, user and room; --exclude is accepted for room and broadcast only. \
            Without --redis the URL comes from SWITCHBOARD_REDIS_URL, else from redis.url of the config file \
            (--config or SWITCHBOARD_CONFIG). Prints how many subscribers Redis delivered the message to.
            """)
    /// CONTRACT.md: bad arguments exit 1.
    static let usageExitCode: Int32 = 1

    @Option("redis://[user:password@]host:port[/db]; overrides the config.", value: "url")
    var redis: String?
    @Option("client, user, room or broadcast.", value: "type")
    var type: String?
    @Option("The client id, user id or room (not for broadcast).", value: "target")
    var target: String?
    @Option("The event name clients receive.", value: "event")
    var event: String?
    @Option("The event's data: any JSON value ('{\"text\":\"hi\"}', 'null').", value: "json")
    var data: String?
    @Option("Client ids that must not receive it, comma-separated (room and broadcast).", value: "ids")
    var exclude: String?
    @Option(name: .customLong("config"), "A config file to read redis.url from when --redis is absent.", value: "file")
    var configPath: String?

    func execute(_ context: CLIContext) -> Int32 {
        let command: EmitCommand
        do {
            command = try EmitCommand(self, environment: context.environment)
        } catch {
            return refuse(error, context)
        }
        return command.run(context)
    }
}

/// `switchboard emit`: one envelope (PROTOCOL.md 8) published with serverId `emitter`.
public struct EmitCommand: Equatable, Sendable {
    public var redis: RedisURL
    public var envelope: BusEnvelope

    /// Parses `arguments` (no command name); the Redis URL falls back to `environment` and the
    /// config file it names when `--redis` is absent.
    public static func parse(_ arguments: [String], environment: [String: String] = [:]) throws(UsageError) -> EmitCommand {
        try CLI.refuseRepeats(arguments, of: EmitCLI.self)
        return try EmitCommand(EmitCLI.parse(arguments, as: "switchboard emit"), environment: environment)
    }

    init(_ flags: EmitCLI, environment: [String: String]) throws(UsageError) {
        redis = try Self.redisURL(flags, environment: environment)
        guard let typeText = flags.type else { throw UsageError("switchboard emit: --type is required (client, user, room or broadcast)") }
        guard let kind = BusEnvelope.Kind(rawValue: typeText) else {
            throw UsageError("switchboard emit: --type must be client, user, room or broadcast, not '\(typeText)'")
        }
        let target = flags.target
        if kind == .broadcast, target != nil {
            throw UsageError("switchboard emit: --target is not used with --type broadcast")
        }
        if kind != .broadcast, target?.isEmpty ?? true {
            throw UsageError("switchboard emit: --type \(kind.rawValue) needs --target (the \(kind == .client ? "client id" : kind == .user ? "user id" : "room"))")
        }
        guard let event = flags.event, !event.isEmpty else { throw UsageError("switchboard emit: --event is required (a non-empty event name)") }
        guard let dataText = flags.data else { throw UsageError("switchboard emit: --data is required (a JSON value, e.g. '{\"text\":\"hi\"}' or 'null')") }
        let data: JSONValue
        do { data = try JSONValue.parse(dataText) } catch {
            throw UsageError("switchboard emit: --data is not valid JSON: \(error)")
        }
        var exclude: [String]?
        if let excludeText = flags.exclude {
            guard kind == .room || kind == .broadcast else {
                throw UsageError("switchboard emit: --exclude is accepted for --type room and broadcast only")
            }
            exclude = excludeText.split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        }
        envelope = BusEnvelope(serverID: Channels.emitterServerID, kind: kind, target: target, event: event, data: data, exclude: exclude)
    }

    /// `--redis`, else the configuration's `redis.url` (environment over file). An empty or
    /// malformed URL says the seed's start-up error first, then what is wrong (CONTRACT.md).
    private static func redisURL(_ flags: EmitCLI, environment: [String: String]) throws(UsageError) -> RedisURL {
        if let text = flags.redis {
            do { return try RedisURL(text) } catch {
                throw UsageError(StartupError.invalidRedisConnection("--redis: \(error.description)").message)
            }
        }
        let path = flags.configPath ?? environment[ConfigLoader.configVariable]
        let variable = ConfigSchema.field(["redis", "url"])!.environmentName
        guard path != nil || environment[variable] != nil else {
            throw UsageError("switchboard emit: --redis URL is required (redis://host:port)")
        }
        let config: ServeConfig
        do { config = try ConfigLoader.load(path: path, environment: environment) } catch {
            // A bad redis.url is the seed's error; any other problem is named as it is.
            if let bad = error.errors.first(where: { $0.key == "redis.url" }) {
                throw UsageError(StartupError.invalidRedisConnection(bad.description).message)
            }
            throw UsageError(error.errors.map { "switchboard emit: \($0)" }.joined(separator: "\n"))
        }
        guard let url = config.redis else {
            throw UsageError("switchboard emit: --redis URL is required (redis://host:port); \(path ?? "the config") has no redis.url")
        }
        return url
    }

    /// Publishes; returns how many subscribers Redis delivered it to.
    public func publish(timeout: Duration = .seconds(5)) throws(BusError) -> Int {
        try RedisPublisher.publish(url: redis, channel: envelope.channel, message: envelope.encoded(), timeout: timeout)
    }

    /// Publishes and reports the receivers on stdout (errors on stderr); the exit code.
    func run(_ context: CLIContext) -> Int32 {
        do {
            let receivers = try publish()
            context.out("\(envelope.channel): received by \(receivers) Redis subscriber\(receivers == 1 ? "" : "s")\n")
            return 0
        } catch {
            context.err("switchboard emit: \(error.message)\n")
            return 1
        }
    }

    /// Parses, publishes, and reports; the exit code (`switchboard emit ARGUMENTS`).
    public static func main(_ arguments: [String], context: CLIContext = CLIContext(environment: [:])) -> Int32 {
        CLI.main(["emit"] + arguments, context: context)
    }
}
