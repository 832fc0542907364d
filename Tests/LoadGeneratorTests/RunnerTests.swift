import Foundation
import Histogram
import SyncPrimitives
import Testing
@testable import LoadGenerator
@testable import ReplicationCore

func noopConfig(rate: Double?, duration: Double, concurrency: Int = 64, threads: Int = 1) -> RunConfig {
    var c = RunConfig()
    c.target = .noop
    c.keys = 1000
    c.threads = threads
    c.concurrency = concurrency
    c.rate = rate
    c.duration = UInt64(duration * 1e9)
    c.warmup = 200_000_000
    return c
}

@Suite("Load generator runs", .serialized)
struct RunnerTests {
    @Test("open loop keeps its rate within 2% against noop over 5 s")
    func openLoopRate() {
        let result = Runner(config: noopConfig(rate: 20_000, duration: 5)).run()
        let achieved = Double(result.all.attempted) / result.durationSeconds
        #expect(abs(achieved - 20_000) / 20_000 < 0.02, "achieved \(achieved) ops/s")
        // Not asserted: `generatorBound`, which also trips on a schedule lag p99 above 1 ms — a timing figure that
        // a debug build on a busy 2-core machine can exceed (it did, once, while a release build ran beside it).
        // The verdict itself is pinned by `generatorBoundVerdict`, where it cannot depend on the machine's load.
    }

    @Test("open loop with --ops: each thread sends its share on schedule, and the measured phase spans their intervals")
    func openLoopOps() {
        // 400 operations at 2,000 ops/s from 2 threads: the last one is due at 0.1995 s, and the phase ends one
        // interval later, at 0.2 s. Taken from a common pool 16 at a time, the first thread to find it empty ended
        // the phase with the other's operations still due: 0.19 s and a rate above the one asked. (Only a lower
        // bound: a busy machine can only make it later.)
        var c = noopConfig(rate: 2_000, duration: 60, threads: 2)
        c.ops = 400
        c.warmup = 0
        let r = Runner(config: c).run()
        #expect(r.all.attempted == 400)
        #expect(r.durationSeconds >= 0.2 && r.durationSeconds < 1, "\(r.durationSeconds) s")
    }

    @Test("an interval that ends before 1 s (virtual time) keeps its completions in one sample, not one each")
    func earlyIntervals() {
        // The measured phase begins at 0.3 s, after a quick load and a 0.1 s warm-up: the warm-up interval ends
        // at 0.3 s. Its completions were all taken for late ones (interval end − 1 s wrapped around), each handed
        // over alone with a histogram of its own.
        let mailbox = Locked<[IntervalSample]>([])
        var recorder = ThreadRecorder(thread: 0, mailbox: mailbox, origin: 300_000_000, now: 200_000_000)
        for i in 0..<1_000 { recorder.record(.read, latency: 1_000, ok: true, now: 200_000_000 + UInt64(i) * 10_000) }
        #expect(mailbox.withLock { $0.count } == 0)
        recorder.record(.read, latency: 1_000, ok: true, now: 300_000_000)  // the measured phase: interval 0
        recorder.record(.read, latency: 1_000, ok: true, now: 299_000_000)  // a warm-up one, late
        recorder.flush()
        let samples = mailbox.withLock { $0 }
        #expect(samples.map(\.interval) == [-1, -1, 0])
        #expect(samples.map { $0.ok[OpKind.read.rawValue] } == [1_000, 1, 1])
    }

    @Test("a rate the generator cannot keep is reported generator-bound, with its lag, not as delivered")
    func generatorBoundVerdict() {
        // One thread against noop tops out at a few million operations a second; ask for a billion. No warm-up:
        // so far behind, the intended schedule would not reach the end of one within the run.
        var config = noopConfig(rate: 1e9, duration: 1)
        config.warmup = 0
        let result = Runner(config: config).run()
        #expect(result.generatorBound)
        #expect(result.achievedRate < 0.95e9)
        #expect(result.scheduleLag.totalCount > 0 && result.scheduleLag.valueAtPercentile(99) > 0)
    }

    @Test("the schedule-lag verdict needs 100 sends: over fewer, p99 is the one slowest send")
    func lagVerdictSamples() {
        var r = Runner(config: noopConfig(rate: 1_000, duration: 0.2)).run()
        let rate = Double(r.all.attempted) / r.durationSeconds  // what was sent: never short of it
        var few = makeLatencyHistogram()
        for lag: UInt64 in [10_000, 20_000, 1_500_000] { few.record(lag) }
        r.scheduleLag = few
        #expect(!r.behindSchedule(rate: rate, lagLimit: 1_000_000))
        var many = makeLatencyHistogram()
        for i in 0..<1_000 { many.record(i % 50 == 0 ? 2_000_000 : 10_000) }  // 2% of sends 2 ms late
        r.scheduleLag = many
        #expect(r.behindSchedule(rate: rate, lagLimit: 1_000_000))
        #expect(!r.behindSchedule(rate: rate, lagLimit: 5_000_000))
    }

    @Test("coordinated omission: a 1 s stall in a 10 s constant-rate run reaches p99.9, closed loop hides it")
    func coordinatedOmission() {
        var open = noopConfig(rate: 2_000, duration: 10, concurrency: 4096)
        open.noopStall = (at: 4_000_000_000, for: 1_000_000_000)
        let o = Runner(config: open).run()
        var closed = noopConfig(rate: nil, duration: 10, concurrency: 1)
        closed.noopStall = (at: 4_000_000_000, for: 1_000_000_000)
        let c = Runner(config: closed).run()
        let openP999 = Double(o.all.histogram.valueAtPercentile(99.9)) / 1e6
        let closedP999 = Double(c.all.histogram.valueAtPercentile(99.9)) / 1e6
        // Open loop: ~10% of the requests were due during the stall; the worst waited the whole second.
        #expect(openP999 > 900, "open-loop p99.9 \(openP999) ms")
        #expect(Double(o.all.histogram.valueAtPercentile(95)) / 1e6 > 400)
        // Closed loop: one request waited; the stall is invisible at p99.9.
        #expect(closedP999 < 1, "closed-loop p99.9 \(closedP999) ms")
        #expect(Double(c.all.histogram.max) / 1e6 > 900)
    }

    @Test("closed loop against noop: warm-up kept out of the totals, intervals marked")
    func warmupExcluded() {
        var c = noopConfig(rate: nil, duration: 1)
        c.warmup = 1_000_000_000
        let r = Runner(config: c).run()
        let measured = r.intervals.filter { $0.index >= 0 }.reduce(0) { $0 + $1.ok.reduce(0, +) }
        let warm = r.intervals.filter { $0.index < 0 }.reduce(0) { $0 + $1.ok.reduce(0, +) }
        #expect(warm > 0 && measured > 0)
        #expect(r.all.ok == measured)
    }

    @Test("--ops ends the measured phase after that many operations")
    func opsCount() {
        var c = noopConfig(rate: nil, duration: 60, threads: 2)
        c.ops = 50_000
        let r = Runner(config: c).run()
        #expect(r.all.attempted == 50_000)
    }
}
