import Foundation
import Testing
@testable import Reports
import ReplicationCore

/// run.json is written by ``JSONText``; Foundation's reader is the oracle: what it reads back is what was written.
@Suite("run.json's writer")
struct JSONTextTests {
    @Test("random documents read back equal through Foundation's JSON reader")
    func readsBack() throws {
        var rng = Xoshiro(seed: 7)
        func string() -> String {
            let alphabet = Array("ab/\\\"\n\t\r\u{1}\u{1F}µ→ 😀x0")
            return String((0..<Int(rng.next() % 8)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
        }
        func value(_ depth: Int) -> Any {
            switch rng.next() % (depth > 3 ? 5 : 7) {
            case 0: return string()
            case 1: return rng.next() % 2 == 0
            case 2: return Int(truncatingIfNeeded: rng.next()) >> Int(rng.next() % 64)
            case 3: return Double(Int64(truncatingIfNeeded: rng.next()) >> 20) / 1000  // fractions and integral values
            case 4: return Double(bitPattern: 0x3FF0_0000_0000_0000 | rng.next() >> 12) * 1e-7
            case 5: return (0..<Int(rng.next() % 4)).map { _ in value(depth + 1) }
            default:
                return Dictionary((0..<Int(rng.next() % 4)).map { _ in (string(), value(depth + 1)) }, uniquingKeysWith: { a, _ in a })
            }
        }
        for _ in 0..<300 {
            let doc: [String: Any] = ["v": value(0), "w": value(0)]
            let text = JSONText.document(doc)
            let back = try JSONSerialization.jsonObject(with: Data(text.utf8))
            #expect(Self.same(doc, back), "\(text)")
        }
    }

    /// Whether Foundation's reading `b` of what `a` was written as is `a` (the written value's type decides how
    /// the number read is compared).
    static func same(_ a: Any, _ b: Any) -> Bool {
        switch a {
        case let a as String: return (b as? String) == a
        case let a as Bool: return (b as? Bool) == a
        case let a as Int: return (b as? Int) == a
        // Foundation reads long mantissas through NSDecimalNumber, a few units in the last place off (its own
        // output too); ``numbersReadBackExactly`` checks the text exactly.
        case let a as Double: return (b as? Double).map { abs($0 - a) <= abs(a) * 1e-15 } ?? false
        case let a as [Any]:
            guard let b = b as? [Any], a.count == b.count else { return false }
            return zip(a, b).allSatisfy { same($0, $1) }
        case let a as [String: Any]:
            guard let b = b as? [String: Any], a.count == b.count else { return false }
            return a.allSatisfy { k, v in b[k].map { same(v, $0) } ?? false }
        default: return false
        }
    }

    @Test("a number's text reads back as the same Double")
    func numbersReadBackExactly() {
        var rng = Xoshiro(seed: 11)
        for i in 0..<20_000 {
            let v = i % 2 == 0 ? Double(bitPattern: rng.next()) : Double(Int64(truncatingIfNeeded: rng.next()) >> 10) / 1000
            guard v.isFinite else { continue }
            var text = ""
            JSONText.number(v, to: &text)
            #expect(Double(text) == v, "\(v) written as \(text)")
        }
    }

    @Test("layout: sorted keys, two spaces, integral doubles without a fraction, null for what JSON cannot say")
    func layout() {
        let doc: [String: Any] = ["b": [1, 2.5, 3.0], "a": ["y": Double.nan, "x": "a\"b", "z": -Double.infinity], "c": [String](), "d": Optional<Int>.none as Any]
        #expect(JSONText.document(doc) == """
            {
              "a" : {
                "x" : "a\\"b",
                "y" : null,
                "z" : null
              },
              "b" : [
                1,
                2.5,
                3
              ],
              "c" : [],
              "d" : null
            }

            """)
    }
}
