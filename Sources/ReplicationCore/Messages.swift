import BufferPool

/// A party that sends or receives messages: a node, or a client (a load-generator thread).
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public let raw: UInt32
    @inlinable init(raw: UInt32) { self.raw = raw }
    @inlinable public static func node(_ i: Int) -> Endpoint { Endpoint(raw: UInt32(truncatingIfNeeded: i)) }
    @inlinable public static func client(_ i: Int) -> Endpoint { Endpoint(raw: 1 << 31 | UInt32(truncatingIfNeeded: i)) }
    @inlinable public var isClient: Bool { raw & (1 << 31) != 0 }
    @inlinable public var index: Int { Int(raw & ~(1 << 31)) }
    public var description: String { isClient ? "client\(index)" : "node\(index + 1)" }
}

/// A client operation.
public enum Operation: UInt8, Sendable {
    case get, put, delete
}

/// Outcome of a client operation.
public enum Status: UInt8, Sendable {
    /// w acks (put, delete) or r responses (get) before the timeout.
    case ok
    /// The quorum was not reached before the timeout.
    case timeout
    /// Too few replicas could be asked.
    case unavailable
    /// Too few replicas took the write: the key held ``CoreConfig/maxSiblings`` versions the write would
    /// not supersede (Riak's `max_siblings`).
    case rejected
}

/// A client's get, put or delete.
public struct ClientRequest: Sendable {
    /// The client's own tag, echoed in the reply.
    public var tag: UInt64
    public var op: Operation
    public var key: UInt64
    /// The value of a put (owned by the request until the coordinator takes it), or what a delete's tombstone
    /// carries.
    public var value: PoolBuffer?
    /// The context the client last saw for the key (empty: a blind write).
    public var context: CausalContext

    public init(tag: UInt64, op: Operation, key: UInt64, value: PoolBuffer? = nil, context: CausalContext = .empty) {
        self.tag = tag
        self.op = op
        self.key = key
        self.value = value
        self.context = context
    }
}

/// The coordinator's answer.
public struct ClientReply: Sendable {
    public var tag: UInt64
    public var op: Operation
    public var key: UInt64
    public var status: Status
    /// For a get: the reconciled versions (siblings; tombstones included, flagged), copies the client releases.
    public var versions: [Version]
    /// The context to send with the next write of the key: for a get, everything the reconciled state covers; for
    /// a put or delete, the new version's context and dot.
    public var context: CausalContext
    /// For a put or delete: the dot the write was given. A write refused before it was given one (`.rejected` by
    /// the coordinating replica, or `.unavailable`: no coordinator took it) is held nowhere.
    public var dot: Dot?
    /// The coordinator that answered.
    public var coordinator: Endpoint

    /// A put or delete that failed before any replica could hold it (see ``dot``): it never takes effect, where one
    /// that timed out, or was refused by replicas after its coordinator stored it, may.
    public var isHeldNowhere: Bool {
        switch status {
        case .rejected, .unavailable: return dot == nil
        case .ok, .timeout: return false
        }
    }

    public init(
        tag: UInt64, op: Operation, key: UInt64, status: Status, versions: [Version] = [],
        context: CausalContext = .empty, dot: Dot? = nil, coordinator: Endpoint
    ) {
        self.tag = tag
        self.op = op
        self.key = key
        self.status = status
        self.versions = versions
        self.context = context
        self.dot = dot
        self.coordinator = coordinator
    }
}

/// Why a replica write was sent.
public enum WriteOrigin: UInt8, Sendable {
    /// A client's put or delete.
    case client
    /// The reconciled state after a read.
    case readRepair
    /// A key found different by a Merkle-tree exchange.
    case antiEntropy
    /// A hint handed to the node it was meant for.
    case handoff
}

/// Coordinator → replica: merge these versions (a put's new state, a read repair, a handoff).
public struct ReplicaWrite: Sendable {
    /// The coordinator's request id; 0 when no ack is wanted (read repair, anti-entropy).
    public var request: UInt64
    public var key: UInt64
    public var versions: [Version]
    /// Sloppy quorum: the receiver is a fallback holding this write for node `hintFor` (−1: it is a replica).
    public var hintFor: Int32 = -1
    public var origin: WriteOrigin = .client

    public init(request: UInt64, key: UInt64, versions: [Version], hintFor: Int32 = -1, origin: WriteOrigin = .client) {
        self.request = request
        self.key = key
        self.versions = versions
        self.hintFor = hintFor
        self.origin = origin
    }
}

