import BufferPool
import Foundation
import QuorumTestSupport
import Synchronization
import SyncPrimitives
import Testing
@testable import ClusterRuntime
@testable import ReplicationCore

/// Runs `threads` client threads against `cluster`, each doing `opsPerThread` random reads and writes on `keys`
/// keys, with up to `inFlight` requests outstanding per thread; records everything in `history`.
/// Updates carry the context of the thread's last read of the key, as the SPEC's `update` does.
func drive(_ cluster: InProcessCluster, history: History, threads: Int, opsPerThread: Int, keys: UInt64,
           inFlight: Int, seed: UInt64) {
    let done = DispatchSemaphore(value: 0)
    let pool = cluster.options.pool
    for t in 0..<threads {
        let port = cluster.ports[t]
        Thread {
            var rng = Xoshiro.derive(seed, UInt64(t))
            var contexts: [UInt64: (CausalContext, [UInt64])] = [:]
            var outstanding: [UInt64: (op: ReplicationCore.Operation, key: UInt64, start: UInt64, writeID: UInt64)] = [:]
            var issued = 0
            var nextTag: UInt64 = 1
            var lastProgress = monotonicNanos()
            while issued < opsPerThread || !outstanding.isEmpty {
                if monotonicNanos() - lastProgress > 20_000_000_000 {
                    // No reply for 20 s: every request has a timeout, so a reply was lost. Fail, do not hang.
                    let pending = port.coordinator.map { c in c.pending.inOrder().map { "\($0.tag)" } } ?? []
                    Issue.record("client \(t): no reply for 20 s; outstanding tags \(outstanding.keys.sorted().prefix(8)), coordinator pending \(pending.prefix(8)), timers \(port.timers.count), counters \(String(describing: port.coordinator?.counters))")
                    break
                }
                while issued < opsPerThread && outstanding.count < inFlight {
                    let key = UInt64(rng.next(below: Int(keys)))
                    let tag = nextTag
                    nextTag += 1
                    let now = monotonicNanos()
                    if rng.next(below: 2) == 0 {
                        outstanding[tag] = (.get, key, now, 0)
                        port.submit(ClientRequest(tag: tag, op: .get, key: key), now: now)
                    } else {
                        let writeID = UInt64(t + 1) << 40 | tag
                        let (context, saw) = contexts[key] ?? (.empty, [])
                        history.wrote(id: writeID, key: key, saw: saw)
                        outstanding[tag] = (.put, key, now, writeID)
                        port.submit(ClientRequest(tag: tag, op: .put, key: key,
                                                  value: WriteTag.value(id: writeID, size: 64, pool: pool),
                                                  context: context), now: now)
                    }
                    issued += 1
                }
                let n = port.poll(now: monotonicNanos()) { reply in
                    guard let request = outstanding.removeValue(forKey: reply.tag) else { return }
                    if reply.status == .ok {
                        if request.op == .get {
                            let ids = reply.versions.compactMap(WriteTag.id(of:))
                            history.read(key: request.key, start: request.start, returned: ids)
                            contexts[request.key] = (reply.context, ids)
                        } else {
                            history.acknowledged(id: request.writeID, at: monotonicNanos())
                            contexts[request.key] = (reply.context, [request.writeID])
                        }
                    }
                    Siblings.release(reply.versions, pool: pool)
                }
                if n == 0 { port.wait(until: monotonicNanos() + 1_000_000) } else { lastProgress = monotonicNanos() }
            }
            port.finish()
            done.signal()
        }.start()
    }
    for _ in 0..<threads { done.wait() }
}

/// Value buffers the nodes hold, in their stores and as hints (after ``InProcessCluster/stop()``): distinct
/// storage, since replicas share one buffer of a value.
func buffersHeld(by cluster: InProcessCluster) -> Int {
    var storage = Set<UInt>()
    for node in cluster.nodes {
        node.store.forEach { _, state in for v in state { if let b = v.value { storage.insert(b.storageID) } } }
        node.hints.forEach { _, _, state in for v in state { if let b = v.value { storage.insert(b.storageID) } } }
    }
    return storage.count
}

@Suite("In-process cluster")
struct InProcessClusterTests {
    @Test("with w + r > n and random delays, every read returns each write acknowledged before it began; nothing leaked",
          arguments: [Routing.server, .client], [false, true])
    func freshReads(routing: Routing, hosted: Bool) throws {
        var core = CoreConfig()
        core.n = 3
        core.w = 2
        core.r = 2
        core.routing = routing
        // Strict: a sloppy quorum that counts a fallback does not overlap the next read's quorum, so on a slow
        // machine (a suspected replica) it may be stale by design.
        core.quorum = .strict
        core.timeout = 2_000_000_000  // no request may fail: the check is about fresh reads
        let pool = BufferPool()
        // Hosted: the workers run on the two client threads, and the thread that finishes first must keep serving
        // the other one's requests to its nodes (finish()); otherwise three clients and two worker threads.
        let clients = hosted ? 2 : 3
        var options = ClusterOptions(
            core: core, workers: 2, clients: clients,
            delays: Delays(all: try Distribution.parse("exp(mean=200us)"),
                           client: try Distribution.parse("uniform(0ms,100us)")),
            seed: 5, pool: pool)
        options.hostWorkers = hosted
        let cluster = InProcessCluster(options: options)
        #expect(cluster.hosted == hosted)
        cluster.start()
        let history = History()
        drive(cluster, history: history, threads: clients, opsPerThread: 3000, keys: 12, inFlight: 8, seed: 5)
        cluster.stop()
        let violations = history.violations()
        #expect(history.readCount > 2000)
        #expect(violations.isEmpty, "\(violations.prefix(5))")
        #expect(cluster.counters.failed == 0, "\(cluster.counters)")
        #expect(pool.statistics().buffersInUse == buffersHeld(by: cluster))
    }

