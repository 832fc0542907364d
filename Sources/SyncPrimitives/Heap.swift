/// A binary min-heap ordered by `(at, seq)`: timers and delayed messages, earliest first, ties in insertion order.
public struct TimerHeap<Payload> {
    public struct Entry {
        public var at: UInt64
        public var seq: UInt64
        public var payload: Payload

        @inlinable
        init(at: UInt64, seq: UInt64, payload: Payload) {
            self.at = at
            self.seq = seq
            self.payload = payload
        }
    }

    @usableFromInline var items: [Entry] = []
    @usableFromInline var nextSeq: UInt64 = 0

    public init() {}

    @inlinable public var count: Int { items.count }
    @inlinable public var isEmpty: Bool { items.isEmpty }
    /// The earliest time in the heap.
    @inlinable public var nextTime: UInt64? { items.first?.at }
    /// The earliest entry.
    @inlinable public var first: Entry? { items.first }

    @inlinable
    public mutating func push(at: UInt64, _ payload: Payload) {
        push(at: at, seq: nextSeq, payload)
        nextSeq &+= 1
    }

    /// Pushes with the caller's sequence number (which must grow with every push), for a caller that orders
    /// entries of several structures by one sequence.
    @inlinable @inline(__always)
    public mutating func push(at: UInt64, seq: UInt64, _ payload: Payload) {
        let entry = Entry(at: at, seq: seq, payload: payload)
        items.append(entry)
        items.withUnsafeMutableBufferPointer { h in
            // Sift up with a hole: each level moves one entry, not a swap of two.
            var i = h.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                guard Self.less(entry, h[parent]) else { break }
                h[i] = h[parent]
                i = parent
            }
            h[i] = entry
        }
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    @inlinable
    public mutating func popDue(_ now: UInt64) -> Entry? {
        guard let first = items.first?.at, first <= now else { return nil }
        return popFirst()
    }

    @inlinable
    public mutating func popFirst() -> Entry? {
        guard !items.isEmpty else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return last }
        let top = items[0]
        items.withUnsafeMutableBufferPointer { h in
            // Bottom-up (Floyd): the hole at the root goes down to a leaf along the smaller children, one
            // comparison a level, then the last entry — which belongs near the bottom — goes up from there. Sifting
            // it down from the root took two comparisons a level.
            var i = 0
            let n = h.count
            while true {
                let l = 2 * i + 1
                if l >= n { break }
                let r = l + 1
                let c = r < n && Self.less(h[r], h[l]) ? r : l
                h[i] = h[c]
                i = c
            }
            while i > 0 {
                let parent = (i - 1) / 2
                guard Self.less(last, h[parent]) else { break }
                h[i] = h[parent]
                i = parent
            }
            h[i] = last
        }
        return top
    }

    @inlinable @inline(__always)
    static func less(_ a: Entry, _ b: Entry) -> Bool { a.at != b.at ? a.at < b.at : a.seq < b.seq }
}

/// Timers and events in `(at, insertion)` order — exactly the order of one ``TimerHeap`` — kept mostly in FIFO lanes.
///
/// A request timeout is always now + timeout, a periodic tick now + its interval: each kind arrives in time order,
/// so it finds a lane whose last deadline is not later than its own (the lane with the latest such deadline is
/// taken; one lane was not enough: a far tick at its end sent every shorter timeout after it to the heap). The
/// rest go to a heap. The lane with the earliest head is kept up to date on push and pop, so asking whether
/// anything is due — what an idle thread does in a loop — is O(1), and so are most pushes and pops.
public struct TimerQueue<Payload> {
    public typealias Entry = TimerHeap<Payload>.Entry
    @usableFromInline static var laneCount: Int { 4 }
    @usableFromInline var lanes: [FIFO<Entry>]
    /// The lane whose head comes first (−1: every lane empty).
    @usableFromInline var first = -1
    @usableFromInline var heap = TimerHeap<Payload>()
    @usableFromInline var nextSeq: UInt64 = 0

    public init() {
        lanes = Array(repeating: FIFO(compactAt: 4096), count: Self.laneCount)
    }

    @inlinable public var isEmpty: Bool { first < 0 && heap.isEmpty }
    @inlinable public var count: Int {
        var n = heap.count
        for l in 0..<Self.laneCount { n += lanes[l].count }
        return n
    }

    @inlinable @inline(__always)
    static func less(_ a: Entry, _ b: Entry) -> Bool { TimerHeap<Payload>.less(a, b) }

    /// Whether the earliest entry is the first lane's head (not the heap's top).
    @inlinable @inline(__always)
    var laneFirst: Bool {
        guard first >= 0 else { return false }
        guard let top = heap.items.first else { return true }
        return Self.less(lanes[first].first!, top)
    }

    /// The earliest time queued.
    @inlinable
    public var nextTime: UInt64? { laneFirst ? lanes[first].first!.at : heap.nextTime }

    /// The earliest entry's time and sequence number.
    @inlinable @inline(__always)
    public var earliest: (at: UInt64, seq: UInt64)? {
        if laneFirst {
            let e = lanes[first].first!
            return (e.at, e.seq)
        }
        return heap.first.map { ($0.at, $0.seq) }
    }

    /// Takes a sequence number from this queue's count, for an entry the caller keeps in a structure of its own
    /// and orders against these by `(at, seq)`.
    @inlinable @inline(__always)
    public mutating func takeSequence() -> UInt64 {
        defer { nextSeq &+= 1 }
        return nextSeq
    }

    @inlinable
    public mutating func push(at: UInt64, _ payload: Payload) {
        let entry = Entry(at: at, seq: nextSeq, payload: payload)
        nextSeq &+= 1
        var lane = -1, laneLast: UInt64 = 0, empty = -1
        for l in 0..<Self.laneCount {
            if lanes[l].isEmpty {
                if empty < 0 { empty = l }
            } else if let last = lanes[l].last?.at, last <= at, lane < 0 || last > laneLast {
                lane = l
                laneLast = last
            }
        }
        if lane < 0 { lane = empty }
        guard lane >= 0 else {
            heap.push(at: at, seq: entry.seq, payload)
            return
        }
        if lanes[lane].isEmpty, first < 0 || Self.less(entry, lanes[first].first!) {
            first = lane  // an empty lane: its new head may come first
        }
        lanes[lane].append(entry)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    @inlinable
    public mutating func popEntry(due now: UInt64) -> Entry? {
        if laneFirst {
            guard lanes[first].first!.at <= now else { return nil }
            let e = lanes[first].removeFirst()
            first = -1
            for k in 0..<Self.laneCount where !lanes[k].isEmpty {
                if first < 0 || Self.less(lanes[k].first!, lanes[first].first!) { first = k }
            }
            return e
        }
        return heap.popDue(now)
    }

    /// Removes and returns the earliest payload due at `now`.
    @inlinable
    public mutating func popDue(_ now: UInt64) -> Payload? { popEntry(due: now)?.payload }

    @inlinable
    public mutating func popFirst() -> Payload? { popDue(.max) }

    /// Every payload still queued, in no particular order; the queue is left empty.
    public mutating func removeAll() -> [Payload] {
        var out = heap.items.map(\.payload)
        for l in 0..<Self.laneCount { out += lanes[l].elements.map(\.payload) }
        self = TimerQueue()
        return out
    }
}
