import Benchmark
import BufferPool
import CJemalloc
import Foundation
import LoadGenerator
import Synchronization
import SyncPrimitives

#if canImport(Glibc)
import Glibc
#endif

// Buffer-pool benchmarks. Every figure is compared with a baseline measured in the same run: `malloc`/`free`
// (which is jemalloc in this process) and raw `mallocx`/`sdallocx` with jemalloc's own thread cache.
// scripts/benchmarks.sh turns the p50s into
// ratios in reports/benchmarks.md. Times are per iteration of 1,000 operations (ns), so that the integer
// nanoseconds the tool reports keep three significant digits.

let sizes = [64, 256, 4096]
let batch = 1000

let benchmarks: @Sendable () -> Void = {
    recorderBenchmarks()
    let base = Benchmark.Configuration(
        metrics: [.wallClock], timeUnits: .nanoseconds, warmupIterations: 100, scalingFactor: .one, maxDuration: .seconds(2),
        maxIterations: 20_000)

    // MARK: same thread: acquire + release

    for size in sizes {
        Benchmark("same-thread/pool/\(size)B", configuration: base) { benchmark in
            let pool = BufferPool.shared
            for _ in 0..<batch {
                let b = pool.acquire(count: size)
                blackHole(b)
                pool.release(b)
            }
        }
        Benchmark("same-thread/mallocx/\(size)B", configuration: base) { benchmark in
            for _ in 0..<batch {
                let p = mallocx(size, 0)
                blackHole(p)
                sdallocx(p, size, 0)
            }
        }
        Benchmark("same-thread/malloc/\(size)B", configuration: base) { benchmark in
            for _ in 0..<batch {
                let p = malloc(size)
                blackHole(p)
                free(p)
            }
        }
    }

    // MARK: cross thread: this thread acquires, a consumer thread releases

    // A million buffers per iteration: the consumer thread's start and exit are outside the measurement and
    // negligible beside it.
    var crossConfig = base
    crossConfig.scalingFactor = .mega
    crossConfig.warmupIterations = 1
    crossConfig.maxDuration = .seconds(3)

    for size in sizes {
        Benchmark("cross-thread/pool/\(size)B", configuration: crossConfig) { benchmark in
            let pool = BufferPool.shared
            let pipe = CrossThreadPipe<PoolBuffer> { pool.release($0) }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { pipe.send(pool.acquire(count: size)) }
            pipe.drain()
            benchmark.stopMeasurement()
            pipe.stop()
        }
        Benchmark("cross-thread/mallocx/\(size)B", configuration: crossConfig) { benchmark in
            let pipe = CrossThreadPipe<UInt> { sdallocx(UnsafeMutableRawPointer(bitPattern: $0), size, 0) }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { pipe.send(UInt(bitPattern: mallocx(size, 0))) }
            pipe.drain()
            benchmark.stopMeasurement()
            pipe.stop()
        }
        Benchmark("cross-thread/malloc/\(size)B", configuration: crossConfig) { benchmark in
            let pipe = CrossThreadPipe<UInt> { free(UnsafeMutableRawPointer(bitPattern: $0)) }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { pipe.send(UInt(bitPattern: malloc(size))) }
            pipe.drain()
            benchmark.stopMeasurement()
            pipe.stop()
        }
    }

    // MARK: cross thread, paired: pool and mallocx back to back in every iteration, so that both see the same
    // machine; the p50 of the per-iteration ratio is what the requirement is checked on.

    for size in sizes {
        let metric = BenchmarkMetric.custom("pool / mallocx (x1000)", useScalingFactor: false)
        Benchmark(
            "cross-thread-paired/\(size)B",
            configuration: .init(metrics: [metric], warmupIterations: 2, maxDuration: .seconds(4), maxIterations: 40)
        ) { benchmark in
            let n = 200_000
            let pool = BufferPool.shared
            func timed(_ body: () -> Void) -> UInt64 {
                let start = monotonicNanos()
                body()
                return monotonicNanos() - start
            }
            let poolPipe = CrossThreadPipe<PoolBuffer> { pool.release($0) }
            let poolTime = timed {
                for _ in 0..<n { poolPipe.send(pool.acquire(count: size)) }
                poolPipe.drain()
            }
            poolPipe.stop()
            let rawPipe = CrossThreadPipe<UInt> { sdallocx(UnsafeMutableRawPointer(bitPattern: $0), size, 0) }
            let rawTime = timed {
                for _ in 0..<n { rawPipe.send(UInt(bitPattern: mallocx(size, 0))) }
                rawPipe.drain()
            }
            rawPipe.stop()
            benchmark.measurement(metric, Int(1000 * Double(poolTime) / Double(max(rawTime, 1))))
        }
    }

    // MARK: memory: churn 1 GiB through a 64 MiB live set

    Benchmark(
        "churn/pool/1GiB-live-64MiB",
        configuration: .init(
            metrics: [
                .wallClock,
                .custom("arena resident (MiB)", useScalingFactor: false),
                .custom("process RSS growth (MiB)", useScalingFactor: false),
            ], warmupIterations: 0, maxDuration: .seconds(60), maxIterations: 1)
    ) { benchmark in
        let figures = Churn.run(pool: BufferPool(), liveBytes: 64 << 20, churnBytes: 1 << 30)
        benchmark.measurement(.custom("arena resident (MiB)", useScalingFactor: false), figures.arenaResident >> 20)
        benchmark.measurement(
            .custom("process RSS growth (MiB)", useScalingFactor: false), figures.processGrowth >> 20)
        print("churn: arena resident \(figures.arenaResident) B, process RSS growth \(figures.processGrowth) B, live \(figures.live) B")
    }
}

