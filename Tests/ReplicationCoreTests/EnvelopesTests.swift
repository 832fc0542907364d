import Testing
@testable import ReplicationCore

@Suite("Outbox envelopes")
struct EnvelopesTests {
    func ping(_ i: Int) -> Envelope { Envelope(from: .node(i), to: .node(i + 1), message: .ping(UInt64(i))) }
    func tokens(_ es: some Sequence<Envelope>) -> [UInt64] {
        es.map { e in if case .ping(let t) = e.message { return t } else { return .max } }
    }

    @Test("appends grow it in order; drain hands each out once, in order, and leaves it empty and reusable")
    func drainInOrder() {
        var box = Envelopes()
        for i in 0..<100 { box.append(ping(i)) }  // past the first capacity, several times
        #expect(box.count == 100 && tokens(box) == (0..<100).map(UInt64.init))
        var out: [Envelope] = []
        box.drain { out.append($0) }
        #expect(tokens(out) == (0..<100).map(UInt64.init) && box.isEmpty && tokens(box).isEmpty)
        box.append(ping(7))
        var moved: [UInt64] = []
        box.drain(moving: { p in
            if case .ping(let t) = p.move().message { moved.append(t) }
        })
        #expect(moved == [7] && box.isEmpty)
    }

    @Test("a copy is a value: appending to, draining or emptying one leaves the other as it was")
    func copyOnWrite() {
        var a = Envelopes()
        for i in 0..<3 { a.append(ping(i)) }
        var b = a
        b.append(ping(9))
        #expect(tokens(a) == [0, 1, 2] && tokens(b) == [0, 1, 2, 9])
        var c = a
        c.drain(moving: { $0.deinitialize(count: 1) })
        #expect(tokens(a) == [0, 1, 2] && c.isEmpty)
        var d = b
        d.removeAll()
        #expect(tokens(b) == [0, 1, 2, 9] && d.isEmpty)
        // An outbox's messages go through a swap, as the simulator's dispatch does.
        var out = Outbox()
        out.send(.ping(5), from: .node(0), to: .node(1))
        var spare = Envelopes()
        swap(&spare, &out.messages)
        #expect(out.messages.isEmpty && tokens(spare) == [5])
    }
}
