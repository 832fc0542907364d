/// Which peers a coordinator believes are down, learned from missed replies and probes.
///
/// A peer is *suspected* when a message that wants an answer has gone unanswered for `suspicionTimeout` and
/// nothing at all has been heard from it since; anything heard from it clears the suspicion at once. Suspected
/// peers are pinged every `probeInterval` until one answers. A healthy peer costs nothing (replies to requests
/// are the heartbeat); a suspected one costs one ping per probe interval per coordinator that suspects it.
///
/// This is the "missed replies" detector of Dynamo-style stores rather than a phi-accrual one: the traffic is
/// request/response, so the age of the oldest unanswered request is the signal, and with a 500 ms mean time to
/// repair a detector that needs seconds of heartbeat history to be confident would miss most outages.
public struct FailureDetector: Sendable {
    /// When the oldest message still unanswered was sent to each peer (0: none).
    @usableFromInline var waitingSince: [UInt64]
    @usableFromInline var suspected: [Bool]
    @usableFromInline var _suspectedCount = 0
    public var suspectedCount: Int { _suspectedCount }
    public let timeout: UInt64

    public init(nodes: Int, timeout: UInt64) {
        waitingSince = Array(repeating: 0, count: nodes)
        suspected = Array(repeating: false, count: nodes)
        self.timeout = timeout
    }

    @inlinable
    public func isSuspected(_ node: Int) -> Bool { _suspectedCount > 0 && suspected[node] }

    /// A message that wants an answer was sent to `node`.
    @inlinable
    public mutating func sent(to node: Int, now: UInt64) {
        if waitingSince[node] == 0 { waitingSince[node] = max(now, 1) }
    }

    /// Something arrived from `node`: it is alive.
    @inlinable
    public mutating func heard(from node: Int) {
        guard node < waitingSince.count else { return }
        if waitingSince[node] != 0 { waitingSince[node] = 0 }  // called for every message: no store when idle
        if suspected[node] {
            suspected[node] = false
            _suspectedCount -= 1
        }
    }

    /// Suspects every peer that has left a message unanswered too long; returns how many became suspected.
    public mutating func check(now: UInt64) -> Int {
        var newly = 0
        for i in waitingSince.indices where waitingSince[i] != 0 && !suspected[i] && now &- waitingSince[i] > timeout {
            suspected[i] = true
            _suspectedCount += 1
            newly += 1
        }
        return newly
    }

    /// The suspected peers.
    public var suspects: [Int] { suspectedCount == 0 ? [] : suspected.indices.filter { suspected[$0] } }

    /// Whether any message to a peer is still waiting for its answer.
    public var waiting: Bool { waitingSince.contains { $0 != 0 } }

    /// Forgets everything: every peer is presumed up.
    public mutating func reset() {
        for i in waitingSince.indices {
            waitingSince[i] = 0
            suspected[i] = false
        }
        _suspectedCount = 0
    }
}
