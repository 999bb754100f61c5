/// Receives the loop's events, always on the loop thread and never re-entered: closes and
/// drains triggered inside a callback are delivered after it returns.
public protocol EventLoopHandler: AnyObject {
    func connectionAccepted(_ id: SocketID, peer: PeerAddress, listener: ListenerID)
    /// `bytes` is the loop's read buffer; valid only during the call.
    func bytesReceived(_ id: SocketID, _ bytes: UnsafeRawBufferPointer)
    /// The output queue became empty after having been non-empty at the end of a turn.
    func connectionDrained(_ id: SocketID)
    /// Called exactly once per accepted connection; the id is dead afterwards.
    func connectionClosed(_ id: SocketID, reason: CloseReason)
    func timerFired(_ token: UInt64)
    /// Called once per turn before queued output is flushed (the end of the cork).
    func loopTurnEnded()
}

extension EventLoopHandler {
    public func loopTurnEnded() {}
}
