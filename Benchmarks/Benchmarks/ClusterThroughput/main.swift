import BufferPool
import ClusterRuntime
import Foundation
import ReplicationCore
import SyncPrimitives

// In-process cluster throughput without the load generator: closed loop, YCSB-A (50% read, 50% blind update),
// uniform keys, 256 B values, `inFlight` requests outstanding across `clients` threads; n=3 w=2 r=2 and
// n=1 w=1 r=1 measured in one run.
//   swift run -c release --package-path Benchmarks ClusterThroughput [seconds] [clients] [workers]
// Environment: QB_CORE_ONLY=1 measures the core alone on one thread (no runtime); QB_LWW=1 uses lww there;
// QB_TRACE=1 prints the operations completed every 250 ms.

let args = CommandLine.arguments
let seconds = args.count > 1 ? Double(args[1])! : 3
let clients = args.count > 2 ? Int(args[2])! : 1
let workers = args.count > 3 ? Int(args[3])! : 2
let keys: UInt64 = 100_000
let inFlight = 64

func run(n: Int, w: Int, r: Int) -> Double {
    var core = CoreConfig()
    core.nodes = 5
    core.n = n
    core.w = w
    core.r = r
    let pool = BufferPool.shared
    let cluster = InProcessCluster(options: ClusterOptions(core: core, workers: workers, clients: clients, seed: 1))
    cluster.start()
    let completed = Locked([Int](repeating: 0, count: clients))
    let phase = Locked(0)  // 0 load, 1 warm, 2 measure, 3 stop
    let done = DispatchSemaphore(value: 0)
    for t in 0..<clients {
        let port = cluster.ports[t]
        Thread {
            var rng = Xoshiro.derive(7, UInt64(t))
            var outstanding = 0
            var tag: UInt64 = 0
            var loadKey = UInt64(t)
            var count = 0
            var lastPhase = 0
            while true {
                let p = phase.withLock { $0 }
                if p != lastPhase {
                    if p == 2 { count = 0 }
                    lastPhase = p
                }
                if p == 3 && outstanding == 0 { break }
                while p != 3 && outstanding < inFlight / clients {
                    tag += 1
                    let now = monotonicNanos()
                    if p == 0 {
                        if loadKey >= keys { break }
                        let v = pool.acquire(count: 256)
                        v.store(tag)
                        port.submit(ClientRequest(tag: tag, op: .put, key: loadKey, value: v), now: now)
                        loadKey += UInt64(clients)
                    } else if rng.next(below: 2) == 0 {
                        port.submit(ClientRequest(tag: tag, op: .get, key: UInt64(rng.next(below: Int(keys)))), now: now)
                    } else {
                        let v = pool.acquire(count: 256)
                        v.store(tag)
                        port.submit(ClientRequest(tag: tag, op: .put, key: UInt64(rng.next(below: Int(keys))), value: v), now: now)
                    }
                    outstanding += 1
                }
                let got = port.poll(now: monotonicNanos()) { reply in
                    outstanding -= 1
                    count += 1
                    for v in reply.versions { pool.releaseValue(of: v) }
                }
                if got == 0 {
                    if p == 0 && loadKey >= keys && outstanding == 0 {
                        completed.withLock { $0[t] = -1 }
                        while phase.withLock({ $0 }) == 0 { usleep(1000) }
                        continue
                    }
                    port.wait(until: monotonicNanos() + 1_000_000)
                }
                if p == 2 && got > 0 { completed.withLock { $0[t] = count } }
            }
            completed.withLock { $0[t] = count }
            done.signal()
        }.start()
    }
    while completed.withLock({ $0.contains { $0 != -1 } }) { usleep(10_000) }
    phase.withLock { $0 = 1 }
    usleep(500_000)
    phase.withLock { $0 = 2 }
    let start = monotonicNanos()
    var last = 0
    for _ in 0..<Int(seconds * 4) {
        usleep(250_000)
        let now = completed.withLock { $0.reduce(0, +) }
        if ProcessInfo.processInfo.environment["QB_TRACE"] != nil { print("  +\(now - last)") }
        last = now
    }
    let ops = completed.withLock { $0.reduce(0, +) }
    let elapsed = Double(monotonicNanos() - start) / 1e9
    phase.withLock { $0 = 3 }
    for _ in 0..<clients { done.wait() }
    cluster.stop()
    let c = cluster.counters
    print(String(format: "n=%d w=%d r=%d: %.0f ops/s (%d ops in %.2f s), failed %d, read repairs %d",
                 n, w, r, Double(ops) / elapsed, ops, elapsed, c.failed, c.readRepairs))
    return Double(ops) / elapsed
}

if ProcessInfo.processInfo.environment["QB_CORE_ONLY"] != nil {
    print(String(format: "core only, one thread: n=3 %.0f ops/s, n=1 %.0f ops/s",
                 coreOnly(n: 3, w: 2, r: 2, ops: 1_000_000), coreOnly(n: 1, w: 1, r: 1, ops: 1_000_000)))
    exit(0)
}
let q3 = run(n: 3, w: 2, r: 2)
let q1 = run(n: 1, w: 1, r: 1)
print(String(format: "cost ratio n=3 / n=1: %.2f (throughput %.0f vs %.0f ops/s)", q1 / q3, q3, q1))
