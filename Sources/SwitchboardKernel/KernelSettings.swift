/// The options the kernel reads. Names and defaults come from the spec's `defaults`
/// (Generated/Defaults.swift); durations are milliseconds.
public struct KernelSettings: Sendable, Equatable {
    public var path: String = ProtocolDefaults.path
    public var defaultRooms: [String] = ProtocolDefaults.defaultRooms
    public var maxPayloadLength: Int = ProtocolDefaults.maxPayloadLength
    public var idleTimeout: Int64 = ProtocolDefaults.idleTimeout
    public var backpressureLimit: Int = ProtocolDefaults.backpressureLimit
    public var closeOnBackpressure: Bool = ProtocolDefaults.closeOnBackpressure
    public var sendPings: Bool = ProtocolDefaults.sendPings
    public var authTimeout: Int64 = ProtocolDefaults.authTimeout
    public var heartbeatInterval: Int64 = ProtocolDefaults.heartbeatInterval
    public var heartbeatTimeout: Int64 = ProtocolDefaults.heartbeatTimeout
    public var requireEncryption: Bool = ProtocolDefaults.requireEncryption
    public var encryptedBatchLimit: Int = ProtocolDefaults.encryptedBatchLimit
    /// Messages a client may send before `connected`; 0 = no limit.
    public var maxMessagesBeforeAuth: Int = ProtocolDefaults.maxMessagesBeforeAuth

    /// Which optional hooks the application configured (guards read these).
    public var handshakeConfigured = true
    public var validateRoomConfigured = true
    public var messageHandlerConfigured = true
    /// Whether an outbound transformer is configured (encrypted clients go through it).
    public var outboundTransformerConfigured = false

    public init() {}
}
