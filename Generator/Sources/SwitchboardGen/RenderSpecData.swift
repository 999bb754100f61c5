/// The render stage for what the kernel and engine read as data: effects, limits, the
/// generated `KernelSettings` and the connection policy (RenderSwift.swift renders the rest).
extension Renderer {
    static func effects(_ spec: ProtocolSpec) -> String {
        var lines = header(spec) + [
            "/// An effect as a row writes it (spec `effects`); the kernel fills in the client, attempt and",
            "/// deadline. `Kernel.run` switches over every case: a new effect fails the build there until",
            "/// the kernel implements it.",
            "public enum EffectTemplate: Equatable, Hashable, Sendable {",
        ]
        for effect in spec.effects {
            lines += doc(effect.doc)
            let payload: String
            switch effect.argument {
            case nil: payload = ""
            case .text?: payload = "(String)"
            case .error?: payload = "(ErrorMessage)"
            case .closeCode?: payload = "(CloseCode)"
            case .timer?: payload = "(TimerKind)"
            case .hook?: payload = "(Hook)"
            }
            lines.append("    case \(Names.swift(effect.name))\(payload)")
        }
        lines.append("}")
        return file(lines)
    }

    static func limits(_ spec: ProtocolSpec) -> String {
        var counting: [String] = []
        for limit in spec.limits {
            let states = limit.countsIn.map { "." + Names.swift($0.name) }
            counting.append("case .\(Names.swift(limit.name)):")
            if states.count == spec.states.count {
                counting.append("    return true")
            } else if states.isEmpty {
                counting.append("    return false")
            } else {
                counting += ["    switch state {", "    case \(states.joined(separator: ", ")): return true",
                             "    default: return false", "    }"]
            }
        }
        return file(header(spec) + sectionEnum("A per-client message counter (spec `limits`).", "MessageLimit",
                                               spec.limits.map { ($0.name, $0.doc) }, [
            specNameProperty(spec.limits.map(\.name)),
            switching("The most messages counted before `raises`; 0 turns the limit off.",
                      "public func maximum(in settings: KernelSettings) -> Int",
                      spec.limits.map { "case .\(Names.swift($0.name)): settings.\(Names.swift($0.max))" }),
            switching("Whether messages count in this state.", "public func counts(in state: ClientState) -> Bool", counting),
            property("The client input raised instead of the message past the limit.", "raises: InputKind",
                     spec.limits.map { ($0.name, "." + Names.swift($0.raises)) }),
        ]))
    }

    static func settings(_ spec: ProtocolSpec) -> String {
        var lines = header(spec) + [
            "/// The options the kernel and the engine read: one per spec default (durations in milliseconds),",
            "/// plus which hooks the application configured.",
            "public struct KernelSettings: Sendable, Equatable {",
        ]
        for entry in spec.defaults {
            lines += doc(entry.doc)
            lines.append("    public var \(Names.swift(entry.name)): \(entry.type.swiftType) = ProtocolDefaults.\(Names.swift(entry.name))")
        }
        lines += ["    /// The hooks the application configured, one bit per `Hook.rawValue` (`configured:` guards read",
                  "    /// it). Every hook counts as configured until the driver says otherwise.",
                  "    public var configuredHooks: UInt64 = ~0",
                  "    /// Whether an outbound transformer is configured (an encrypted client's messages go through it).",
                  "    public var outboundTransformerConfigured = false", "", "    public init() {}", "}"]
        return file(lines)
    }

    static func connection(_ spec: ProtocolSpec) -> String {
        var lines = header(spec) + [
            "/// The connection's life around the client machine (spec `connection`): the upgrade deadline,",
            "/// transport liveness and graceful shutdown. Durations in milliseconds.",
            "public enum ConnectionPolicy {",
        ]
        if let c = spec.connection {
            lines += [
                "    /// A request head must arrive within this; otherwise the request gets `upgradeTimeoutAnswer`.",
                "    public static func upgradeTimeout(_ settings: KernelSettings) -> Int64 { settings.\(Names.swift(c.upgradeTimeout)) }",
                "    public static let upgradeTimeoutAnswer: HTTPAnswer = .\(Names.swift(c.upgradeTimeoutAnswer))",
                "    /// A plain HTTP request the application does not answer.",
                "    public static let notFoundAnswer: HTTPAnswer = .\(Names.swift(c.notFoundAnswer))",
                "    /// A connection silent longer than this is closed without a close frame.",
                "    public static func idleTimeout(_ settings: KernelSettings) -> Int64 { settings.\(Names.swift(c.idleTimeout)) }",
                "    /// Whether a silent connection is pinged, once silent longer than `idleTimeout / pingDivisor`.",
                "    public static func sendsPings(_ settings: KernelSettings) -> Bool { settings.\(Names.swift(c.ping)) }",
                "    public static let pingDivisor: Int64 = \(c.pingDivisor)",
                "    /// Shutdown: stop accepting, answer upgrades still pending with `shutdownPendingUpgradeAnswer`,",
                "    /// raise `shutdown_requested` for every client, send the resulting closes `shutdownBatchSize` at",
                "    /// a time every `shutdownBatchInterval`, then check every `shutdownPollInterval` until every",
                "    /// connection and callback is done or `shutdownGrace` has passed.",
                "    public static func shutdownGrace(_ settings: KernelSettings) -> Int64 { settings.\(Names.swift(c.shutdownGrace)) }",
                "    public static func shutdownBatchSize(_ settings: KernelSettings) -> Int { settings.\(Names.swift(c.shutdownBatchSize)) }",
                "    public static let shutdownBatchInterval: Int64 = \(c.shutdownBatchInterval)",
                "    public static let shutdownPollInterval: Int64 = \(c.shutdownPollInterval)",
                "    public static let shutdownPendingUpgradeAnswer: HTTPAnswer = .\(Names.swift(c.shutdownPendingUpgradeAnswer))",
                "    /// What a shutdown does first, in this order; the paced closes and the wait follow.",
                "    public static let shutdownOrder: [ShutdownStep] = [" + c.shutdownOrder.map { "." + Names.swift($0) }.joined(separator: ", ") + "]",
                "    /// An upgrade request whose `Origin` is not one of the allowed origins.",
                "    public static let originForbiddenAnswer: HTTPAnswer = .\(Names.swift(c.originForbiddenAnswer))",
                "    /// An upgrade request, through a trusted proxy, from a client address at its connection limit.",
                "    public static let tooManyConnectionsAnswer: HTTPAnswer = .\(Names.swift(c.tooManyConnectionsAnswer))",
            ]
        }
        lines += ["}", "", "/// The steps that start a shutdown (spec `connection.shutdown_order`).",
                  "public enum ShutdownStep: UInt8, CaseIterable, Sendable {",
                  "    /// The listener stops accepting connections.",
                  "    case stopAccepting",
                  "    /// Every client hears `shutdown_requested` (its row closes it; the closes are paced).",
                  "    case shutDownClients",
                  "    /// Requests whose head is still arriving get `shutdownPendingUpgradeAnswer`; raw connections are closed with the clients.",
                  "    case answerPendingRequests",
                  "}"]
        let codec = spec.closeCodes.filter { $0.origin == .codec }
        lines += ["", "extension CloseCode {",
                  "    /// The spec's close code for a code the RFC 6455 codec raised (`origin: codec`), or nil.",
                  "    public init?(codec code: UInt16) {", "        switch code {"]
        lines += codec.map { "        case \($0.code): self = .\(Names.swift($0.name))" }
        lines += ["        default: return nil", "        }", "    }", "}"]
        return file(lines)
    }
}
