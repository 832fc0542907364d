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
    /// For a put or delete: the dot the write was given.
    public var dot: Dot?
    /// The coordinator that answered.
    public var coordinator: Endpoint

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

/// Coordinator → replica: merge these versions (a put's new state, a read repair, a handoff).
public struct ReplicaWrite: Sendable {
    /// The coordinator's request id; 0 when no ack is wanted (read repair).
    public var request: UInt64
    public var key: UInt64
    public var versions: [Version]
}

/// Replica → coordinator: the write was stored.
public struct ReplicaAck: Sendable {
    public var request: UInt64
    public var key: UInt64
    /// The replica's state of the key is now exactly the tombstone(s) just written: the delete may be purged
    /// once every replica says so.
    public var tombstoneOnly: Bool = false
}

/// Coordinator → replica: send me your state of the key.
public struct ReplicaRead: Sendable {
    public var request: UInt64
    public var key: UInt64
}

/// Replica → coordinator: my state of the key (copies).
public struct ReplicaReadResponse: Sendable {
    public var request: UInt64
    public var key: UInt64
    public var versions: [Version]
}

/// Coordinator → replica: every replica holds this tombstone; remove the key if it is still exactly that.
public struct Purge: Sendable {
    public var key: UInt64
    public var dots: [Dot]
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

    public var kind: MessageKind {
        switch self {
        case .request, .reply: return .client
        case .write, .purge: return .write
        case .writeAck: return .writeAck
        case .read: return .read
        case .readResponse: return .readResponse
        }
    }

    /// Releases every buffer the message owns (a message that is dropped or cannot be delivered).
    public func release(to pool: BufferPool) {
        switch self {
        case .request(let r): if let v = r.value { pool.release(v) }
        case .reply(let r): Siblings.release(r.versions, pool: pool)
        case .write(let w): Siblings.release(w.versions, pool: pool)
        case .readResponse(let r): Siblings.release(r.versions, pool: pool)
        case .writeAck, .read, .purge: break
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
    public var messages: [Envelope] = []
    /// `(at, token)`: call back `timer(token)` at time `at` (ns).
    public var timers: [(at: UInt64, token: UInt64)] = []

    public init() {}

    @inlinable
    public mutating func send(_ message: Message, from: Endpoint, to: Endpoint) {
        messages.append(Envelope(from: from, to: to, message: message))
    }

    @inlinable
    public mutating func setTimer(at: UInt64, token: UInt64) { timers.append((at, token)) }

    public mutating func removeAll() {
        messages.removeAll(keepingCapacity: true)
        timers.removeAll(keepingCapacity: true)
    }
}
