import BufferPool
import ReplicationCore
import SyncPrimitives
import Foundation

/// The core alone on one thread: nodes as state machines, messages through a FIFO, no threads or clocks.
func coreOnly(n: Int, w: Int, r: Int, ops: Int) -> Double {
    var core = CoreConfig()
    core.n = n
    core.w = w
    core.r = r
    if ProcessInfo.processInfo.environment["QB_LWW"] != nil { core.versioning = .lww }
    let ring = core.makeRing()
    let pool = BufferPool.shared
    let nodes = (0..<5).map { Node(id: $0, config: core, ring: ring, pool: pool) }
    var queue: [Envelope] = []
    var head = 0
    var out = Outbox()
    var rng = Xoshiro(seed: 3)
    var done = 0
    func pump() {
        while head < queue.count {
            let e = queue[head]
            head += 1
            if e.to.isClient {
                if case .reply(let reply) = e.message {
                    done += 1
                    for v in reply.versions { pool.releaseValue(of: v) }
                }
                continue
            }
            nodes[e.to.index].handle(e, now: 1, out: &out)
            queue.append(contentsOf: out.messages)
            out.removeAll()
        }
        queue.removeAll(keepingCapacity: true)
        head = 0
    }
    for k in 0..<100_000 as Range<UInt64> {
        let v = pool.acquire(count: 256)
        queue.append(Envelope(from: .client(0), to: .node(rng.next(below: 5)), message: .request(ClientRequest(tag: k, op: .put, key: k, value: v))))
        if k % 64 == 0 { pump() }
    }
    pump()
    done = 0
    let start = monotonicNanos()
    var tag: UInt64 = 0
    while done < ops {
        for _ in 0..<64 {
            tag += 1
            let key = UInt64(rng.next(below: 100_000))
            if rng.next(below: 2) == 0 {
                queue.append(Envelope(from: .client(0), to: .node(rng.next(below: 5)), message: .request(ClientRequest(tag: tag, op: .get, key: key))))
            } else {
                let v = pool.acquire(count: 256)
                queue.append(Envelope(from: .client(0), to: .node(rng.next(below: 5)), message: .request(ClientRequest(tag: tag, op: .put, key: key, value: v))))
            }
        }
        pump()
    }
    return Double(done) / (Double(monotonicNanos() - start) / 1e9)
}
