import BufferPool
import ClusterRuntime
import ReplicationCore

/// Where a load-generator thread sends its requests.
public protocol RequestTarget {
    /// Sends a request; its reply comes back through ``poll(now:_:)`` with the same tag.
    mutating func submit(_ request: ClientRequest, now: UInt64)
    /// Hands every reply that has arrived to `body`; returns how many.
    mutating func poll(now: UInt64, _ body: (ClientReply) -> Void) -> Int
    /// Sleeps until a reply may have arrived, or until `deadline`.
    func wait(until deadline: UInt64)
}

/// A thread's connection to the in-process cluster.
public struct ClusterTarget: RequestTarget {
    let port: ClientPort
    public init(port: ClientPort) { self.port = port }
    public mutating func submit(_ request: ClientRequest, now: UInt64) { port.submit(request, now: now) }
    public mutating func poll(now: UInt64, _ body: (ClientReply) -> Void) -> Int { port.poll(now: now, body) }
    public func wait(until deadline: UInt64) { port.wait(until: deadline) }
}

/// Completes every request at once, storing nothing: the generator's own ceiling (`--target noop`).
public struct NoopTarget: RequestTarget {
    var ready: [ClientReply] = []
    let pool: BufferPool
    public init(pool: BufferPool) { self.pool = pool }

    @inline(__always)
    public mutating func submit(_ request: ClientRequest, now: UInt64) {
        if let v = request.value { pool.release(v) }
        ready.append(ClientReply(tag: request.tag, op: request.op, key: request.key, status: .ok,
                                 coordinator: .node(0)))
    }

    @inline(__always)
    public mutating func poll(now: UInt64, _ body: (ClientReply) -> Void) -> Int {
        let n = ready.count
        for r in ready { body(r) }
        ready.removeAll(keepingCapacity: true)
        return n
    }

    public func wait(until deadline: UInt64) {}
}
