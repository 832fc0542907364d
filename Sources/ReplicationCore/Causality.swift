/// Who made a version. A node actor is a node in one incarnation: a node that restarts empty gets a new
/// incarnation, so it never reuses a counter (Riak's kv679 lesson).
///
/// A *replica* actor coordinates writes to keys it stores, so every state holding its dot `(a, c)` holds (or has
/// superseded) all of its earlier dots on that key: its entries compress into a version vector. A *loose* actor
/// (a client-side coordinator, which does not see the key's history) has its dots kept exactly, never as a
/// counter prefix. With server routing every write is coordinated by a replica (a node that is not one forwards
/// it), so contexts stay version vectors.
public struct Actor: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let raw: UInt64
    @usableFromInline static let looseBit: UInt64 = 1 << 63
    @usableFromInline static let clientBit: UInt64 = 1 << 62

    @inlinable public init(raw: UInt64) { self.raw = raw }

    /// A node coordinating as one of the key's replicas.
    @inlinable
    public static func replica(node: Int, incarnation: UInt32) -> Actor {
        Actor(raw: UInt64(node) << 32 | UInt64(incarnation))
    }

    /// A node coordinating a write to a key none of whose replicas it could reach (its dots are kept exact).
    @inlinable
    public static func loose(node: Int, incarnation: UInt32) -> Actor {
        Actor(raw: looseBit | UInt64(node) << 32 | UInt64(incarnation))
    }

    /// A client-side coordinator.
    @inlinable
    public static func client(_ id: Int, epoch: UInt32 = 0) -> Actor {
        Actor(raw: looseBit | clientBit | UInt64(id) << 32 | UInt64(epoch))
    }

    @inlinable public var isLoose: Bool { raw & Actor.looseBit != 0 }
    @inlinable public var isClient: Bool { raw & Actor.clientBit != 0 }
    /// The node (or client) number.
    @inlinable public var node: Int { Int(truncatingIfNeeded: (raw & ~(Actor.looseBit | Actor.clientBit)) >> 32) }
    @inlinable public var incarnation: UInt32 { UInt32(truncatingIfNeeded: raw) }
    @inlinable public static func < (a: Actor, b: Actor) -> Bool { a.raw < b.raw }

    public var description: String {
        (isClient ? "c" : isLoose ? "l" : "n") + "\(node).\(incarnation)"
    }
}

/// One event: the `counter`-th write coordinated by `actor`.
public struct Dot: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var actor: Actor
    public var counter: UInt64

    @inlinable
    public init(actor: Actor, counter: UInt64) {
        self.actor = actor
        self.counter = counter
    }

    @inlinable
    public static func < (a: Dot, b: Dot) -> Bool {
        a.actor.raw != b.actor.raw ? a.actor.raw < b.actor.raw : a.counter < b.counter
    }

    public var description: String { "\(actor):\(counter)" }
}

/// What a writer had seen: a version vector over replica actors, and a set of exact dots.
///
/// `covers(d)` says whether the event `d` is in this history. A put carries the context its client last saw; the
/// versions it covers are superseded.
///
/// A version-vector entry `a:c` stands for every dot of `a` up to `c`. That is only true of histories that are
/// prefix-closed for `a`: the clock of a replica's state is (a replica actor's dots reach other replicas only with
/// the actor's whole state of the key), so a read's context compresses into entries. A dot known on its own — the
/// dot a put was given, which its client learns without learning the other dots of that actor — is kept exact, as
/// is every dot of a loose actor. Exact dots are kept up to ``maxExactDots`` (the newest); forgetting one can only
/// make a superseded version reappear as a sibling, never drop a live one.
///
/// Both live in one array — the entries (sorted by actor), then the exact dots (sorted) — so that a context, and
/// every version that carries one, holds a single reference: a version is copied into every message, and each
/// reference is a retain and a release.
public struct CausalContext: Sendable, Equatable, CustomStringConvertible {
    public struct Entry: Sendable, Equatable {
        public var actor: Actor
        public var counter: UInt64
    }

    /// `items[0..<entryCount]`: version-vector entries (actor, highest counter), sorted by actor;
    /// `items[entryCount...]`: dots known one by one, sorted.
    @usableFromInline var items: [Dot]
    @usableFromInline var entryCount: Int
    public static let maxExactDots = 64

    public init() {
        items = []
        entryCount = 0
    }

    public static let empty = CausalContext()

    @inlinable public var isEmpty: Bool { items.isEmpty }

    /// Version-vector entries for replica actors, sorted by actor.
    public var entries: [Entry] { items[..<entryCount].map { Entry(actor: $0.actor, counter: $0.counter) } }
    /// Dots known one by one, sorted.
    public var exactDots: ArraySlice<Dot> { items[entryCount...] }