/// A single-producer single-consumer ring to a consumer thread that applies `consume` to every item.
final class CrossThreadPipe<Item>: @unchecked Sendable {
    private let capacity = 4096
    private let slots: UnsafeMutablePointer<Item>
    private let head = Atomic<Int>(0)  // next slot the consumer reads
    private let tail = Atomic<Int>(0)  // next slot the producer writes
    private let running = Atomic<Bool>(true)
    private let finished = Atomic<Bool>(false)
    private var cachedHead = 0

    init(consume: @escaping @Sendable (Item) -> Void) {
        slots = .allocate(capacity: capacity)
        let thread = Thread { [self] in
            var h = 0
            while true {
                let t = tail.load(ordering: .acquiring)
                if h == t {
                    if !running.load(ordering: .relaxed) { break }
                    continue
                }
                while h != t {
                    consume((slots + (h & (capacity - 1))).move())
                    h &+= 1
                }
                head.store(h, ordering: .releasing)
            }
            finished.store(true, ordering: .releasing)
        }
        thread.start()
    }

    @inline(__always)
    func send(_ item: Item) {
        let t = tail.load(ordering: .relaxed)
        if t &- cachedHead == capacity {
            repeat { cachedHead = head.load(ordering: .acquiring) } while t &- cachedHead == capacity
        }
        (slots + (t & (capacity - 1))).initialize(to: item)
        tail.store(t &+ 1, ordering: .releasing)
    }

    /// Waits until the consumer has taken everything sent so far.
    func drain() {
        let t = tail.load(ordering: .relaxed)
        while head.load(ordering: .acquiring) != t {}
    }

    func stop() {
        drain()
        running.store(false, ordering: .relaxed)
        while !finished.load(ordering: .acquiring) {}
        slots.deallocate()
    }
}

/// Churns allocations of mixed sizes through a fixed live set and reports the memory left resident.
enum Churn {
    struct Figures {
        var arenaResident: Int
        var processGrowth: Int
        var live: Int
    }

    /// Sizes log-uniform from 16 B to 64 KiB; each step releases a random live buffer and acquires a new one of a
    /// random size, keeping the live bytes at `liveBytes`, until `churnBytes` have been acquired.
    static func run(pool: BufferPool, liveBytes: Int, churnBytes: Int) -> Figures {
        var rng = SplitMix64(seed: 42)
        func randomSize() -> Int {
            let lg = 4.0 + Double(rng.next() % 1_000_000) / 1_000_000 * 12.0  // 2^4 … 2^16
            return Int(pow(2.0, lg))
        }
        let before = ProcessResident.bytes()
        var live: [PoolBuffer] = []
        var liveSum = 0
        while liveSum < liveBytes {
            let b = pool.acquire(count: randomSize())
            b.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 7) }
            live.append(b)
            liveSum += b.count
        }
        var churned = 0
        while churned < churnBytes {
            let i = Int(rng.next() % UInt64(live.count))
            liveSum -= live[i].count
            pool.release(live[i])
            let b = pool.acquire(count: randomSize())
            b.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 9) }
            churned += b.count
            liveSum += b.count
            // Keep the live set at its size: shrink or grow by releasing or adding buffers.
            while liveSum > liveBytes + (64 << 10), live.count > 1 {
                let j = Int(rng.next() % UInt64(live.count))
                if j == i { continue }
                liveSum -= live[j].count
                pool.release(live[j])
                live.swapAt(j, live.count - 1)
                live.removeLast()
            }
            if i < live.count { live[i] = b } else { live.append(b) }
        }
        // Let the arena's decay return freed pages, as a running store would between bursts.
        Thread.sleep(forTimeInterval: 1.5)
        let stats = pool.statistics()
        let figures = Figures(
            arenaResident: stats.arenaResident, processGrowth: ProcessResident.bytes() - before, live: liveSum)
        for b in live { pool.release(b) }
        return figures
    }
}

enum ProcessResident {
    static func bytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - Recording latencies (the load generator's hot path)

let recorderBenchmarks: @Sendable () -> Void = {
    Benchmark(
        "recorder/record-1000-values",
        configuration: .init(metrics: [.wallClock], timeUnits: .nanoseconds, warmupIterations: 100,
                             maxDuration: .seconds(2), maxIterations: 20_000)
    ) { benchmark in
        var recorder = ThreadRecorder(thread: 0, mailbox: Locked([]), origin: 0, now: 1)
        // Latencies from 1 µs to about 1 s, drawn before the measurement.
        var value: UInt64 = 12_345
        let latencies: [UInt64] = (0..<batch).map { _ in
            value = value &* 6364136223846793005 &+ 1442695040888963407
            return 1000 + (value >> 34)
        }
        let now: UInt64 = 2
        benchmark.startMeasurement()
        for latency in latencies {
            recorder.record(.read, latency: latency, ok: true, now: now)
        }
        benchmark.stopMeasurement()
        blackHole(recorder)
    }
}
