import ArgumentParser
import BufferPool
import Foundation
import LoadGenerator
import Reports

#if canImport(Glibc)
import Glibc
#endif

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one benchmark against the cluster (or another target) and write a run folder.",
        discussion: """
            With no flag at all, runs the embedded default scenario: 5 nodes, n=3 w=2 r=2, YCSB workload A, 100,000 \
            keys of 256 B, zipfian keys, 64 requests in flight, 2 s warm-up and 10 s measured, into reports/latest. \
            Durations take units ns us ms s m. Distributions: const(1ms), uniform(1ms,5ms), exp(mean=2ms), \
            pareto(xm=0.5ms,alpha=3), lognormal(median=1ms,sigma=0.5), normal(mean=2ms,sd=0.5ms), \
            mix(0.9*DIST,0.1*DIST).
            """
    )

    @Option(help: "YAML scenario with the same keys as the long flags; flags override it.") var scenario: String?
    @Option(help: "cluster | noop (noop completes every request at once: the generator's ceiling).") var target: String?
    @Option(help: "inprocess | loopback.") var transport: String?
    @Option(help: "real | virtual.") var clock: String?
    @Option(help: "Nodes in the cluster (M ≥ n).") var nodes: String?
    @Option(name: .customLong("n"), help: "Replicas per key.") var n: String?
    @Option(name: .customLong("w"), help: "Write quorum.") var w: String?
    @Option(name: .customLong("r"), help: "Read quorum.") var r: String?
    @Option(help: "sloppy | strict.") var quorum: String?
    @Option(help: "server | client (who coordinates).") var routing: String?
    @Option(help: "Virtual nodes per node on the ring.") var vnodes: String?
    @Option(help: "vv | lww.") var versioning: String?
    @Option(name: .customLong("read-repair"), help: "on | off.") var readRepair: String?
    @Option(name: .customLong("hinted-handoff"), help: "on | off.") var hintedHandoff: String?
    @Option(name: .customLong("anti-entropy"), help: "on | off.") var antiEntropy: String?
    @Option(name: .customLong("ae-interval"), help: "Anti-entropy interval.") var aeInterval: String?
    @Option(help: "Per-request timeout at the coordinator (default 100ms).") var timeout: String?
    @Option(help: "a | b | c | d | f | visibility (YCSB core mixes).") var workload: String?
    @Option(name: .customLong("read-proportion")) var readProportion: String?
    @Option(name: .customLong("update-proportion")) var updateProportion: String?
    @Option(name: .customLong("insert-proportion")) var insertProportion: String?
    @Option(name: .customLong("rmw-proportion")) var rmwProportion: String?
    @Option(name: .customLong("delete-proportion")) var deleteProportion: String?
    @Option(help: "Records loaded before the measured phase (default 100000).") var keys: String?
    @Option(name: .customLong("value-size"), help: "Bytes, or a distribution of sizes (default 256).") var valueSize: String?
    @Option(help: "uniform | zipfian | latest | hotspot.") var distribution: String?
    @Option(help: "Load-generator threads (default: cores).") var threads: String?
    @Option(help: "Requests in flight at most, all threads together (default 64).") var concurrency: String?
    @Option(help: "Open loop at this many ops/s in total; omit for closed loop.") var rate: String?
    @Option(help: "constant | poisson (open-loop spacing).") var arrival: String?
    @Option(help: "Measured phase (default 10s).") var duration: String?
    @Option(help: "Warm-up, excluded from totals (default 2s).") var warmup: String?
    @Option(help: "Stop after this many measured operations instead of a duration.") var ops: String?
    @Option(help: "One-way delay of every message between nodes.") var delay: String?
    @Option(name: .customLong("delay-client")) var delayClient: String?
    @Option(name: .customLong("delay-write")) var delayWrite: String?
    @Option(name: .customLong("delay-write-ack")) var delayWriteAck: String?
    @Option(name: .customLong("delay-read")) var delayRead: String?
    @Option(name: .customLong("delay-read-response")) var delayReadResponse: String?
    @Option(help: "Probability that a message between nodes is lost.") var drop: String?
    @Option(name: .customLong("failure-rate")) var failureRate: String?
    @Option var mttr: String?
    @Option(name: .customLong("service-time")) var serviceTime: String?
    @Option(name: .customLong("crash-mode")) var crashMode: String?
    @Option(name: .customLong("probe-times")) var probeTimes: String?
    @Option(help: "Every random choice derives from it (default 1).") var seed: String?
    @Option(help: "Run folder (default reports/latest).") var out: String?
    @Flag(help: "No live progress line.") var quiet = false

    func settings() throws -> Settings {
        var s = Settings()
        if let scenario { try s.loadScenario(scenario) }
        let flags: [(String, String?)] = [
            ("target", target), ("transport", transport), ("clock", clock), ("nodes", nodes), ("n", n), ("w", w),
            ("r", r), ("quorum", quorum), ("routing", routing), ("vnodes", vnodes), ("versioning", versioning),
            ("read-repair", readRepair), ("hinted-handoff", hintedHandoff), ("anti-entropy", antiEntropy),
            ("ae-interval", aeInterval), ("timeout", timeout), ("workload", workload),
            ("read-proportion", readProportion), ("update-proportion", updateProportion),
            ("insert-proportion", insertProportion), ("rmw-proportion", rmwProportion),
            ("delete-proportion", deleteProportion), ("keys", keys), ("value-size", valueSize),
            ("distribution", distribution), ("threads", threads), ("concurrency", concurrency), ("rate", rate),
            ("arrival", arrival), ("duration", duration), ("warmup", warmup), ("ops", ops), ("delay", delay),
            ("delay-client", delayClient), ("delay-write", delayWrite), ("delay-write-ack", delayWriteAck),
            ("delay-read", delayRead), ("delay-read-response", delayReadResponse), ("drop", drop),
            ("failure-rate", failureRate), ("mttr", mttr), ("service-time", serviceTime), ("crash-mode", crashMode),
            ("probe-times", probeTimes), ("seed", seed), ("out", out),
        ]
        for (k, v) in flags { if let v { s.values[k] = v } }
        if quiet { s.values["quiet"] = "on" }
        return s
    }

    func run() throws {
        let s = try settings()
        let config = try s.runConfig()
        let outPath = s.string("out") ?? "reports/latest"
        let folder = URL(fileURLWithPath: outPath)
        try checkWritable(folder)
        let quiet = try s.onOff("quiet", default: false)
        let tty = isatty(STDERR_FILENO) != 0
        let runner = Runner(config: config)
        var lastPlain = 0.0
        if !quiet {
            runner.onPhase = { phase in
                if tty { FileHandle.standardError.write("\r\u{1B}[K") }
                FileHandle.standardError.write("quorumbench: \(phase)\n")
            }
            runner.onProgress = { elapsed, rate, p99, errors in
                let line = String(format: "[%6.1fs] %10.0f ops/s  p99 %8.3f ms  errors %d", elapsed, rate, p99 / 1000, errors)
                if tty {
                    FileHandle.standardError.write("\r\u{1B}[K" + line)
                } else if elapsed - lastPlain >= 5 {
                    lastPlain = elapsed
                    FileHandle.standardError.write(line + "\n")
                }
            }
        }
        let result = runner.run()
        if !quiet && tty { FileHandle.standardError.write("\r\u{1B}[K") }
        do {
            try RunReport.write(result, to: folder)
        } catch {
            FileHandle.standardError.write("quorumbench: cannot write the run folder \(outPath): \(error.localizedDescription)\n")
            throw ExitCode(1)
        }
        if result.virtualTimeStalled {
            FileHandle.standardError.write("quorumbench: virtual time stopped advancing (every operation completes in zero time with these delays); the run was cut short — give the messages a --delay\n")
            throw ExitCode(1)
        }
        let all = result.all
        let p99 = all.histogram.totalCount > 0 ? Double(all.histogram.valueAtPercentile(99)) / 1e6 : 0
        print(String(format: "%@: %.0f ops/s, p99 %.3f ms, availability %.4f%%, stale reads %d, lost writes %d%@ — %@/report.md",
                     config.target == .noop ? "noop" : "cluster",
                     Double(all.ok) / result.durationSeconds, p99,
                     all.attempted > 0 ? 100 * Double(all.ok) / Double(all.attempted) : 100, result.staleReads,
                     result.lostWrites, result.generatorBound ? " (GENERATOR-BOUND)" : "", outPath))
    }

    /// The run folder must be creatable and writable before the run starts.
    func checkWritable(_ folder: URL) throws {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let probe = folder.appendingPathComponent(".quorumbench-write-test")
            try Data().write(to: probe)
            try FileManager.default.removeItem(at: probe)
        } catch {
            throw UsageError("--out \(folder.path) cannot be written: \(error.localizedDescription)")
        }
    }
}

extension FileHandle {
    func write(_ s: String) { write(s.data(using: .utf8)!) }
}
