/// Objects called without the retain and release Swift puts around a call on an object read out of an array: two
/// atomic operations a call, on paths that run once per message (a node handling one, a lane taking one). Holds
/// the objects too, so they live as long as this value does and a call through it is always safe.
public struct Unretained<Object: AnyObject> {
    /// The objects, in order (what keeps them alive).
    public let objects: [Object]
    @usableFromInline let references: [Unmanaged<Object>]

    public init(_ objects: [Object] = []) {
        self.objects = objects
        references = objects.map { Unmanaged.passUnretained($0) }
    }

    public var count: Int { references.count }

    /// Calls `body` with object `index`, not retained for the call.
    @inlinable @inline(__always)
    public func with<R>(_ index: Int, _ body: (Object) throws -> R) rethrows -> R {
        try references[index]._withUnsafeGuaranteedRef(body)
    }
}

extension Unretained: @unchecked Sendable where Object: Sendable {}
