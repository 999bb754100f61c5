import Switchboard
import SwitchboardBus
import Testing
@testable import SwitchboardServe

/// `rooms.history*`: the keys that turn history and recovery on for `switchboard serve`, from
/// the file and from `SWITCHBOARD_ROOMS_HISTORY*`, and what reaches the server's options.
@Suite struct HistoryConfigTests {
    @Test func theDefaultsAreTheSpecsAndHistoryIsOff() throws {
        let options = try load(nil).serverOptions
        #expect(options.historyRooms == ProtocolDefaults.historyRooms && options.historyRooms.isEmpty)
        #expect(options.historySize == ProtocolDefaults.historySize)
        #expect(options.historyTTL == ProtocolDefaults.historyTtl)
        #expect(options.historyEpochTTL == ProtocolDefaults.historyEpochTtl)
        #expect(options.historyRedis == nil)
    }

    @Test func theFileSetsEveryKeyAndRedisKeepsTheHistory() throws {
        let config = try load("""
            rooms:
              history: ["chat:*", lobby]
              history_size: 250
              history_ttl: 10m
              history_epoch_ttl: 48h
            redis:
              url: redis://cache:6380
            """)
        let options = config.serverOptions
        #expect(options.historyRooms == ["chat:*", "lobby"])
        #expect(options.historySize == 250)
        #expect(options.historyTTL == 600_000)
        #expect(options.historyEpochTTL == 172_800_000)
        // The app brings its own bus, so `redis` stays unset and the store is named apart.
        #expect(options.redis == nil)
        #expect(options.historyRedis?.nodes == [.init(host: "cache", port: 6380)])
        #expect(config.locations["rooms.history_size"] == ConfigLocation(file: "test.yaml", line: 3))
    }

    @Test func variablesOverrideTheFile() throws {
        let config = try load("rooms:\n  history_size: 20\n", env: [
            "SWITCHBOARD_ROOMS_HISTORY": "chat:*, news",
            "SWITCHBOARD_ROOMS_HISTORY_SIZE": "30",
            "SWITCHBOARD_ROOMS_HISTORY_TTL": "90s",
            "SWITCHBOARD_ROOMS_HISTORY_EPOCH_TTL": "2h",
        ])
        #expect(config.historyRooms == ["chat:*", "news"])
        #expect(config.historySize == 30)
        #expect(config.historyTTL == 90_000)
        #expect(config.historyEpochTTL == 7_200_000)
        #expect(config.locations["rooms.history_size"]
            == ConfigLocation(file: "environment variable SWITCHBOARD_ROOMS_HISTORY_SIZE", line: nil))
    }

    @Test func badValuesNameTheFileLineAndTheFix() {
        #expect(errors("rooms:\n  history: chat\n") == ["test.yaml:2: rooms.history: expected a list of strings, got 'chat'"])
        #expect(errors("rooms:\n  history_size: 0\n")
            == ["test.yaml:2: rooms.history_size: expected an integer from 1 to 100000, got '0'"])
        #expect(errors("rooms:\n  history_size: \"50\"\n")
            == ["test.yaml:2: rooms.history_size: expected an integer from 1 to 100000, got '50' (remove the quotes)"])
        #expect(errors("rooms:\n  history_ttl: 10\n")
            == ["test.yaml:2: rooms.history_ttl: expected a duration (500ms, 5s, 2m, 1h, or a number of milliseconds) of at least 1000 ms, got '10'"])
        #expect(errors("rooms:\n  history_epoch_ttl: soon\n")
            == ["test.yaml:2: rooms.history_epoch_ttl: expected a duration (500ms, 5s, 2m, 1h, or a number of milliseconds) of at least 1000 ms, got 'soon'"])
        #expect(errors(nil, env: ["SWITCHBOARD_ROOMS_HISTORY_SIZE": "many"])
            == ["environment variable SWITCHBOARD_ROOMS_HISTORY_SIZE: rooms.history_size: expected an integer from 1 to 100000, got 'many'"])
    }

    @Test func configCheckPrintsTheKeys() throws {
        let config = try load("rooms:\n  history: [lobby]\n  history_ttl: 90s\n")
        let text = ConfigRender.yaml(config, mask: true, sources: false)
        #expect(text.contains("  history: [\"lobby\"]"))
        #expect(text.contains("  history_size: 100"))
        #expect(text.contains("  history_ttl: 90s"))
        #expect(text.contains("  history_epoch_ttl: 720h"))
    }
}
