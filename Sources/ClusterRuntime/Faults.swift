import Foundation
import ReplicationCore
import Synchronization

/// What a node that goes down keeps.
public enum CrashMode: String, Sendable, CaseIterable {
    /// It keeps its data (a pause, a reboot with its disk).
    case pause
    /// It comes back empty, under a new incarnation.
    case wipe
}

/// One scripted fault of a scenario file; times from the start of the measured phase, nodes numbered from 0 here.
public struct ScriptedFault: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Down: sends nothing, receives nothing (with crash-mode wipe it returns empty).
        case kill([Int])
        /// Frozen like SIGSTOP: messages wait and are handled when it resumes.
        case stall([Int])
        /// Messages between the groups are lost (nodes in no group form one more group).
        case partition([[Int]])
        /// Extra delay on everything the nodes send.
        case slow([Int], Distribution)
    }
    public var at: UInt64
    public var length: UInt64
    public var kind: Kind

    public init(at: UInt64, for length: UInt64, _ kind: Kind) {
        self.at = at
        self.length = length
        self.kind = kind
    }
}

/// The faults of a run: random failures (`--failure-rate`, `--mttr`, `--crash-mode`) and scripted ones.
public struct FaultPlan: Sendable, Equatable {
    public var failureRate = 0.0
    public var mttr: UInt64 = 500_000_000
    public var crashMode: CrashMode = .pause
    public var scripted: [ScriptedFault] = []

    public init(failureRate: Double = 0, mttr: UInt64 = 500_000_000, crashMode: CrashMode = .pause,
                scripted: [ScriptedFault] = []) {
        self.failureRate = failureRate
        self.mttr = mttr
        self.crashMode = crashMode
        self.scripted = scripted
    }

    public var isEmpty: Bool { failureRate <= 0 && scripted.isEmpty }

    /// The distributions of the scripted `slow` faults, in order (a condition's `slow` indexes them from 1).
    public var slowDelays: [Distribution] {
        scripted.compactMap { if case .slow(_, let d) = $0.kind { return d } else { return nil } }
    }

    /// Every change of the nodes' conditions from time 0 (the start of the measured phase) to `horizon`, as full
    /// snapshots: element 0 is the state at time 0. Random failures: each node alternates up and down periods
    /// drawn from exponential distributions with means mttr·(1−P)/P and mttr, starting in its stationary state,
    /// independently of the others; deterministic for a seed.
    public func timeline(nodes: Int, horizon: UInt64, seed: UInt64) -> [(at: UInt64, conditions: [NodeCondition])] {
        enum Change { case down(Int, Int), stall(Int, Int), slow(Int, Int), partition([Int]) }
        var changes: [(at: UInt64, order: Int, change: Change)] = []
        var order = 0
        func add(_ at: UInt64, _ c: Change) {
            changes.append((at, order, c))
            order += 1
        }
        if failureRate > 0 {
            let p = min(failureRate, 0.999)
            let upMean = Double(mttr) * (1 - p) / p, downMean = Double(mttr)
            for node in 0..<nodes {
                var rng = Xoshiro.derive(seed, 0x4641_494C &+ UInt64(node))
                var t = 0.0
                var down = rng.nextDouble() < p
                if down { add(0, .down(node, 1)) }
                while t < Double(horizon) {
                    let length = -(down ? downMean : upMean) * log1p(-rng.nextDouble())
                    t += length
                    guard t < Double(horizon) else { break }
                    add(UInt64(t), .down(node, down ? -1 : 1))
                    down.toggle()
                }
            }
        }
        var slowIndex = 0
        for f in scripted {
            let end = f.at &+ f.length
            switch f.kind {
            case .kill(let ns):
                for n in ns { add(f.at, .down(n, 1)); add(end, .down(n, -1)) }
            case .stall(let ns):
                for n in ns { add(f.at, .stall(n, 1)); add(end, .stall(n, -1)) }
            case .slow(let ns, _):
                slowIndex += 1
                for n in ns { add(f.at, .slow(n, slowIndex)); add(end, .slow(n, 0)) }
            case .partition(let groups):
                var group = [Int](repeating: groups.count + 1, count: nodes)
                for (g, members) in groups.enumerated() { for m in members where m < nodes { group[m] = g + 1 } }
                add(f.at, .partition(group))
                add(end, .partition([]))
            }
        }
        changes.sort { ($0.at, $0.order) < ($1.at, $1.order) }
        var state = [NodeCondition](repeating: NodeCondition(), count: nodes)
        var downs = [Int](repeating: 0, count: nodes), stalls = downs
        var out: [(UInt64, [NodeCondition])] = [(0, state)]
        for c in changes {
            switch c.change {
            case .down(let n, let d): downs[n] += d; state[n].down = downs[n] > 0
            case .stall(let n, let d): stalls[n] += d; state[n].stalled = stalls[n] > 0
            case .slow(let n, let i): state[n].slow = i
            case .partition(let g): for n in 0..<nodes { state[n].group = g.isEmpty ? 0 : g[n] }
            }
            if out[out.count - 1].0 == c.at { out[out.count - 1].1 = state } else { out.append((c.at, state)) }
        }
        return out
    }
}

extension Node {
    /// The node goes down in `mode`; before a wipe, `onWipe` sees every version it held (data and hints).
    func fail(_ mode: CrashMode, onWipe: ((_ node: Int, _ versions: [Version]) -> Void)?) {
        if mode == .wipe, let onWipe { onWipe(id, Quiescence.held(by: self)) }
        crash(wipe: mode == .wipe)
    }
}

