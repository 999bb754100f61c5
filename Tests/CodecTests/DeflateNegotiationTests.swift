import Testing
@testable import SwitchboardCodec

@Suite struct DeflateNegotiationTests {
    /// A policy that requires nothing: answers only reflect the offer.
    static let lenient = DeflateOptions(serverNoContextTakeover: false, clientNoContextTakeover: false)
    static let strict = DeflateOptions()

    struct Row: CustomTestStringConvertible, Sendable {
        var offers: [String]
        var policy: DeflateOptions
        var header: String?
        var parameters: DeflateParameters?
        var testDescription: String { offers.joined(separator: ", ") }
    }

    static func row(_ offers: [String], _ policy: DeflateOptions, _ header: String?,
                    _ serverNoContext: Bool = false, _ clientNoContext: Bool = false,
                    server: Int = 15, client: Int = 15) -> Row {
        Row(offers: offers, policy: policy, header: header,
            parameters: header == nil ? nil : DeflateParameters(
                serverNoContextTakeover: serverNoContext, clientNoContextTakeover: clientNoContext,
                serverMaxWindowBits: server, clientMaxWindowBits: client))
    }

    static let autobahnBase = "permessage-deflate; client_no_context_takeover; client_max_window_bits"

    static let accepted: [Row] = [
        // Plain offers.
        row(["permessage-deflate"], lenient, "permessage-deflate"),
        row(["permessage-deflate"], strict,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true, true),
        // Browsers offer client_max_window_bits without a value.
        row(["permessage-deflate; client_max_window_bits"], lenient, "permessage-deflate"),
        row(["permessage-deflate; client_max_window_bits"],
            DeflateOptions(serverNoContextTakeover: false, clientNoContextTakeover: false, clientMaxWindowBits: 10),
            "permessage-deflate; client_max_window_bits=10", client: 10),
        // A client limit only applies when the client offered the parameter.
        row(["permessage-deflate"],
            DeflateOptions(serverNoContextTakeover: false, clientNoContextTakeover: false, clientMaxWindowBits: 10),
            "permessage-deflate"),
        // The client's value is a hint that binds it; the smaller of it and the policy wins.
        row(["permessage-deflate; client_max_window_bits=12"], lenient,
            "permessage-deflate; client_max_window_bits=12", client: 12),
        row(["permessage-deflate; client_max_window_bits=12"],
            DeflateOptions(serverNoContextTakeover: false, clientNoContextTakeover: false, clientMaxWindowBits: 9),
            "permessage-deflate; client_max_window_bits=9", client: 9),
        row(["permessage-deflate; client_max_window_bits=8"], lenient,
            "permessage-deflate; client_max_window_bits=8", client: 8),
        row(["permessage-deflate; client_max_window_bits=9"], lenient,
            "permessage-deflate; client_max_window_bits=9", client: 9),
        // RFC 7692 section 5.2: the first of two offers is accepted.
        row(["permessage-deflate; client_max_window_bits; server_max_window_bits=10",
             "permessage-deflate; client_max_window_bits"], lenient,
            "permessage-deflate; server_max_window_bits=10", server: 10),
        // server_max_window_bits is always answered when asked, also at 15.
        row(["permessage-deflate; server_max_window_bits=15"], lenient,
            "permessage-deflate; server_max_window_bits=15"),
        // A server policy below the request wins; one below 15 is announced unasked.
        row(["permessage-deflate; server_max_window_bits=12"],
            DeflateOptions(serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 10),
            "permessage-deflate; server_max_window_bits=10", server: 10),
        row(["permessage-deflate"],
            DeflateOptions(serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 8),
            "permessage-deflate; server_max_window_bits=8", server: 8),
        row(["permessage-deflate; server_no_context_takeover"], lenient,
            "permessage-deflate; server_no_context_takeover", true),
        row(["permessage-deflate; client_no_context_takeover"], lenient,
            "permessage-deflate; client_no_context_takeover", false, true),
        // Autobahn 13.1-13.6 (fuzzingclient offers, window 8 and 9 variants).
        row([autobahnBase], lenient, "permessage-deflate; client_no_context_takeover", false, true),
        row([autobahnBase + "; server_no_context_takeover"], lenient,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true, true),
        row([autobahnBase + "; server_max_window_bits=8"], lenient,
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=8", false, true, server: 8),
        row([autobahnBase + "; server_max_window_bits=9"], lenient,
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=9", false, true, server: 9),
        row([autobahnBase + "; server_max_window_bits=15"], lenient,
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=15", false, true),
        row([autobahnBase + "; server_no_context_takeover; server_max_window_bits=8"], strict,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8",
            true, true, server: 8),
        row([autobahnBase + "; server_no_context_takeover; server_max_window_bits=15"], strict,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15",
            true, true),
        row(["permessage-deflate; client_max_window_bits=9; server_max_window_bits=9"], strict,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9",
            true, true, server: 9, client: 9),
        // Autobahn 13.7: three offers, the first acceptable one wins.
        row([autobahnBase + "; server_no_context_takeover; server_max_window_bits=8",
             autobahnBase + "; server_no_context_takeover", autobahnBase], lenient,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8",
            true, true, server: 8),
        // Syntax: quoted values, case, spacing.
        row(["permessage-deflate; server_max_window_bits=\"10\""], lenient,
            "permessage-deflate; server_max_window_bits=10", server: 10),
        row(["permessage-deflate; client_max_window_bits = \"1\\1\""], lenient,
            "permessage-deflate; client_max_window_bits=11", client: 11),
        row(["PerMessage-Deflate;Client_Max_Window_Bits;SERVER_NO_CONTEXT_TAKEOVER"], lenient,
            "permessage-deflate; server_no_context_takeover", true),
        row(["permessage-deflate \t;\tserver_max_window_bits\t=\t11 "], lenient,
            "permessage-deflate; server_max_window_bits=11", server: 11),
        // Other extensions and broken offers are skipped until a good one.
        row(["x-webkit-deflate-frame", "permessage-deflate; foo", "permessage-deflate; server_max_window_bits=10"],
            lenient, "permessage-deflate; server_max_window_bits=10", server: 10),
    ]

    @Test(arguments: accepted)
    func acceptsAndAnswers(_ row: Row) throws {
        let answer = try #require(PerMessageDeflate.negotiate(offers: row.offers, policy: row.policy))
        #expect(answer.responseHeader == row.header)
        #expect(answer.parameters == row.parameters)
        // The answer is itself well-formed and carries the same parameters.
        #expect(parseDeflateOffer(answer.responseHeader) != nil)
    }

    static let declined: [String] = [
        "permessage-deflate; foo",                                   // unknown parameter
        "permessage-deflate; foo=1",
        "permessage-deflate; client_max_window_bits; client_max_window_bits",  // duplicates
        "permessage-deflate; server_no_context_takeover; Server_No_Context_Takeover",
        "permessage-deflate; server_no_context_takeover=true",      // value where none belongs
        "permessage-deflate; client_no_context_takeover=\"\"",
        "permessage-deflate; server_max_window_bits",                // value required
        "permessage-deflate; server_max_window_bits=",
        "permessage-deflate; server_max_window_bits=7",              // out of range
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits=99999999999999999999",
        "permessage-deflate; server_max_window_bits=010",            // leading zero
        "permessage-deflate; server_max_window_bits=1a",
        "permessage-deflate; server_max_window_bits=+9",
        "permessage-deflate; server_max_window_bits=\"\"",
        "permessage-deflate; server_max_window_bits=\"10",           // unterminated quote
        "permessage-deflate; server_max_window_bits=\"1 0\"",
        "permessage-deflate;",                                       // empty parameter
        "permessage-deflate;; client_max_window_bits",
        "permessage-deflate client_max_window_bits",                 // missing separator
        "permessage-deflate; client_max_window_bits 10",
        "permessage-deflate; =10",
        "permessage-deflatex",                                       // other extensions
        "x-webkit-deflate-frame",
        "",
    ]

    @Test(arguments: declined)
    func declinesInvalidOffer(_ offer: String) {
        #expect(PerMessageDeflate.negotiate(offers: [offer], policy: Self.lenient) == nil)
        #expect(PerMessageDeflate.negotiate(offers: [offer], policy: Self.strict) == nil)
        // An invalid offer never hides a valid one after it.
        let next = PerMessageDeflate.negotiate(offers: [offer, "permessage-deflate; server_max_window_bits=12"],
                                               policy: Self.lenient)
        #expect(next?.parameters.serverMaxWindowBits == 12)
    }

    @Test func noOffersNoExtension() {
        #expect(PerMessageDeflate.negotiate(offers: [], policy: Self.strict) == nil)
    }

    @Test func offersFromRepeatedHeaderFields() throws {
        let head = HTTPRequestHead(method: "GET", target: "/", version: .http1_1, headers: [
            (name: "Sec-WebSocket-Extensions", value: "permessage-deflate; server_max_window_bits=7, x-foo"),
            (name: "sec-websocket-extensions", value: "permessage-deflate; client_max_window_bits=10"),
        ])
        let offers = head.headerList("sec-websocket-extensions")
        #expect(offers.count == 3)
        let answer = try #require(PerMessageDeflate.negotiate(offers: offers, policy: Self.lenient))
        #expect(answer.responseHeader == "permessage-deflate; client_max_window_bits=10")
    }

    @Test func outOfRangePolicyIsClamped() throws {
        let policy = DeflateOptions(serverNoContextTakeover: false, clientNoContextTakeover: false,
                                    serverMaxWindowBits: 3, clientMaxWindowBits: 99, compressionLevel: 42, memoryLevel: 0)
        let answer = try #require(PerMessageDeflate.negotiate(offers: ["permessage-deflate; client_max_window_bits"], policy: policy))
        #expect(answer.responseHeader == "permessage-deflate; server_max_window_bits=8")
        #expect(answer.parameters.serverMaxWindowBits == 8)
        #expect(answer.parameters.clientMaxWindowBits == 15)
        #expect(answer.parameters.compressionLevel == 9)
        #expect(answer.parameters.memoryLevel == 1)
    }

    @Test func zlibWindowsForEightBits() {
        let eight = DeflateParameters(serverMaxWindowBits: 8, clientMaxWindowBits: 8)
        #expect(eight.compressionWindowBits == 9)
        #expect(eight.decompressionWindowBits == 9)
        let ten = DeflateParameters(serverMaxWindowBits: 10, clientMaxWindowBits: 12)
        #expect(ten.compressionWindowBits == 10)
        #expect(ten.decompressionWindowBits == 12)
    }
}
