/// Values parked by slot number while their events wait in the simulator's queue: a value is moved in once and
/// moved out once, so parking one costs no reference counting, no copy of its payload and no uniqueness check
/// (an `[Event?]` slab paid all three on every event). Freed slots are linked through their own memory.
///
/// The owner takes every value out before the slab goes away (``VirtualCluster/discardAll()``); values still
/// parked then are leaked, not destroyed.
struct Slab<Element>: ~Copyable {
    private var base: UnsafeMutablePointer<Element>
    private var capacity: Int
    /// Slots `0..<used` have been handed out at least once.
    private var used = 0
    /// The first free slot below `used` (−1: none); each free slot holds the next one's number.
    private var freeHead = -1
    /// Values parked now.
    private(set) var count = 0

    init(capacity: Int = 256) {
        precondition(MemoryLayout<Element>.size >= MemoryLayout<Int>.size
                         && MemoryLayout<Element>.alignment >= MemoryLayout<Int>.alignment,
                     "a free slot holds the next free slot's number")
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    /// Parks `value`; returns its slot.
    @inline(__always)
    mutating func put(_ value: consuming Element) -> Int {
        let slot = reserve()
        (base + slot).initialize(to: value)
        return slot
    }

    /// Parks the value at `source` by moving its bytes (Swift values here are bitwise movable): `source` is left
    /// uninitialized, and nothing is retained or released.
    @inline(__always)
    mutating func put(moving source: UnsafeMutablePointer<Element>) -> Int {
        let slot = reserve()
        UnsafeMutableRawPointer(base + slot).copyMemory(from: source, byteCount: MemoryLayout<Element>.size)
        return slot
    }

    /// Moves the value out of `slot` and frees the slot.
    @inline(__always)
    mutating func take(_ slot: Int) -> Element {
        let value = (base + slot).move()
        UnsafeMutableRawPointer(base + slot).storeBytes(of: freeHead, as: Int.self)
        freeHead = slot
        count -= 1
        return value
    }

    @inline(__always)
    private mutating func reserve() -> Int {
        count += 1
        if freeHead >= 0 {
            let slot = freeHead
            freeHead = UnsafeRawPointer(base + slot).load(as: Int.self)
            return slot
        }
        if used == capacity {
            // Bitwise: the free slots' links move with the values (and stay valid: slot numbers do not change).
            let grown = UnsafeMutablePointer<Element>.allocate(capacity: capacity * 2)
            UnsafeMutableRawPointer(grown).copyMemory(from: base, byteCount: used * MemoryLayout<Element>.stride)
            base.deallocate()
            base = grown
            capacity *= 2
        }
        used += 1
        return used - 1
    }
}
