/// Inbound flow control: a client with too much of its input in hand is not read from.
///
/// What a client's input leaves pending on the engine is its async hook calls (`authenticate`,
/// `handshake`, `validateRoom`): every `join` spawns one, and their answers come back turns
/// later. Everything else a message causes is done before `bytesReceived` returns. So a client
/// with `limit` calls unanswered has its reading paused (`Driver.pauseReading`), and resumed
/// once half of them have answered: the flood waits in the driver (for the POSIX driver, in the
/// kernel's socket buffer, and TCP's window slows the sender) instead of in tasks.
final class InboundFlow {
    private let driver: any Driver
    private let links: LinkRegistry
    /// `ServerOptions.maxPendingHookCalls`; 0: never pause.
    private let limit: Int

    init(driver: any Driver, links: LinkRegistry, limit: Int) {
        self.driver = driver
        self.links = links
        self.limit = limit
    }

    /// A hook call for the client was spawned.
    func hookCalled(_ handle: ClientHandle) {
        guard limit > 0, let link = links[handle] else { return }
        link.pendingHookCalls += 1
        if link.pendingHookCalls >= limit, !link.readingPaused {
            link.readingPaused = true
            driver.pauseReading(link.id)
        }
    }

    /// A hook call's answer reached the loop (before the kernel takes it).
    func hookAnswered(_ handle: ClientHandle) {
        guard limit > 0, let link = links[handle], link.pendingHookCalls > 0 else { return }
        link.pendingHookCalls -= 1
        if link.readingPaused, link.pendingHookCalls <= limit / 2 {
            link.readingPaused = false
            driver.resumeReading(link.id)
        }
    }
}
