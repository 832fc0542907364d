import Testing
@testable import ReplicationCore

@Suite("Coordinator's table of requests in flight")
struct PendingTableTests {
    func request(_ id: UInt64) -> Coordinator.Pending {
        let p = Coordinator.Pending()
        p.id = id
        return p
    }

    @Test("finds a request by id, not a later one in its slot; grows past the span of ids in flight; in id order")
    func table() {
        var t = Coordinator.PendingTable()
        // One request stays while 10,000 later ones come and go, 100 in flight at a time (a timeout's worth).
        let old = request(1)
        t.insert(old)
        var live: [UInt64] = []
        for id in UInt64(2)...10_001 {
            t.insert(request(id))
            live.append(id)
            if live.count > 100 { #expect(t.remove(live.removeFirst())?.id != nil) }
            #expect(t[1] === old)
        }
        #expect(t.count == 1 + live.count)
        // Every id in flight is found; ids finished, or never started, are not (their slots hold others or none).
        #expect(live.allSatisfy { t[$0]?.id == $0 })
        #expect(t[2] == nil && t[9_000] == nil && t[20_000] == nil && t.remove(2) == nil)
        // The table spans ids 1 to 10,001: at least 16,384 slots, so no two ids in flight share one.
        #expect(t.slots.count >= 16_384)
        #expect(t.inOrder().map(\.id) == [1] + live)
        t.removeAll()
        #expect(t.isEmpty && t[1] == nil && t.inOrder().isEmpty)
    }
}
