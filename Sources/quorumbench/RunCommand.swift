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
            mix(0.9*DIST,0.1*DIST), hlog(FILE[,TAG]). Exit status: 0; 64 for a bad flag, value or scenario; 1 when \
            the run cannot go on, when it lost an acknowledged write under vv with --crash-mode pause (the line \
            names the write and the seed that replays it), or when its consistency check outgrew --check-memory \
            (the measured phase ends there; the folder is written); 130 (SIGINT, Ctrl-C) or 143 (SIGTERM) when a \
            signal ended the measured phase early (the folder is written; a second signal quits at once).
            """
    )

    @OptionGroup var options: RunOptions

    func run() throws {
        let s = try options.settings()
        let config = try s.runConfig()
        let outPath = s.string("out") ?? "reports/latest"
        let folder = URL(fileURLWithPath: outPath)
        try RunCommand.checkWritable(folder)
        let quiet = try s.onOff("quiet", default: false)
        let tty = isatty(STDERR_FILENO) != 0
        if let warning = config.timeoutWarning { FileHandle.standardError.write("quorumbench: warning: \(warning)\n") }
        let runner = Runner(config: config)
        runner.leaveForExit = true
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
        let signals = RunCommand.stopOnSignals(runner.stop)
        let result = runner.run()
        RunCommand.restoreSignals(signals)
        if !quiet && tty { FileHandle.standardError.write("\r\u{1B}[K") }
        do {
            try RunReport.write(result, to: folder)
        } catch {
            FileHandle.standardError.write("quorumbench: cannot write the run folder \(outPath): \(error.localizedDescription)\n")
            throw ExitCode(1)
        }
        if result.virtualTimeStalled {
            FileHandle.standardError.write("quorumbench: \(RunReport.stallLine(result))\n")
            throw ExitCode(1)
        }
        if result.timeStoodStill { FileHandle.standardError.write("quorumbench: warning: \(RunReport.stoodStill)\n") }
        if RunReport.sawFewFailures(result) {
            FileHandle.standardError.write("quorumbench: warning: \(RunReport.fewFailuresLine(result))\n")
        }
        let all = result.all
        let p99 = Double(HistogramCounts(all.histogram).value(atPercentile: 99)) / 1e6
        let consistency = config.consistencyUnchecked ? "consistency not checked"
            : "stale reads \(result.staleReads), lost writes \(result.lostWrites)"
        print(String(format: "%@: %@, p99 %.3f ms, availability %.4f%%, %@%@ — %@/report.md",
                     config.target == .noop ? "noop" : "cluster",
                     result.timeStoodStill ? "no rate (zero virtual time)" : RunReport.ops(result.rate(all.ok)) + " ops/s", p99,
                     all.attempted > 0 ? 100 * Double(all.ok) / Double(all.attempted) : 100, consistency,
                     result.bound.map { " (\($0.rawValue.uppercased()))" } ?? "", outPath))
        if let failed = RunReport.failedCheck(result) {
            FileHandle.standardError.write("quorumbench: \(failed)\n")
            throw ExitCode(1)
        }
        if let stop = result.stoppedEarly {
            FileHandle.standardError.write("quorumbench: \(RunReport.stoppedLine(result, stop))\n")
            if case .signal(let number) = stop { throw ExitCode(128 + number) }
            throw ExitCode(1)
        }
    }

    /// SIGINT and SIGTERM end the measured phase at once; the run then drains, checks and writes its folder as
    /// after its duration (wrk and wrk2 print what they measured on Ctrl-C too), and exits 128 + the signal. A
    /// signal outside the measured phase (loading, warming up, checking), or a second one, exits at once.
    static func stopOnSignals(_ stop: StopRequest) -> [DispatchSourceSignal] {
        onSignals { number in
            let name = EarlyStop.signal(number).signalName!
            if stop.request(.signal(number)) {
                FileHandle.standardError.write("\nquorumbench: \(name): ending the measured phase now; the run "
                    + "folder will hold what was measured (again to quit at once)\n")
                signal(number, SIG_DFL)
            } else {
                FileHandle.standardError.write("\nquorumbench: \(name) outside the measured phase: quitting, "
                    + "no run folder written\n")
                Glibc.exit(128 + number)
            }
        }
    }

    /// Calls `handle` (on a dispatch queue) for each SIGINT and SIGTERM instead of their default action, which
    /// `handle` may put back (`signal(number, SIG_DFL)`) so that the next one ends the process.
    static func onSignals(_ handle: @escaping @Sendable (Int32) -> Void) -> [DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)  // the source handles it (the default action would end the process first)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handle(number) }
            source.resume()
            return source
        }
    }

    /// Back to the default action of SIGINT and SIGTERM (ending the process), once the run is over.
    static func restoreSignals(_ sources: [DispatchSourceSignal]) {
        for source in sources { source.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }

    /// The run (or sweep) folder must be creatable and writable before anything runs.
    static func checkWritable(_ folder: URL) throws {
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
