import SwitchboardDriverSupport

/// The name this module gave the loop executor before it moved to SwitchboardDriverSupport.
public typealias LoopExecutor = LoopTaskExecutor

extension LoopTaskExecutor {
    /// Jobs run on `loop`'s thread: queued with `runSoon` when enqueued from that thread (no
    /// lock, no wake-up), posted from any other.
    public convenience init(loop: EventLoop) {
        self.init(execute: { work in
            if loop.isLoopThread { loop.runSoon(work) } else { loop.post(work) }
        })
    }
}