    /// Whether event `dot` is part of this history.
    @inlinable
    public func covers(_ dot: Dot) -> Bool {
        items.withUnsafeBufferPointer { b in
            if coveredByEntry(b, dot) { return true }
            // The exact dots are sorted: a few are scanned, more searched (client-side coordinators' contexts hold
            // up to 64, and scanning them was 8% of a client-routed simulation).
            if b.count - entryCount <= 8 {
                for i in entryCount..<b.count where b[i] == dot { return true }
                return false
            }
            let i = exactPlace(b, dot)
            return i < b.count && b[i] == dot
        }
    }

    /// Whether a version-vector entry of `items` (`b`) covers `dot` (a replica actor's).
    @inlinable @inline(__always)
    func coveredByEntry(_ b: UnsafeBufferPointer<Dot>, _ dot: Dot) -> Bool {
        guard !dot.actor.isLoose else { return false }
        for i in 0..<entryCount where b[i].actor == dot.actor { return b[i].counter >= dot.counter }
        return false
    }

    /// Where `dot` is, or would go, among the exact dots of `items` (`b`): the first not below it.
    @inlinable @inline(__always)
    func exactPlace(_ b: UnsafeBufferPointer<Dot>, _ dot: Dot) -> Int {
        var lo = entryCount, hi = b.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if b[mid] < dot { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Adds an event of a prefix-closed history: a replica actor's dot becomes (or raises) its entry; a loose
    /// actor's dot is kept exact.
    public mutating func add(_ dot: Dot) {
        if dot.actor.isLoose {
            addExact(dot)
            return
        }
        var i = 0
        while i < entryCount && items[i].actor < dot.actor { i += 1 }
        if i < entryCount && items[i].actor == dot.actor {
            if items[i].counter < dot.counter { items[i].counter = dot.counter }
        } else {
            insert(dot, at: i)
            entryCount += 1
        }
        // Exact dots the entry now covers are redundant.
        var j = entryCount
        while j < items.count {
            if items[j].actor == dot.actor && items[j].counter <= dot.counter { items.remove(at: j) } else { j += 1 }
        }
    }

    /// `items.insert(dot, at: i)`, appended and moved into place: `insert` goes through the generic
    /// `replaceSubrange` (~330 instructions; a read's clock adds a new actor's entry this way).
    @inline(__always)
    mutating func insert(_ dot: Dot, at i: Int) {
        items.append(dot)
        items.withUnsafeMutableBufferPointer { b in
            var k = b.count - 1
            while k > i {
                b[k] = b[k - 1]
                k -= 1
            }
            b[i] = dot
        }
    }

    /// Adds one event by itself, implying nothing about the actor's other events. Past ``maxExactDots`` the
    /// oldest exact dot goes (the smallest counter, the first in order among equals), which may be `dot` itself.
    ///
    /// One search and one move: a client-side coordinator's contexts hold the full 64, and a scan for the place, an
    /// insertion and a removal cost ~540 instructions a call (4% of a client-routed simulation).
    public mutating func addExact(_ dot: Dot) {
        let first = entryCount
        // Whether it is known already, and if not where it goes and, when the bound is reached, the oldest exact dot:
        // one search (a `covers` first searched the same dots again), read in place (a context is often shared,
        // and the insertion below makes the one copy it needs).
        let (i, oldest): (Int?, Int?) = items.withUnsafeBufferPointer { b in
            if coveredByEntry(b, dot) { return (nil, nil) }
            let lo = exactPlace(b, dot)
            if lo < b.count && b[lo] == dot { return (nil, nil) }
            guard b.count - first >= CausalContext.maxExactDots else { return (lo, nil) }
            var oldest = first
            for k in first + 1..<b.count where b[k].counter < b[oldest].counter { oldest = k }
            return (lo, oldest)
        }
        guard let i else { return }  // covered
        guard let oldest else {
            insert(dot, at: i)
            return
        }
        // Full: the oldest of the exact dots and `dot` goes.
        let o = items[oldest]
        if dot.counter < o.counter || (dot.counter == o.counter && i <= oldest) { return }
        items.withUnsafeMutableBufferPointer { b in
            if oldest < i {
                for k in oldest..<i - 1 { b[k] = b[k + 1] }
                b[i - 1] = dot
            } else {
                var k = oldest
                while k > i {
                    b[k] = b[k - 1]
                    k -= 1
                }
                b[i] = dot
            }
        }
    }

    /// Joins `other` into this history: the same result as adding `other`'s entries one by one (``add(_:)``), then
    /// its exact dots (``addExact(_:)``), in one pass over both sorted lists. One by one, each exact dot cost a
    /// search of the list and often an insertion into it: contexts of client-side coordinators hold up to 64, and
    /// merging them was 7% of a client-routed simulation's instructions.
    public mutating func merge(_ other: CausalContext) {
        if other.isEmpty { return }
        if isEmpty {
            self = other
            return
        }
        if dominates(other) { return }  // the usual case of a replica's history: nothing new, nothing copied
        var entries = 0
        let result = items.withUnsafeBufferPointer { a in
            other.items.withUnsafeBufferPointer { b in
                [Dot](unsafeUninitializedCapacity: a.count + b.count) { r, count in
                    var n = 0
                    // Entries: the union by actor, each at its highest counter.
                    var i = 0, j = 0
                    while i < entryCount || j < other.entryCount {
                        if j == other.entryCount || (i < entryCount && a[i].actor < b[j].actor) {
                            r[n] = a[i]; i += 1
                        } else if i == entryCount || b[j].actor < a[i].actor {
                            r[n] = b[j]; j += 1
                        } else {
                            r[n] = a[i].counter >= b[j].counter ? a[i] : b[j]; i += 1; j += 1
                        }
                        n += 1
                    }
                    entries = n
                    // Exact dots: the sorted union, without those an entry now covers.
                    i = entryCount
                    j = other.entryCount
                    while i < a.count || j < b.count {
                        let d: Dot
                        if j == b.count || (i < a.count && a[i] < b[j]) {
                            d = a[i]; i += 1
                        } else if i == a.count || b[j] < a[i] {
                            d = b[j]; j += 1
                        } else {
                            d = a[i]; i += 1; j += 1
                        }
                        if !d.actor.isLoose, r[..<entries].contains(where: { $0.actor == d.actor && $0.counter >= d.counter }) {
                            continue
                        }
                        r[n] = d
                        n += 1
                    }
                    // Past the bound, the oldest go (smallest counter, the first in order among equals: as
                    // ``addExact(_:)`` evicts). Usually a few past it (what the other side had new), each found
                    // by a scan; many (two contexts of 64 client dots each, as a read's clock of a key with many
                    // siblings merges them) by one sort: a scan and a shift per dot made such a clock quadratic.
                    let excess = max(0, n - entries - CausalContext.maxExactDots)
                    if excess <= 4 {
                        for _ in 0..<excess {
                            var oldest = entries
                            for k in entries + 1..<n where r[k].counter < r[oldest].counter { oldest = k }
                            for k in oldest..<n - 1 { r[k] = r[k + 1] }
                            n -= 1
                        }
                    } else {
                        // The excess-th smallest counter, t: every dot below it goes, and the first of those at it
                        // (sorting the counters alone: sorting positions by counter, ties by position, cost twice
                        // as much and an array of marks besides).
                        var counters: [UInt64] = []
                        counters.reserveCapacity(n - entries)
                        for k in entries..<n { counters.append(r[k].counter) }
                        counters.sort()
                        let t = counters[excess - 1]
                        var atT = excess - counters.prefix(excess).lazy.filter { $0 < t }.count  // of those at t, to go
                        var kept = entries
                        for k in entries..<n {
                            let c = r[k].counter
                            if c < t { continue }
                            if c == t && atT > 0 {
                                atT -= 1
                                continue
                            }
                            r[kept] = r[k]
                            kept += 1
                        }
                        n = kept
                    }
                    count = n
                }
            }
        }
        items = result
        entryCount = entries
    }

    /// Whether every event in `other` is in this history.
    public func dominates(_ other: CausalContext) -> Bool {
        items.withUnsafeBufferPointer { a in
            other.items.withUnsafeBufferPointer { b in
                // Both lists are sorted: one walk each. An entry stands for its whole prefix: only an entry at
                // least as high covers it.
                var i = 0
                for j in 0..<other.entryCount {
                    while i < entryCount && a[i].actor < b[j].actor { i += 1 }
                    if i == entryCount || a[i].actor != b[j].actor || a[i].counter < b[j].counter { return false }
                }
                // An exact dot: by an entry, or the same exact dot.
                i = entryCount
                for j in other.entryCount..<b.count {
                    let d = b[j]
                    if !d.actor.isLoose, a[..<entryCount].contains(where: { $0.actor == d.actor && $0.counter >= d.counter }) {
                        continue
                    }
                    while i < a.count && a[i] < d { i += 1 }
                    if i == a.count || a[i] != d { return false }
                }
                return true
            }
        }
    }

    public var description: String {
        "{" + (entries.map { "\($0.actor):\($0.counter)" } + exactDots.map { "=\($0)" }).joined(separator: ",") + "}"
    }
}