/// Replica → coordinator: the write was stored.
public struct ReplicaAck: Sendable {
    public var request: UInt64
    public var key: UInt64
    /// The replica's state of the key is now exactly the tombstone(s) just written: the delete may be purged
    /// once every replica says so.
    public var tombstoneOnly: Bool = false
    /// The replica refused the write: the key would have held more than ``CoreConfig/maxSiblings`` versions.
    public var rejected: Bool = false
}

/// Coordinator → replica: send me your state of the key.
public struct ReplicaRead: Sendable {
    public var request: UInt64
    public var key: UInt64
    /// The coordinator's own state of the key as ``MerkleForest/digest(key:_:)`` (0: it has none): a replica whose
    /// state has this digest answers ``ReplicaReadResponse/same`` instead of sending its versions (a digest read).
    public var digest: UInt64 = 0

    public init(request: UInt64, key: UInt64, digest: UInt64 = 0) {
        self.request = request
        self.key = key
        self.digest = digest
    }
}

/// Replica → coordinator: my state of the key (each version with its own handle to its value), or `same`: exactly
/// the state whose digest you sent.
public struct ReplicaReadResponse: Sendable {
    public var request: UInt64
    public var key: UInt64
    public var versions: [Version]
    public var same = false

    public init(request: UInt64, key: UInt64, versions: [Version], same: Bool = false) {
        self.request = request
        self.key = key
        self.versions = versions
        self.same = same
    }
}

/// Coordinator → replica: every replica holds this tombstone; remove the key if it is still exactly that.
public struct Purge: Sendable {
    public var key: UInt64
    public var dots: [Dot]
}

/// One node of a Merkle tree: its partition, its index in the tree (heap order: root 0, children 2i+1 and 2i+2),
/// and its hash.
public struct TreeNode: Sendable, Equatable {
    public var partition: UInt32
    public var index: UInt32
    public var hash: UInt64
    public init(partition: UInt32, index: UInt32, hash: UInt64) {
        self.partition = partition
        self.index = index
        self.hash = hash
    }
}

/// Anti-entropy messages between two replicas of the same ranges.
public enum AntiEntropyMessage: Sendable {
    /// "My hashes of these tree nodes": the receiver answers with its children of the nodes that differ, or with
    /// its keys under the leaves that differ.
    case tree([TreeNode])
    /// "My keys (with a digest of each one's versions) under these leaves": the receiver sends its versions of the
    /// keys that differ and pulls the sender's.
    case keys(leaves: [TreeNode], keys: [(key: UInt64, digest: UInt64)])
    /// "Send me your versions of these keys."
    case pull([UInt64])
}

/// The kinds of message that `--delay-*` distributions apply to.
public enum MessageKind: Int, Sendable, CaseIterable {
    /// client ↔ server-side coordinator
    case client
    /// coordinator → replica write (W of PBS), also read repair and purge
    case write
    /// replica → coordinator ack (A)
    case writeAck
    /// coordinator → replica read (R)
    case read
    /// replica → coordinator response (S)
    case readResponse
}

/// Every message of the protocol: value types.
public enum Message: Sendable {
    case request(ClientRequest)
    case reply(ClientReply)
    case write(ReplicaWrite)
    case writeAck(ReplicaAck)
    case read(ReplicaRead)
    case readResponse(ReplicaReadResponse)
    case purge(Purge)
    /// Failure detection: "are you there?" and its answer, sent only to suspected peers.
    case ping(UInt64)
    case pong(UInt64)
    case antiEntropy(AntiEntropyMessage)

    public var kind: MessageKind {
        switch self {
        case .request, .reply: return .client
        case .write, .purge, .antiEntropy: return .write
        case .writeAck: return .writeAck
        case .read, .ping: return .read
        case .readResponse, .pong: return .readResponse
        }
    }

    /// Releases every buffer the message owns (a message that is dropped or cannot be delivered).
    public func release(to pool: BufferPool) {
        switch self {
        case .request(let r): if let v = r.value { pool.release(v) }
        case .reply(let r): Siblings.release(r.versions, pool: pool)
        case .write(let w): Siblings.release(w.versions, pool: pool)
        case .readResponse(let r): Siblings.release(r.versions, pool: pool)
        case .writeAck, .read, .purge, .ping, .pong, .antiEntropy: break
        }
    }
}

/// A message with its addresses.
public struct Envelope: Sendable {
    public var from: Endpoint
    public var to: Endpoint
    public var message: Message

    public init(from: Endpoint, to: Endpoint, message: Message) {
        self.from = from
        self.to = to
        self.message = message
    }
}

