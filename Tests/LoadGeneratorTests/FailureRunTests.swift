import ClusterRuntime
import Foundation
import Testing
@testable import LoadGenerator
@testable import ReplicationCore

/// A short in-process cluster run with faults.
func faultConfig(seconds: Double = 4, _ edit: (inout RunConfig) -> Void = { _ in }) -> RunConfig {
    var c = RunConfig()
    c.keys = 2_000
    c.threads = 2
    c.concurrency = 16
    c.duration = UInt64(seconds * 1e9)
    c.warmup = 300_000_000
    c.distribution = .uniform
    edit(&c)
    return c
}

/// What every fault run must show after quiescence and repair in `vv` mode.
func expectNoLoss(_ r: RunResult, _ what: String) {
    #expect(r.lostWrites == 0, "\(what): lost \(r.lostWrites) writes, e.g. \(r.lostWriteSamples.prefix(3))")
    #expect(r.divergentKeys == 0, "\(what): \(r.divergentKeys) keys differ between replicas after repair")
    #expect(r.divergentTrees == 0, "\(what): \(r.divergentTrees) Merkle roots differ after repair")
    #expect(r.all.ok > 1_000, "\(what): only \(r.all.ok) operations succeeded")
}

@Suite("No lost write under faults", .serialized)
struct FailureRunTests {
    @Test("failure-rate 0.1, pause mode: available through sloppy quorums, hints stored and delivered, nothing lost")
    func failureRatePause() {
        let r = Runner(config: faultConfig { $0.faults.failureRate = 0.1 }).run()
        expectNoLoss(r, "failure-rate 0.1")
        #expect(r.counters.hintsStored > 0)
        #expect(r.counters.hintsDelivered > 0)
        #expect(r.intervals.contains { $0.index >= 0 && $0.nodesUp < 5 })
        #expect(Double(r.all.ok) / Double(r.all.attempted) > 0.99)
    }

    @Test("a partition that splits the cluster for 3 s heals and converges")
    func partition() {
        let r = Runner(config: faultConfig(seconds: 4.5) {
            $0.faults.scripted = [ScriptedFault(at: 500_000_000, for: 3_000_000_000, .partition([[0, 1], [2, 3, 4]]))]
        }).run()
        expectNoLoss(r, "partition")
        #expect(r.partitionedMessages > 0)
    }

    @Test("deletes in real time: tombstones purged, nothing stale, nothing lost")
    func deletes() {
        // Zipfian over 20,000 keys: the cold ones sit untouched past the 1 s grace and their tombstones are purged.
        // Before the oracle knew purges, the default scenario with 10% deletes counted 5,497 stale reads and 14,329
        // lost writes in 4 s.
        let r = Runner(config: faultConfig(seconds: 3) {
            $0.keys = 20_000
            $0.distribution = .zipfian
            $0.proportions = [0.45, 0.45, 0, 0, 0.1]
        }).run()
        expectNoLoss(r, "10% deletes")
        #expect(r.staleReads == 0, "\(r.staleReads) stale reads")
        #expect(r.counters.tombstonesPurged > 0)
    }

    @Test("1% message loss")
    func drop() {
        let r = Runner(config: faultConfig(seconds: 3) { $0.drop = 0.01 }).run()
        expectNoLoss(r, "drop 1%")
        #expect(r.droppedMessages > 0)
    }

    @Test("one node at a time killed and wiped, w = 2: rebuilt by repair, nothing lost")
    func wipeOneAtATime() {
        let r = Runner(config: faultConfig {
            $0.faults.crashMode = .wipe
            $0.faults.scripted = [
                ScriptedFault(at: 300_000_000, for: 1_000_000_000, .kill([1])),
                ScriptedFault(at: 1_800_000_000, for: 1_000_000_000, .kill([3])),
            ]
        }).run()
        expectNoLoss(r, "wipe one at a time")
        #expect(r.counters.aeKeysRepaired + r.counters.readRepairs > 0)
    }

    @Test("failure-rate in wipe mode can truly lose a write: each loss reported was held (or superseded by a write held) only by wiped nodes")
    func wipeLosses() {
        // w = 1 with no hints and no anti-entropy: a write often lives on its coordinator alone for a while.
        func config(_ mode: CrashMode) -> RunConfig {
            faultConfig {
                $0.core.w = 1
                $0.core.r = 1
                $0.core.hintedHandoff = false
                $0.core.antiEntropy = false
                $0.faults.failureRate = 0.3
                $0.faults.mttr = 300_000_000
                $0.faults.crashMode = mode
                $0.traceWipes = true
            }
        }
        let wiped = Runner(config: config(.wipe)).run()
        #expect(wiped.lostWrites > 0, "the scenario is meant to lose writes")
        #expect(wiped.unexplainedLosses == 0,
                "\(wiped.unexplainedLosses) of \(wiped.lostWrites) losses: neither the write nor one superseding it was on a wiped node")
        let paused = Runner(config: config(.pause)).run()
        #expect(paused.lostWrites == 0, "the same faults in pause mode lose nothing")
    }

    @Test("lww loses concurrent updates of hot keys; vv keeps them as siblings (same run)")
    func lwwAgainstVV() {
        // In virtual time: whether a key still holds siblings once the run ends depends on which of its last writes
        // saw which, and in real time that is scheduling (one CI run of this test ended with none). A seed fixes it.
        func run(_ v: Versioning) -> RunResult {
            Runner(config: faultConfig(seconds: 2) {
                $0.clock = "virtual"
                $0.delays = Delays(all: .exponential(mean: 1_000_000))
                $0.keys = 4
                $0.core.versioning = v
                $0.ops = 6_000
            }).run()
        }
        let lww = run(.lww), vv = run(.vv)
        #expect(lww.lostWrites > 0)
        #expect(lww.maxSiblings == 1)
        #expect(vv.lostWrites == 0)
        #expect(vv.maxSiblings > 1)
    }
}
