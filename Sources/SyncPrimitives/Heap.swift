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

/// Timers: a FIFO for deadlines that arrive in order (a request timeout is always now + timeout, so they do), a
/// heap for the rest. Popping is O(1) for the common case instead of O(log n) with copies.
public struct TimerQueue<Payload> {
    @usableFromInline var fifo: [(at: UInt64, payload: Payload)] = []
    @usableFromInline var fifoHead = 0
    @usableFromInline var heap = TimerHeap<Payload>()

    public init() {}

    @inlinable public var isEmpty: Bool { fifoHead == fifo.count && heap.isEmpty }
    @inlinable public var count: Int { fifo.count - fifoHead + heap.count }

    @inlinable
    public var nextTime: UInt64? {
        let f = fifoHead < fifo.count ? fifo[fifoHead].at : nil
        guard let h = heap.nextTime else { return f }
        guard let f else { return h }
        return min(f, h)
    }

    @inlinable
    public mutating func push(at: UInt64, _ payload: Payload) {
        if fifoHead == fifo.count || at >= fifo[fifo.count - 1].at {
            fifo.append((at, payload))
        } else {
            heap.push(at: at, payload)
        }
    }

    /// Removes and returns the earliest payload due at `now`.
    @inlinable
    public mutating func popDue(_ now: UInt64) -> Payload? {
        let f = fifoHead < fifo.count ? fifo[fifoHead].at : UInt64.max
        let h = heap.nextTime ?? UInt64.max
        if f <= h {
            guard f <= now else { return nil }
            let p = fifo[fifoHead].payload
            fifoHead += 1
            if fifoHead == fifo.count {
                fifo.removeAll(keepingCapacity: true)
                fifoHead = 0
            } else if fifoHead >= 4096 && fifoHead * 2 >= fifo.count {
                fifo.removeFirst(fifoHead)
                fifoHead = 0
            }
            return p
        }
        guard h <= now else { return nil }
        return heap.popFirst()?.payload
    }

    @inlinable
    public mutating func popFirst() -> Payload? { popDue(.max) }
}
