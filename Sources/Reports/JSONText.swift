/// Writes the JSON documents the reports build as dictionaries and arrays: objects' keys sorted, two spaces of
/// indentation, `"key" : value` (the layout Foundation's `JSONSerialization` gives with `.prettyPrinted` and
/// `.sortedKeys`, which it replaced: that took 51 M instructions for one 21 KB run.json, 2.5% of a
/// 100,000-operation simulation and of every sweep point).
///
/// Values: `String`, `Bool`, the integer types, `Double` (integral values without a fraction; NaN and infinities,
/// which JSON cannot say, as `null`), `[String: Any]`, `[Any]`, and optionals of these (`nil` as `null`).
public enum JSONText {
    public static func document(_ value: Any) -> String {
        var out = ""
        out.reserveCapacity(16_384)
        write(value, to: &out, indent: 0)
        return out + "\n"
    }

    static func write(_ value: Any, to out: inout String, indent: Int) {
        switch value {
        case let v as String: quote(v, to: &out)
        case let v as Bool: out += v ? "true" : "false"
        case let v as Int: out += String(v)
        case let v as Int64: out += String(v)
        case let v as Int32: out += String(v)
        case let v as UInt64: out += String(v)
        case let v as UInt32: out += String(v)
        case let v as UInt: out += String(v)
        case let v as Double: number(v, to: &out)
        case let v as [String: Any]:
            if v.isEmpty { out += "{}"; return }
            out += "{\n"
            for (i, key) in v.keys.sorted().enumerated() {
                if i > 0 { out += ",\n" }
                spaces(indent + 2, to: &out)
                quote(key, to: &out)
                out += " : "
                write(v[key]!, to: &out, indent: indent + 2)
            }
            out += "\n"
            spaces(indent, to: &out)
            out += "}"
        case let v as [Any]:
            if v.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, element) in v.enumerated() {
                if i > 0 { out += ",\n" }
                spaces(indent + 2, to: &out)
                write(element, to: &out, indent: indent + 2)
            }
            out += "\n"
            spaces(indent, to: &out)
            out += "]"
        case Optional<Any>.none: out += "null"
        case Optional<Any>.some(let wrapped): write(wrapped, to: &out, indent: indent)
        default: quote(String(describing: value), to: &out)
        }
    }

    static func number(_ v: Double, to out: inout String) {
        if !v.isFinite {
            out += "null"
        } else if v == v.rounded(), abs(v) < 1e15 {
            out += String(Int64(v))
        } else {
            out += String(v)  // the shortest text that reads back as the same Double
        }
    }

    static func spaces(_ n: Int, to out: inout String) {
        out += String(repeating: " ", count: n)
    }

    static func quote(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}
