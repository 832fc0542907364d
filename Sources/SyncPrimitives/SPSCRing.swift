import Synchronization

/// A bounded single-producer, single-consumer ring: one thread pushes, one thread pops, no locks and no atomic
/// read-modify-write (one acquire load and one release store per batch on each side).
///
/// A multi-producer, single-consumer queue is a set of these, one lane per producer, drained in turn by the
/// consumer (see `Inbox`).
public final class SPSCRing<Element>: @unchecked Sendable {
    public let capacity: Int
    @usableFromInline let mask: Int
    @usableFromInline let slots: UnsafeMutablePointer<Element>
    @usableFromInline let head = Atomic<Int>(0)  // next slot to read, written by the consumer
    @usableFromInline let tail = Atomic<Int>(0)  // next slot to write, written by the producer
    // Producer-side and consumer-side caches of the other side's index (each touched by one thread only).
    @usableFromInline var producerTail = 0
    @usableFromInline var producerHeadCache = 0
    @usableFromInline var consumerHead = 0

    /// - Parameter capacity: rounded up to a power of two.
    public init(capacity: Int) {
        var c = 1
        while c < capacity { c <<= 1 }
        self.capacity = c
        mask = c - 1
        slots = .allocate(capacity: c)
    }

    deinit {
        var h = head.load(ordering: .relaxed)
        let t = tail.load(ordering: .relaxed)
        while h != t {
            (slots + (h & mask)).deinitialize(count: 1)
            h &+= 1
        }
        slots.deallocate()
    }

    /// Producer: moves `element` in unless the ring is full, and then hands it back. Visible to the consumer at the
    /// next ``publish()``.
    @inlinable
    public func push(_ element: consuming Element) -> Element? {
        if full { return element }
        (slots + (producerTail & mask)).initialize(to: element)
        producerTail &+= 1
        return nil
    }

    @inlinable
    var full: Bool {
        if producerTail &- producerHeadCache == capacity {
            producerHeadCache = head.load(ordering: .acquiring)
            if producerTail &- producerHeadCache == capacity { return true }
        }
        return false
    }

    /// Producer: makes everything pushed so far visible to the consumer.
    @inlinable
    public func publish() { tail.store(producerTail, ordering: .releasing) }

    /// Consumer: hands every published element to `body`, in order; returns how many.
    @inlinable @discardableResult
    public func drain(_ body: (consuming Element) -> Void) -> Int {
        let t = tail.load(ordering: .acquiring)
        var h = consumerHead
        let n = t &- h
        while h != t {
            body((slots + (h & mask)).move())
            h &+= 1
        }
        consumerHead = h
        if n > 0 { head.store(h, ordering: .releasing) }
        return n
    }

    /// Consumer: whether anything published waits.
    @inlinable
    public var isEmpty: Bool { tail.load(ordering: .acquiring) == consumerHead }
}
