/// A failure of the test harness or of the server under test, with the details needed to fix it.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    /// A wait ran out of time (as opposed to a broken connection or bad data).
    public let isTimeout: Bool

    public init(_ description: String, isTimeout: Bool = false) {
        self.description = description
        self.isTimeout = isTimeout
    }
}
