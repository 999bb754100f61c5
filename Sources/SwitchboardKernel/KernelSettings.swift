import SwitchboardJSON

/// `KernelSettings` itself is generated from the spec's `defaults` (Generated/Settings.swift):
/// a default added to the spec is a setting without any Swift edit. Here: the hook flags.
extension KernelSettings {
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
    public var refreshConfigured: Bool {
        get { isConfigured(.refresh) }
        set { setConfigured(.refresh, newValue) }
    }
    public var rpcConfigured: Bool {
        get { isConfigured(.rpc) }
        set { setConfigured(.rpc, newValue) }
    }
    public var publishConfigured: Bool {
        get { isConfigured(.publish) }
        set { setConfigured(.publish, newValue) }
    }
}

extension KernelSettings {
    /// How numbers in client messages and bus envelopes are kept (the spec default `js_numbers`):
    /// `.javascript` writes them as the original (JS) gateway does, for byte-identical delivery in
    /// a mixed fleet.
    public var numberStyle: JSONNumberStyle {
        get { jsNumbers ? .javascript : .exact }
        set { jsNumbers = newValue == .javascript }
    }
}
