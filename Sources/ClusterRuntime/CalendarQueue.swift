#if canImport(Glibc)
import Glibc
#endif
import SyncPrimitives

/// The simulator's messages in `(at, seq)` order: a calendar queue (Brown, 1988). Time is cut into buckets of
/// `2^shift` ns, 4,096 of them in a ring one horizon long; each bucket is a list sorted by time (equal times in
/// push order: the caller's `seq` grows with every push). A push links one node into a list that is almost always
/// empty or ends before it; a pop unlinks the head of the first occupied bucket, found with a bitmap. A binary heap
/// of a few hundred messages cost ~300 instructions an event, most of them comparisons the processor cannot
/// predict: a tenth of a simulation's instructions.
///
/// The bucket width comes from the message delays (``init(scale:)``), so that a bucket holds about one message;
/// whatever falls outside the horizon, before the bucket of the last entry popped, or deep inside a crowded bucket,
/// waits in a heap, `overflow`, compared with the calendar on every pop: the order is exact whatever the delays are,
/// only slower for the entries there (logarithmic in how many there are, where a crowded bucket's walk was linear).
///
/// A class: as a `~Copyable` struct with a `deinit` it broke the compiler's ThreadSanitizer build (Swift 6.3.1,
/// "Invalid bitcast" at -Onone).
final class CalendarQueue {
    struct Entry {
        var at: UInt64
        var seq: UInt64
        var payload: Int
    }

    struct Node {
        var entry: Entry
        var next: Int32
    }

    static let bucketBits = 12
    static let bucketCount = 1 << bucketBits
    static let bucketMask = bucketCount - 1
    static let words = bucketCount / 64

    let shift: UInt64
    /// One horizon: every entry in the buckets lies in `start ..< start + horizon`.
    let horizon: UInt64
    private let heads: UnsafeMutablePointer<Int32>
    private let tails: UnsafeMutablePointer<Int32>
    /// Bit b % 64 of word b / 64: bucket b holds entries.
    private let occupied: UnsafeMutablePointer<UInt64>
    private var nodes: UnsafeMutablePointer<Node>
    private var capacity = 256
    private var used: Int32 = 0
    private var freeHead: Int32 = -1
    private var overflow = TimerHeap<Int>()
    /// The start of the bucket of the last entry popped from the buckets (or of the time of a push into empty ones).
    private var start: UInt64 = 0
    /// The earliest occupied bucket, when known (−1: look).
    private var firstBucket = -1
    /// Entries in the buckets (the rest are in `overflow`).
    private var listed = 0

    /// - Parameter scale: a typical delay (ns); a bucket is about a 32nd of it (a power of two of at least 64 ns).
    init(scale: Double) {
        var s: UInt64 = 14  // 16 µs: for a 0.5 ms delay; used when no delay is known
        if scale.isFinite && scale >= 64 * 32 { s = UInt64(min(40, Int(log2(scale / 32)))) } else if scale > 0 { s = 6 }
        shift = s
        horizon = UInt64(Self.bucketCount) << s
        heads = .allocate(capacity: Self.bucketCount)
        heads.initialize(repeating: -1, count: Self.bucketCount)
        tails = .allocate(capacity: Self.bucketCount)
        tails.initialize(repeating: -1, count: Self.bucketCount)
        occupied = .allocate(capacity: Self.words)
        occupied.initialize(repeating: 0, count: Self.words)
        nodes = .allocate(capacity: capacity)
    }

    deinit {
        heads.deallocate()
        tails.deallocate()
        occupied.deallocate()
        nodes.deallocate()
    }

    var count: Int { listed + overflow.count }
    /// Entries waiting in the overflow heap.
    var overflowCount: Int { overflow.count }
    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private func bucket(_ at: UInt64) -> Int { Int(truncatingIfNeeded: at >> shift) & Self.bucketMask }

    /// Position of bucket `b` in time order, counted from the bucket of `start`.
    @inline(__always)
    private func position(_ b: Int) -> Int { (b - bucket(start)) & Self.bucketMask }

    /// Queues an entry; `now` is the caller's clock (no entry will come before it), where empty buckets restart.
    @inline(__always)
    func push(at: UInt64, seq: UInt64, payload: Int, now: UInt64) {
        if listed == 0 {
            start = (now >> shift) << shift
            firstBucket = -1
        }
        guard at >= start && at &- start < horizon else { return pushOverflow(at, seq, payload) }
        let b = bucket(at)
        let head = heads[b]
        if head < 0 {
            let n = list(at, seq, payload, next: -1)
            heads[b] = n
            tails[b] = n
            occupied[b >> 6] |= 1 << UInt64(b & 63)
            if firstBucket >= 0 && position(b) < position(firstBucket) { firstBucket = b }
        } else if nodes[Int(tails[b])].entry.at <= at {
            let n = list(at, seq, payload, next: -1)
            nodes[Int(tails[b])].next = n
            tails[b] = n
        } else if nodes[Int(head)].entry.at > at {
            heads[b] = list(at, seq, payload, next: head)
        } else {
            insert(at, seq, payload, after: head)
        }
    }

