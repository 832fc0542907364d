import Testing
@testable import BufferPool

@Suite("Size classes")
struct SizeClassTests {
    @Test("classes are jemalloc's: 16 B steps to 128 B, then four per doubling up to 1 MiB")
    func classTable() {
        let sizes = (0..<SizeClass.count).map(SizeClass.size(ofIndex:))
        #expect(Array(sizes.prefix(12)) == [16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256])
        #expect(sizes.last == 1 << 20)
        #expect(sizes == sizes.sorted() && Set(sizes).count == sizes.count)
        for (i, size) in sizes.enumerated() where size > 128 {
            let power = 1 << (Int.bitWidth - 1 - (size - 1).leadingZeroBitCount)  // 2^floor(log2(size-1))
            #expect((size - power) % (power / 4) == 0, "class \(i) = \(size) is not 2^k * (1 + j/4)")
        }
    }

    @Test("every size rounds up to the smallest class that holds it")
    func rounding() {
        let sizes = (0..<SizeClass.count).map(SizeClass.size(ofIndex:))
        var probes = [0, 1, 15, 16, 17, 127, 128, 129, 159, 160, 161, 255, 256, 257, 4095, 4096, 4097,
                      (1 << 20) - 1, 1 << 20]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 { probes.append(Int.random(in: 0...(1 << 20), using: &generator)) }
        for size in probes {
            let index = SizeClass.index(for: size)!
            let expected = sizes.firstIndex { $0 >= size }!
            #expect(index == expected, "size \(size): class \(index), expected \(expected)")
            #expect(SizeClass.roundedSize(for: size) == sizes[expected])
        }
        #expect(SizeClass.index(for: (1 << 20) + 1) == nil)
        #expect(SizeClass.roundedSize(for: 3 << 20) == 3 << 20)
    }

    @Test("waste above 128 B is at most 20% of the class")
    func boundedWaste() {
        for size in 129...(1 << 20) where size % 7 == 0 {
            let rounded = SizeClass.roundedSize(for: size)
            #expect(Double(rounded - size) / Double(rounded) < 0.2)
        }
    }
}