/// What a state machine asks of its runtime after handling an input: messages to send and timers to set.
public struct Outbox: Sendable {
    public var messages = Envelopes()
    /// `(at, token)`: call back `timer(token)` at time `at` (ns).
    public var timers: [(at: UInt64, token: UInt64)] = []

    public init() {}

    @inlinable
    public mutating func send(_ message: consuming Message, from: Endpoint, to: Endpoint) {
        messages.append(Envelope(from: from, to: to, message: message))
    }

    @inlinable
    public mutating func setTimer(at: UInt64, token: UInt64) { timers.append((at, token)) }

    public mutating func removeAll() {
        messages.removeAll()
        timers.removeAll(keepingCapacity: true)
    }
}

/// Envelopes in send order, kept for a runtime to drain after each input: moved out one by one by their bytes,
/// then forgotten all at once. An `Array` could not forget them without destroying each slot, so each drained
/// slot was given a placeholder that was then popped and destroyed: two calls per message, 2% of a simulation.
/// A value (copy on write); copies of it and its iterator's elements are copies of the envelopes.
public struct Envelopes: Sequence, @unchecked Sendable {
    @usableFromInline
    final class Storage {
        @usableFromInline var base: UnsafeMutablePointer<Envelope>
        @usableFromInline var count = 0
        @usableFromInline var capacity: Int

        @usableFromInline
        init(capacity: Int) {
            self.capacity = capacity
            base = .allocate(capacity: capacity)
        }

        deinit {
            base.deinitialize(count: count)
            base.deallocate()
        }

        @usableFromInline
        func copy() -> Storage {
            let s = Storage(capacity: capacity)
            s.base.initialize(from: base, count: count)
            s.count = count
            return s
        }

        @usableFromInline
        func grow() {
            let grown = UnsafeMutablePointer<Envelope>.allocate(capacity: capacity * 2)
            grown.moveInitialize(from: base, count: count)
            base.deallocate()
            base = grown
            capacity *= 2
        }
    }

    @usableFromInline var storage = Storage(capacity: 4)

    public init() {}

    @inlinable public var count: Int { storage.count }
    @inlinable public var isEmpty: Bool { storage.count == 0 }

    @inlinable
    mutating func unique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    @inlinable
    public mutating func append(_ envelope: consuming Envelope) {
        unique()
        let s = storage
        if s.count == s.capacity { s.grow() }
        (s.base + s.count).initialize(to: envelope)
        s.count += 1
    }

    /// Hands every envelope to `body`, in order, moved out (not copied: no retain and release of what the
    /// message holds), and leaves it empty with its capacity. `body` must not touch this buffer.
    @inlinable
    public mutating func drain(_ body: (consuming Envelope) -> Void) {
        drain(moving: { body($0.move()) })
    }

    /// Hands the address of every envelope to `body`, in order, which moves it out (or deinitializes it): for a
    /// caller that moves envelopes on by their bytes, where even a `consuming` parameter was copied. Leaves it
    /// empty with its capacity. `body` must not touch this buffer.
    @inlinable
    public mutating func drain(moving body: (UnsafeMutablePointer<Envelope>) -> Void) {
        unique()
        let s = storage
        let n = s.count
        for i in 0..<n { body(s.base + i) }
        s.count = 0
    }

    /// Destroys every envelope (releasing nothing to a pool: the caller has), keeping the capacity.
    public mutating func removeAll() {
        unique()
        storage.base.deinitialize(count: storage.count)
        storage.count = 0
    }

    public struct Iterator: IteratorProtocol {
        @usableFromInline let storage: Storage
        @usableFromInline var i = 0
        @inlinable init(storage: Storage) { self.storage = storage }
        @inlinable
        public mutating func next() -> Envelope? {
            guard i < storage.count else { return nil }
            defer { i += 1 }
            return storage.base[i]
        }
    }

    @inlinable public func makeIterator() -> Iterator { Iterator(storage: storage) }
}

extension Array {
    /// `removeAll(keepingCapacity: true)`, cheaper for the few elements a runtime handles at a time: that goes
    /// through the generic `replaceSubrange`, ~180 instructions a call however few there are (3% of a
    /// simulation); popping costs a few an element.
    @inlinable
    public mutating func emptyKeepingCapacity() {
        if count > 16 {
            removeAll(keepingCapacity: true)
            return
        }
        while popLast() != nil {}
    }
}

extension Envelope {
    /// What a variable holds once its envelope was moved out by its bytes: nothing to release. Made where it is used
    /// (a stored constant was copied through the value witness, retain checks and all, once per message).
    @inlinable public static var vacant: Envelope { Envelope(from: .node(0), to: .node(0), message: .ping(0)) }
}
