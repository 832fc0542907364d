import BufferPool
import ClusterRuntime
import Foundation
import ReplicationCore
import SyncPrimitives

/// Where a load-generator thread sends its requests.
public protocol RequestTarget {
    /// Sends a request; its reply comes back through ``poll(now:_:)`` with the same tag.
    mutating func submit(_ request: ClientRequest, now: UInt64)
    /// Hands every reply that has arrived to `body`; returns how many.
    mutating func poll(now: UInt64, _ body: (ClientReply) -> Void) -> Int
    /// Sleeps until a reply may have arrived, or until `deadline`.
    func wait(until deadline: UInt64)
    /// Nothing to send or collect until `deadline` (waiting for the other threads).
    func idle(until deadline: UInt64)
    /// The thread is done with the target.
    func finish()
    /// Time the thread has spent waiting with nothing to do, ns (closed loop moves slots to threads that wait).
    var idleNanos: UInt64 { get }
    /// Whether the thread also runs a worker of the cluster (its nodes' work competes with its clients').
    var hostsWorker: Bool { get }
}

extension RequestTarget {
    public func idle(until deadline: UInt64) { sleep(until: deadline) }
    public func finish() {}
    public var idleNanos: UInt64 { 0 }
    public var hostsWorker: Bool { false }
}

/// A thread's connection to the in-process cluster.
public struct ClusterTarget: RequestTarget {
    let port: ClientPort
    public init(port: ClientPort) { self.port = port }
    public mutating func submit(_ request: ClientRequest, now: UInt64) { port.submit(request, now: now) }
    public mutating func poll(now: UInt64, _ body: (ClientReply) -> Void) -> Int { port.poll(now: now, body) }
    public func wait(until deadline: UInt64) { port.wait(until: deadline) }
    /// A thread that hosts a worker keeps it running while it waits, and until every thread is done.
    public func idle(until deadline: UInt64) { port.idle(until: deadline) }
    public func finish() { port.finish() }
    public var idleNanos: UInt64 { port.idleNanos }
    public var hostsWorker: Bool { port.hostsWorker }
}

/// Completes every request at once, storing nothing: the generator's own ceiling (`--target noop`).
/// Optionally stalls: replies due inside a window are held until it ends.
public struct NoopTarget: RequestTarget {
    var ready: [ClientReply] = []
    var held: [ClientReply] = []
    let pool: BufferPool
    let stall: ClosedRange<UInt64>?

    public init(pool: BufferPool, stall: ClosedRange<UInt64>? = nil) {
        self.pool = pool
        self.stall = stall
    }

    @inline(__always)
    public mutating func submit(_ request: ClientRequest, now: UInt64) {
        if let v = request.value { pool.release(v) }
        let reply = ClientReply(tag: request.tag, op: request.op, key: request.key, status: .ok, coordinator: .node(0))
        if let stall, stall.contains(now) { held.append(reply) } else { ready.append(reply) }
    }

    @inline(__always)
    public mutating func poll(now: UInt64, _ body: (ClientReply) -> Void) -> Int {
        if let stall, !held.isEmpty, now > stall.upperBound {
            ready += held
            held.removeAll()
        }
        let n = ready.count
        for r in ready { body(r) }
        ready.emptyKeepingCapacity()
        return n
    }

    public func wait(until deadline: UInt64) {
        if let stall, !held.isEmpty {
            let now = monotonicNanos()
            if now <= stall.upperBound { usleep(UInt32(min(1000, (stall.upperBound - now) / 1000 + 1))) }
        }
    }
}