    @Test("the checker does catch stale reads: w + r ≤ n with one slow replica")
    func checkerCatchesStaleness() throws {
        var core = CoreConfig()
        core.n = 3
        core.w = 1
        core.r = 1
        core.readRepair = false
        core.timeout = 2_000_000_000
        let pool = BufferPool()
        let cluster = InProcessCluster(options: ClusterOptions(
            core: core, workers: 2, clients: 2,
            delays: Delays(all: try Distribution.parse("mix(0.7*const(10us),0.3*const(20ms))")),
            seed: 6, pool: pool))
        cluster.start()
        let history = History()
        drive(cluster, history: history, threads: 2, opsPerThread: 1500, keys: 4, inFlight: 8, seed: 6)
        cluster.stop()
        #expect(!history.violations().isEmpty)
    }

    @Test("stopping releases every in-flight buffer: what stays in use is what the stores hold")
    func noLeaks() throws {
        let pool = BufferPool()
        var core = CoreConfig()
        core.timeout = 50_000_000
        let cluster = InProcessCluster(options: ClusterOptions(
            core: core, workers: 2, clients: 2, delays: Delays(all: try Distribution.parse("exp(mean=1ms)")),
            drop: 0.05, seed: 7, pool: pool))
        cluster.start()
        drive(cluster, history: History(), threads: 2, opsPerThread: 2000, keys: 50, inFlight: 16, seed: 7)
        cluster.stop()
        #expect(pool.statistics().buffersInUse == buffersHeld(by: cluster))
        #expect(cluster.droppedMessages > 0)
    }

    @Test("--drop waits for its gate (the load generator opens it after the load): nothing lost before, all after")
    func dropGate() throws {
        // Every message between nodes is lost once dropping starts: each operation needs one (n = 3, w = r = 2).
        func run(opening: Bool) -> InProcessCluster {
            let gate = Gate()
            if opening { gate.open() }
            var core = CoreConfig()
            // Closed: nothing may fail, however slow the machine (ThreadSanitizer); open: every request times out.
            core.timeout = opening ? 20_000_000 : 5_000_000_000
            var options = ClusterOptions(core: core, workers: 2, clients: 1, drop: 1, seed: 9, pool: BufferPool())
            options.dropGate = gate
            let cluster = InProcessCluster(options: options)
            cluster.start()
            drive(cluster, history: History(), threads: 1, opsPerThread: 100, keys: 20, inFlight: 8, seed: 9)
            cluster.stop()
            return cluster
        }
        let closed = run(opening: false), open = run(opening: true)
        #expect(closed.droppedMessages == 0 && closed.counters.failed == 0 && closed.counters.coordinated >= 100,
                "\(closed.droppedMessages) dropped, \(closed.counters.failed) failed, \(closed.counters.coordinated) coordinated")
        #expect(open.droppedMessages > 0 && open.counters.failed > 0, "\(open.droppedMessages) dropped")
    }

    @Test("faults changing under load (down, wipe, stall, partition, slow): every request is answered, repair converges, no buffer leaks")
    func faultsUnderLoad() throws {
        let pool = BufferPool()
        var core = CoreConfig()
        core.routing = .client  // the client-side coordinator always answers, so the driver needs no timeout
        core.timeout = 30_000_000
        core.aeInterval = 20_000_000
        let plan = FaultPlan(scripted: [
            ScriptedFault(at: 0, for: 60_000_000, .kill([1])),
            ScriptedFault(at: 30_000_000, for: 60_000_000, .stall([2])),
            ScriptedFault(at: 80_000_000, for: 60_000_000, .partition([[0, 1], [2, 3, 4]])),
            ScriptedFault(at: 100_000_000, for: 60_000_000, .slow([4], .constant(1_000_000))),
            ScriptedFault(at: 150_000_000, for: 40_000_000, .kill([3])),
        ])
        let faults = FaultState(nodes: 5, slowDelays: plan.slowDelays, crashMode: .wipe)
        let cluster = InProcessCluster(options: ClusterOptions(core: core, workers: 2, clients: 2, seed: 3, pool: pool,
                                                               faults: faults))
        cluster.start()
        let timeline = plan.timeline(nodes: 5, horizon: 1_000_000_000, seed: 3)
        let controller = Thread {
            let origin = monotonicNanos()
            for (at, conditions) in timeline {
                while monotonicNanos() < origin + at { usleep(500) }
                faults.set(conditions)
                cluster.wakeAll()
            }
            faults.set(Array(repeating: NodeCondition(), count: 5))
            cluster.wakeAll()
        }
        controller.start()
        drive(cluster, history: History(), threads: 2, opsPerThread: 3000, keys: 200, inFlight: 8, seed: 3)
        usleep(250_000)
        cluster.stop()
        cluster.settle()
        let divergence = cluster.divergence()
        #expect(divergence.keys.isEmpty && divergence.trees == 0)
        #expect(cluster.nodes.allSatisfy { $0.hints.count == 0 })
        #expect(pool.statistics().buffersInUse == buffersHeld(by: cluster))
    }
}
