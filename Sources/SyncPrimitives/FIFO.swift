/// A first-in first-out queue in one array: taking the first element moves a head index; the consumed prefix is
/// dropped all at once when the queue empties, and now and then before (when it is at least `compactAt` long and
/// half the array), so that a queue that never empties does not grow without bound. Used where elements arrive
/// in the order they leave: a coordinator's request deadlines, ``TimerQueue``'s lanes.
public struct FIFO<Element> {
    @usableFromInline var items: [Element] = []
    @usableFromInline var head = 0
    @usableFromInline let compactAt: Int

    public init(compactAt: Int = 1_024) { self.compactAt = compactAt }

    @inlinable public var isEmpty: Bool { head == items.count }
    @inlinable public var count: Int { items.count - head }
    @inlinable public var first: Element? { isEmpty ? nil : items[head] }
    @inlinable public var last: Element? { isEmpty ? nil : items[items.count - 1] }
    /// The elements, first to last.
    @inlinable public var elements: ArraySlice<Element> { items[head...] }

    @inlinable
    public mutating func append(_ element: Element) { items.append(element) }

    /// Removes and returns the first element (the queue must not be empty).
    @inlinable @discardableResult
    public mutating func removeFirst() -> Element {
        let e = items[head]
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= compactAt && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
        return e
    }

    public mutating func removeAll() {
        items.removeAll()
        head = 0
    }
}
