import ReplicationCore

/// Where a runtime reads the nodes' conditions: ``FaultState``'s atomics in process, an array in virtual time.
public protocol NodeConditions {
    func condition(_ node: Int) -> NodeCondition
}

extension FaultState: NodeConditions {}

extension Array: NodeConditions where Element == NodeCondition {
    @inline(__always) public func condition(_ node: Int) -> NodeCondition { self[node] }
}

/// What the network does to a message, the same in every runtime: `--drop` loss (never of client traffic), the
/// `--delay*` distribution of its kind, loss across a partition, and a slow sender's extra delay. Draws come from
/// the caller's generator in that order, so a simulation replays exactly.
public struct Transmission: Sendable {
    public let drop: Double
    public let delays: [Distribution?]
    public let slowDelays: [Distribution]

    public enum Fate { case deliver(at: UInt64), dropped, partitioned }

    public init(drop: Double, delays: Delays, slowDelays: [Distribution]) {
        self.drop = drop
        self.delays = delays.byKind
        self.slowDelays = slowDelays
    }

    /// The fate of `envelope` sent at `now`; `conditions` nil: no faults; `dropping` false: no `--drop` loss yet
    /// (``ClusterOptions/dropGate``). The caller releases what is lost.
    @inline(__always)
    public func fate<C: NodeConditions>(
        of envelope: Envelope, now: UInt64, rng: inout Xoshiro, conditions: C?, dropping: Bool = true
    ) -> Fate {
        fate(kind: envelope.message.kind, from: envelope.from, to: envelope.to, now: now, rng: &rng,
             conditions: conditions, dropping: dropping)
    }

    /// The fate of a message of `kind` from `from` to `to`, sent at `now`.
    @inline(__always)
    public func fate<C: NodeConditions>(
        kind: MessageKind, from: Endpoint, to: Endpoint, now: UInt64, rng: inout Xoshiro, conditions: C?,
        dropping: Bool = true
    ) -> Fate {
        if drop > 0 && dropping && kind != .client && rng.nextDouble() < drop { return .dropped }
        var at = now
        at &+= UInt64(delays[kind.rawValue]?.sample(&rng) ?? 0)
        if let conditions, !from.isClient {
            let source = conditions.condition(from.index)
            if !to.isClient && !source.reaches(conditions.condition(to.index)) { return .partitioned }
            if source.slow > 0 { at &+= UInt64(slowDelays[source.slow - 1].sample(&rng)) }
        }
        return .deliver(at: at)
    }
}

/// How a server-routed client picks a coordinator, in every runtime: a token-aware client (as Cassandra's and
/// Riak's drivers are) sends to one of the key's replicas at random, so that the coordinator's own replica is local
/// and writes need no forwarding; a node that refused a request (it is down: a closed port) is passed over for a
/// while, and when every replica has, any other node serves (every node coordinates). A refused request is
/// retried on another node; it fails once it has been refused as many times as there are nodes.
struct CoordinatorChoice {
    /// When each node may be tried again (ns).
    var avoidUntil: [UInt64]
    /// Refusals so far, by request tag.
    var tries: [UInt64: Int] = [:]
    /// How long a node that refused is passed over.
    static let avoidNanos: UInt64 = 20_000_000

    init(nodes: Int) { avoidUntil = Array(repeating: 0, count: nodes) }

    /// The node to send a new request for `key` to. When every node refused within ``avoidNanos``, the one whose
    /// refusal is oldest, the request held back until `avoidUntil` of it (a client backing off, as drivers do): a
    /// request fails only once nodes have refused it (``refused(_:key:by:ring:n:now:rng:)``). Failing at once,
    /// without trying, was a loop that took no time: in virtual time a closed loop of such failures never let the
    /// clock reach the end of the outage (each failure issued the next request from inside its own reply, until
    /// the stack ran out), and in real time it spun, counting failures by the thousand.
    func pick(for key: UInt64, ring: Ring, n: Int, now: UInt64, rng: inout Xoshiro) -> Int {
        let replicas = ring.replicas(of: Key(key), n: n)
        let first = rng.next(below: replicas.count)
        for i in 0..<replicas.count {
            let node = Int(replicas[(first + i) % replicas.count])
            if avoidUntil[node] <= now { return node }
        }
        let list = ring.preferenceList(for: Key(key))
        for i in replicas.count..<list.count where avoidUntil[list[i]] <= now { return list[i] }
        return list.min { avoidUntil[$0] < avoidUntil[$1] }!
    }

    /// When a request sent now to `node`, which the network would deliver at `at`, reaches it: not before the node
    /// may be tried again (when every node refused lately, ``pick`` chose one still passed over).
    @inline(__always)
    func arrival(_ at: UInt64, to node: Int) -> UInt64 { max(at, avoidUntil[node]) }

    /// Whether a request sent to `node` now is held back (``arrival(_:to:)``): it refused lately.
    @inline(__always)
    func holds(_ node: Int, now: UInt64) -> Bool { avoidUntil[node] > now }

    /// `node` refused the request `tag`: where to try next (nil: every node has been tried; the request fails).
    mutating func refused(_ tag: UInt64, key: UInt64, by node: Int, ring: Ring, n: Int, now: UInt64,
                          rng: inout Xoshiro) -> Int? {
        if node < avoidUntil.count { avoidUntil[node] = now &+ CoordinatorChoice.avoidNanos }
        let count = tries[tag, default: 0] + 1
        tries[tag] = count
        if tries.count > 4096 { tries.removeAll() }  // bounded: a request that retried long ago is long finished
        return count < avoidUntil.count ? pick(for: key, ring: ring, n: n, now: now, rng: &rng) : nil
    }

    /// The request `tag` is over (answered or failed).
    @inline(__always)
    mutating func finished(_ tag: UInt64) { if !tries.isEmpty { tries[tag] = nil } }
}
