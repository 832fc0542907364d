/// A binary min-heap ordered by `(at, seq)`: timers and delayed messages, earliest first, ties in insertion order.
public struct TimerHeap<Payload> {
    public struct Entry {
        public var at: UInt64
        public var seq: UInt64
        public var payload: Payload
    }

    private var items: [Entry] = []
    private var nextSeq: UInt64 = 0

    public init() {}

    public var count: Int { items.count }
    public var isEmpty: Bool { items.isEmpty }
    /// The earliest time in the heap.
    public var nextTime: UInt64? { items.first?.at }

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
    public mutating func popDue(_ now: UInt64) -> Entry? {
        guard let first = items.first, first.at <= now else { return nil }
        return popFirst()
    }

    public mutating func popFirst() -> Entry? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < items.count && less(items[l], items[m]) { m = l }
                if r < items.count && less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }

    @inline(__always)
    private func less(_ a: Entry, _ b: Entry) -> Bool { a.at != b.at ? a.at < b.at : a.seq < b.seq }
}