/// One node's condition at a moment.
public struct NodeCondition: Sendable, Equatable {
    public var down = false
    public var stalled = false
    /// Partition group (0: no partition).
    public var group = 0
    /// 1-based index into the plan's slow delays (0: not slow).
    public var slow = 0

    public init() {}

    /// Whether messages from a node in `self`'s group reach one in `other`'s.
    @inline(__always)
    public func reaches(_ other: NodeCondition) -> Bool { group == 0 || other.group == 0 || group == other.group }

    var packed: UInt64 {
        (down ? 1 : 0) | (stalled ? 2 : 0) | UInt64(group & 0xFFFF) << 8 | UInt64(slow & 0xFFFF) << 24
    }

    init(packed p: UInt64) {
        down = p & 1 != 0
        stalled = p & 2 != 0
        group = Int(p >> 8 & 0xFFFF)
        slow = Int(p >> 24 & 0xFFFF)
    }
}

/// Time-weighted mean of nodes up in each second [i, i+1) of the measured phase, from a timeline, until `end` (ns
/// from the phase's start). The last second, which the end cuts short, is averaged over the part before the end:
/// over the whole second, a node that went down after the run had ended counted against it.
public func nodesUpPerSecond(_ timeline: [(at: UInt64, conditions: [NodeCondition])], end: UInt64) -> [Double] {
    guard !timeline.isEmpty else { return [] }
    let second: UInt64 = 1_000_000_000
    let seconds = Int(end / second) + 1
    var out = [Double](repeating: 0, count: seconds)
    for (i, entry) in timeline.enumerated() where entry.at < end {
        let up = Double(entry.conditions.filter { !$0.down }.count)
        let until = min(i + 1 < timeline.count ? timeline[i + 1].at : end, end)
        var t = entry.at
        while t < until {
            let s = Int(t / second)
            let sEnd = min(until, UInt64(s + 1) * second)
            out[s] += up * Double(sEnd - t)
            t = sEnd
        }
    }
    for s in 0..<seconds {
        let length = min(end, UInt64(s + 1) * second) - UInt64(s) * second
        // (An end on a second's boundary leaves that second empty: the nodes up at the end.)
        out[s] = length > 0 ? out[s] / Double(length) : Double(upAt(end, in: timeline))
    }
    return out
}

/// How many nodes are up at `time` in a timeline.
func upAt(_ time: UInt64, in timeline: [(at: UInt64, conditions: [NodeCondition])]) -> Int {
    let entry = timeline.last { $0.at <= time } ?? timeline[0]
    return entry.conditions.filter { !$0.down }.count
}

/// What a stretch [0, end) of a fault timeline put the cluster through: the fraction of node-time down, and how
/// many down periods overlapped it (nodes down at its start, and every node going down in it).
public struct FaultExposure: Sendable, Equatable {
    public var downFraction: Double
    public var failures: Int

    public init(_ timeline: [(at: UInt64, conditions: [NodeCondition])], until end: UInt64) {
        downFraction = 0
        failures = 0
        guard let first = timeline.first, !first.conditions.isEmpty, end > 0 else { return }
        var downTime = 0.0
        var previous = [Bool](repeating: false, count: first.conditions.count)
        for (i, entry) in timeline.enumerated() where entry.at < end {
            let down = entry.conditions.map(\.down)
            failures += zip(previous, down).filter { !$0 && $1 }.count
            previous = down
            let until = min(i + 1 < timeline.count ? timeline[i + 1].at : end, end)
            downTime += Double(down.filter { $0 }.count) * Double(until - entry.at)
        }
        downFraction = downTime / (Double(end) * Double(first.conditions.count))
    }
}

extension FaultPlan {
    /// The random failures a stretch of `seconds` can expect over `nodes`: the down periods overlapping it (each
    /// node is down at its start with probability P, and a cycle of up and down lasts mttr / P on average).
    public func expectedFailures(nodes: Int, seconds: Double) -> Double {
        guard failureRate > 0 else { return 0 }
        let p = min(failureRate, 0.999)
        return Double(nodes) * p * (1 + seconds / (Double(mttr) / 1e9))
    }
}

/// The nodes' current conditions, shared by the threads of an in-process cluster: written by the fault
/// controller, read with relaxed loads by routers (partitions, slow nodes) and workers (down, stalled). Workers
/// notice a change through `epoch` and apply it to the nodes they own.
public final class FaultState: Sendable {
    final class Cell: Sendable { let value = Atomic<UInt64>(0) }
    let conditions: [Cell]
    let epoch = Atomic<UInt64>(0)
    public let slowDelays: [Distribution]
    public let crashMode: CrashMode

    public init(nodes: Int, slowDelays: [Distribution], crashMode: CrashMode) {
        conditions = (0..<nodes).map { _ in Cell() }
        self.slowDelays = slowDelays
        self.crashMode = crashMode
    }

    @inline(__always)
    public func condition(_ node: Int) -> NodeCondition {
        NodeCondition(packed: conditions[node].value.load(ordering: .relaxed))
    }

    /// Publishes a snapshot.
    public func set(_ snapshot: [NodeCondition]) {
        for (i, c) in snapshot.enumerated() where i < conditions.count {
            conditions[i].value.store(c.packed, ordering: .relaxed)
        }
        epoch.add(1, ordering: .releasing)
    }

    public var currentEpoch: UInt64 { epoch.load(ordering: .acquiring) }
}
