import SwitchboardBus
import Testing

@Suite struct RedisURLTests {
    typealias Node = RedisURL.Node

    @Test func hostAndPort() throws {
        let url = try RedisURL("redis://cache.internal:6380")
        #expect(url == RedisURL(nodes: [Node(host: "cache.internal", port: 6380)]))
        #expect(url.database == 0 && url.password == nil && url.username == nil && !url.isCluster)
    }

    @Test func portDefaultsTo6379AndDatabaseTo0() throws {
        #expect(try RedisURL("redis://localhost").nodes == [Node(host: "localhost", port: 6379)])
        #expect(try RedisURL("redis://localhost/").database == 0)
        #expect(try RedisURL("REDIS://localhost:1").nodes == [Node(host: "localhost", port: 1)])
    }

    @Test func passwordAndDatabase() throws {
        let url = try RedisURL("redis://:s3cret@10.0.0.5:6379/3")
        #expect(url == RedisURL(nodes: [Node(host: "10.0.0.5")], username: nil, password: "s3cret", database: 3))
    }

    @Test func usernameAndPassword() throws {
        let url = try RedisURL("redis://app:pa:ss@redis:7000")
        #expect(url.username == "app")
        #expect(url.password == "pa:ss")
        #expect(url.nodes == [Node(host: "redis", port: 7000)])
        let withDB = try RedisURL("redis://app:pw@redis:7000/12")
        #expect(withDB.database == 12 && withDB.username == "app")
    }

    @Test func usernameOnlyMeansNoPassword() throws {
        let url = try RedisURL("redis://app@redis")
        #expect(url.username == "app" && url.password == nil)
    }

    @Test func credentialsArePercentDecoded() throws {
        let url = try RedisURL("redis://us%40er:p%2Fa%3As%25@h:1")
        #expect(url.username == "us@er")
        #expect(url.password == "p/a:s%")
        #expect(try RedisURL("redis://:p@ss@h").password == "p@ss")
    }

    @Test func ipv6InBrackets() throws {
        #expect(try RedisURL("redis://[::1]:7001").nodes == [Node(host: "::1", port: 7001)])
        #expect(try RedisURL("redis://[fe80::1]").nodes == [Node(host: "fe80::1", port: 6379)])
        #expect(Node(host: "::1", port: 7001).description == "[::1]:7001")
    }

    @Test func clusterNodeList() throws {
        let url = try RedisURL("redis://a:7001,b:7002,c")
        #expect(url.nodes == [Node(host: "a", port: 7001), Node(host: "b", port: 7002), Node(host: "c", port: 6379)])
        #expect(url.isCluster)
        let withAuth = try RedisURL("redis://:pw@a:1,b:2/0")
        #expect(withAuth.password == "pw" && withAuth.nodes.count == 2 && withAuth.database == 0)
    }

    @Test func surroundingWhitespaceIsIgnored() throws {
        #expect(try RedisURL("  redis://h:1\n").nodes == [Node(host: "h", port: 1)])
    }

    @Test func descriptionHidesThePassword() throws {
        #expect(try RedisURL("redis://:secret@h:1/2").description == "redis://:***@h:1/2")
        #expect(try RedisURL("redis://u:secret@a:1,b:2").description == "redis://u:***@a:1,b:2")
        #expect(try RedisURL("redis://h").description == "redis://h:6379")
    }

    @Test(arguments: [
        ("", RedisURLError.empty),
        ("   ", .empty),
        ("localhost:6379", .missingScheme("localhost:6379")),
        ("http://h:1", .unsupportedScheme("http")),
        ("rediss://h:1", .unsupportedScheme("rediss")),
        ("redis://", .missingHost("redis://")),
        ("redis://:6379", .missingHost("redis://:6379")),
        ("redis://:pw@", .missingHost("redis://:pw@")),
        ("redis://a:1,,b:2", .missingHost("redis://a:1,,b:2")),
        ("redis://h:0", .invalidPort("0")),
        ("redis://h:65536", .invalidPort("65536")),
        ("redis://h:", .invalidPort("")),
        ("redis://h:12ab", .invalidPort("12ab")),
        ("redis://h:-1", .invalidPort("-1")),
        ("redis://h:1/x", .invalidDatabase("x")),
        ("redis://h:1/-1", .invalidDatabase("-1")),
        ("redis://h:1/1/2", .invalidDatabase("1/2")),
        ("redis://a:1,b:2/3", .databaseInCluster(3)),
        ("redis://h:1?db=2", .unsupportedQuery("?db=2")),
        ("redis://:%zz@h", .invalidEscape("%zz")),
        ("redis://:%4@h", .invalidEscape("%4")),
        ("redis://::1:6379", .invalidHost("::1:6379")),
        ("redis://[::1", .invalidHost("[::1")),
        ("redis://[::1]x", .invalidHost("[::1]x")),
        ("redis://h st:1", .invalidHost("h st")),
    ])
    func rejects(input: String, error: RedisURLError) {
        #expect(throws: error) { try RedisURL(input) }
    }

    @Test func errorMessagesAreClear() {
        #expect(RedisURLError.empty.description == "the Redis URL is empty")
        #expect(RedisURLError.invalidPort("0").description == "invalid port '0' in Redis URL: expected 1 to 65535")
        #expect(RedisURLError.unsupportedScheme("rediss").description.contains("TLS"))
        #expect(RedisURLError.missingScheme("h:1").description == "'h:1' is not a Redis URL: expected redis://host:port")
        #expect(RedisURLError.databaseInCluster(3).description.contains("only database 0"))
    }
}
