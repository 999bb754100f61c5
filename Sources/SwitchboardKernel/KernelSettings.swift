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

    /// The hooks the application configured, one bit per `Hook.rawValue` (`configured:` guards
    /// read it). Every hook is assumed configured until the driver says otherwise.
    public var configuredHooks: UInt64 = ~0

    public func isConfigured(_ hook: Hook) -> Bool { configuredHooks & (1 << UInt64(hook.rawValue)) != 0 }
    public mutating func setConfigured(_ hook: Hook, _ configured: Bool) {
        if configured { configuredHooks |= 1 << UInt64(hook.rawValue) } else { configuredHooks &= ~(1 << UInt64(hook.rawValue)) }
    }

    public var handshakeConfigured: Bool {
        get { isConfigured(.handshake) }
        set { setConfigured(.handshake, newValue) }
    }
    public var validateRoomConfigured: Bool {
        get { isConfigured(.validateRoom) }
        set { setConfigured(.validateRoom, newValue) }
    }
    public var messageHandlerConfigured: Bool {
        get { isConfigured(.messageHandler) }
        set { setConfigured(.messageHandler, newValue) }
    }
    /// Whether an outbound transformer is configured (encrypted clients go through it).
    public var outboundTransformerConfigured = false

    public init() {}
}
