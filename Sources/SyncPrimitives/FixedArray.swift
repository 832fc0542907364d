/// A fixed number of elements in memory of their own, changed in place through a constant reference: an array
/// held in a class checks that its buffer is unique (a call) on every write of an element, and per-thread state
/// the simulator writes several times a request paid that each time. Bounds are checked. For state one thread
/// owns.
public final class FixedArray<Element>: RandomAccessCollection {
    @usableFromInline let base: UnsafeMutablePointer<Element>
    public let count: Int

    public init(_ elements: [Element]) {
        count = elements.count
        base = .allocate(capacity: count)
        base.initialize(from: elements, count: count)
    }

    public convenience init(repeating value: Element, count: Int) {
        self.init(Array(repeating: value, count: count))
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { count }

    @inlinable
    public subscript(i: Int) -> Element {
        unsafeAddress {
            precondition(i >= 0 && i < count, "index out of range")
            return UnsafePointer(base + i)
        }
        unsafeMutableAddress {
            precondition(i >= 0 && i < count, "index out of range")
            return base + i
        }
    }
}