    /// Links an entry into a bucket, after the last node not later than it, from `head` (not later; the tail is
    /// later, so there is a next). A bucket crowded far past the one entry it was sized for (operations that take
    /// no virtual time pile their messages up) would make this walk quadratic: past a few nodes the entry goes to
    /// `overflow`.
    @inline(never)
    private func insert(_ at: UInt64, _ seq: UInt64, _ payload: Int, after head: Int32) {
        var p = head
        for _ in 0..<Self.longestWalk {
            let next = nodes[Int(p)].next
            if nodes[Int(next)].entry.at > at {
                let n = list(at, seq, payload, next: next)  // first: it may move `nodes`
                nodes[Int(p)].next = n
                return
            }
            p = next
        }
        pushOverflow(at, seq, payload)
    }

    @inline(never)
    private func pushOverflow(_ at: UInt64, _ seq: UInt64, _ payload: Int) { overflow.push(at: at, seq: seq, payload) }

    /// The most nodes a push walks past inside a bucket before it takes the entry to `overflow` instead.
    static let longestWalk = 8

    /// A new node for the entry, linked to `next` (it may move `nodes`: no address into it may be held across).
    @inline(__always)
    private func list(_ at: UInt64, _ seq: UInt64, _ payload: Int, next: Int32) -> Int32 {
        let n = allocate()
        nodes[Int(n)] = Node(entry: Entry(at: at, seq: seq, payload: payload), next: next)
        listed += 1
        return n
    }

    @inline(__always)
    private func allocate() -> Int32 {
        if freeHead >= 0 {
            let n = freeHead
            freeHead = nodes[Int(n)].next
            return n
        }
        if Int(used) == capacity {
            let grown = UnsafeMutablePointer<Node>.allocate(capacity: capacity * 2)
            grown.moveInitialize(from: nodes, count: capacity)
            nodes.deallocate()
            nodes = grown
            capacity *= 2
        }
        used += 1
        return used - 1
    }

    /// The earliest occupied bucket.
    private func findFirst() -> Int {
        if firstBucket >= 0 { return firstBucket }
        let b0 = bucket(start)
        var w = b0 >> 6
        var bits = occupied[w] & (~0 << UInt64(b0 & 63))
        // At most one turn of the ring (and the first word again, for buckets before `start`'s in it).
        for _ in 0...Self.words {
            if bits != 0 {
                firstBucket = w << 6 | bits.trailingZeroBitCount
                return firstBucket
            }
            w = (w + 1) & (Self.words - 1)
            bits = occupied[w]
        }
        preconditionFailure("CalendarQueue: entries listed but no bucket occupied")
    }

    /// Whether the earliest entry is in the buckets (not in `overflow`), and that entry's node.
    @inline(__always)
    private func earliestListed() -> Int32? {
        guard listed > 0 else { return nil }
        let n = heads[findFirst()]
        if let o = overflow.first {
            let e = nodes[Int(n)].entry
            if (o.at, o.seq) < (e.at, e.seq) { return nil }
        }
        return n
    }

    /// The earliest entry's time and sequence.
    @inline(__always)
    func peek() -> (at: UInt64, seq: UInt64)? {
        if let n = earliestListed() { return (nodes[Int(n)].entry.at, nodes[Int(n)].entry.seq) }
        return overflow.first.map { ($0.at, $0.seq) }
    }

    /// Removes and returns the earliest entry.
    @inline(__always)
    func pop() -> Entry? { pop(before: nil) }

    /// Removes and returns the earliest entry if it comes before `limit` (the earliest of another queue); nil if
    /// it does not, or there is none. One look at the head where a peek and then a pop took two.
    @inline(__always)
    func pop(before limit: (at: UInt64, seq: UInt64)?) -> Entry? {
        guard let n = earliestListed() else {
            guard let o = overflow.first, limit.map({ (o.at, o.seq) < $0 }) ?? true else { return nil }
            _ = overflow.popFirst()
            return Entry(at: o.at, seq: o.seq, payload: o.payload)
        }
        let node = nodes[Int(n)]
        if let limit, !((node.entry.at, node.entry.seq) < limit) { return nil }
        let b = firstBucket
        heads[b] = node.next
        if node.next < 0 {
            occupied[b >> 6] &= ~(1 << UInt64(b & 63))
            firstBucket = -1
        }
        nodes[Int(n)].next = freeHead
        freeHead = n
        listed -= 1
        start = (node.entry.at >> shift) << shift
        return node.entry
    }

    /// Every payload still queued, in no particular order; the queue is left empty.
    func removeAll() -> [Int] {
        var out: [Int] = []
        while let e = overflow.popFirst() { out.append(e.payload) }
        for b in 0..<Self.bucketCount {
            var n = heads[b]
            while n >= 0 {
                out.append(nodes[Int(n)].entry.payload)
                n = nodes[Int(n)].next
            }
            heads[b] = -1
            tails[b] = -1
        }
        occupied.update(repeating: 0, count: Self.words)
        used = 0
        freeHead = -1
        listed = 0
        firstBucket = -1
        return out
    }
}
