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

    @inlinable
    public mutating func push(at: UInt64, _ payload: Payload) {
        items.append(Entry(at: at, seq: nextSeq, payload: payload))
        nextSeq &+= 1
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if less(items[i], items[parent]) {
                items.swapAt(i, parent)
                i = parent
            } else {
                break
            }
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
        var top = last
        swap(&top, &items[0])
        var i = 0
        let n = items.count
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var m = i
            if l < n && less(items[l], items[m]) { m = l }
            if r < n && less(items[r], items[m]) { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return top
    }

    @inlinable @inline(__always)
    func less(_ a: Entry, _ b: Entry) -> Bool { a.at != b.at ? a.at < b.at : a.seq < b.seq }
}

/// Timers: a few FIFO lanes for deadlines that arrive in order, a heap for the rest. A request timeout is always
/// now + timeout, a periodic tick now + its interval: each kind arrives in order, so each finds a lane whose last
/// deadline is not later than its own (the lane with the latest such deadline is taken). One lane was not enough:
/// a far tick (anti-entropy, 1 s) at the end of the only lane sent every shorter timeout after it to the heap.
/// Popping is O(1) for the common case instead of O(log n) with copies.
public struct TimerQueue<Payload> {
    @usableFromInline struct Lane {
        @usableFromInline var items: [(at: UInt64, payload: Payload)] = []
        @usableFromInline var head = 0
        @inlinable init() {}
        @inlinable var isEmpty: Bool { head == items.count }
    }

    @usableFromInline var lanes = [Lane](repeating: Lane(), count: 4)
    @usableFromInline var heap = TimerHeap<Payload>()

    public init() {}

    @inlinable public var isEmpty: Bool { heap.isEmpty && lanes.allSatisfy(\.isEmpty) }
    @inlinable public var count: Int { heap.count + lanes.reduce(0) { $0 + $1.items.count - $1.head } }

    @inlinable
    public var nextTime: UInt64? {
        var t = heap.nextTime
        for l in lanes.indices where !lanes[l].isEmpty {
            let a = lanes[l].items[lanes[l].head].at
            if t == nil || a < t! { t = a }
        }
        return t
    }

    @inlinable
    public mutating func push(at: UInt64, _ payload: Payload) {
        var best = -1, bestAt: UInt64 = 0, empty = -1
        for l in lanes.indices {
            if lanes[l].isEmpty {
                if empty < 0 { empty = l }
                continue
            }
            let last = lanes[l].items[lanes[l].items.count - 1].at
            if last <= at && (best < 0 || last > bestAt) {
                best = l
                bestAt = last
            }
        }
        let lane = best >= 0 ? best : empty
        if lane < 0 {
            heap.push(at: at, payload)
            return
        }
        if lanes[lane].isEmpty {
            lanes[lane].items.removeAll(keepingCapacity: true)
            lanes[lane].head = 0
        }
        lanes[lane].items.append((at, payload))
    }

    /// Removes and returns the earliest payload due at `now`.
    @inlinable
    public mutating func popDue(_ now: UInt64) -> Payload? {
        var lane = -1
        var at = heap.nextTime ?? .max
        for l in lanes.indices where !lanes[l].isEmpty {
            let a = lanes[l].items[lanes[l].head].at
            if a < at {
                lane = l
                at = a
            }
        }
        guard at <= now else { return nil }
        if lane < 0 { return heap.popFirst()?.payload }
        let p = lanes[lane].items[lanes[lane].head].payload
        lanes[lane].head += 1
        let head = lanes[lane].head
        if head == lanes[lane].items.count {
            lanes[lane].items.removeAll(keepingCapacity: true)
            lanes[lane].head = 0
        } else if head >= 4096 && head * 2 >= lanes[lane].items.count {
            lanes[lane].items.removeFirst(head)
            lanes[lane].head = 0
        }
        return p
    }

    @inlinable
    public mutating func popFirst() -> Payload? { popDue(.max) }
}
