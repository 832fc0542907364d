import Foundation
import Histogram

/// A line of a chart.
public struct Series {
    public var name: String
    public var points: [(x: Double, y: Double)]
    public var dashed = false
    public init(name: String, points: [(x: Double, y: Double)], dashed: Bool = false) {
        self.name = name
        self.points = points
        self.dashed = dashed
    }
}

/// Hand-written SVG charts: titled axes with units, a legend, log or linear scales.
public enum Charts {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]

    /// Round numbers for an axis from 0 to at least `max`.
    static func niceTicks(_ max: Double, count: Int = 5) -> [Double] {
        guard max > 0, max.isFinite else { return [0, 1] }
        let raw = max / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        return stride(from: 0.0, through: ceil(max / step) * step + step / 2, by: step).map { $0 }
    }

    static func fmt(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1e6 { return String(format: "%.1fM", v / 1e6).replacingOccurrences(of: ".0M", with: "M") }
        if abs(v) >= 1e4 { return String(format: "%.0fk", v / 1e3) }
        if abs(v) >= 100 { return String(format: "%.0f", v) }
        if abs(v) >= 1 { return String(format: "%.3g", v) }
        return String(format: "%.3g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// A panel: axes, grid, lines, legend. `xLog` plots x on a log10 scale with the given tick labels.
    static func panel(
        x0: Double, y0: Double, width: Double, height: Double, title: String, xLabel: String, yLabel: String,
        series: [Series], xRange: ClosedRange<Double>, xTicks: [(Double, String)], xLog: Bool,
        yLog: Bool = false, shade: ClosedRange<Double>? = nil, shadeLabel: String? = nil, colorOffset: Int = 0
    ) -> String {
        var s = ""
        let left = x0 + 70, right = x0 + width - 20, top = y0 + 36, bottom = y0 + height - 48
        let maxY = series.flatMap { $0.points.map(\.y) }.filter(\.isFinite).max() ?? 1
        let minPositive = series.flatMap { $0.points.map(\.y) }.filter { $0 > 0 && $0.isFinite }.min() ?? 0.001
        let yTicks: [Double]
        let yLo: Double, yHi: Double
        if yLog {
            let lo = floor(log10(minPositive)), hi = ceil(log10(max(maxY, minPositive * 10)))
            yTicks = stride(from: lo, through: hi, by: 1).map { pow(10, $0) }
            yLo = lo
            yHi = hi
        } else {
            yTicks = niceTicks(maxY * 1.05)
            yLo = 0
            yHi = yTicks.last ?? 1
        }
        func px(_ x: Double) -> Double {
            let v = xLog ? log10(max(x, 1e-12)) : x
            let lo = xLog ? log10(xRange.lowerBound) : xRange.lowerBound
            let hi = xLog ? log10(xRange.upperBound) : xRange.upperBound
            return left + (v - lo) / max(hi - lo, 1e-12) * (right - left)
        }
        func py(_ y: Double) -> Double {
            let v = yLog ? log10(max(y, pow(10, yLo))) : y
            return bottom - (v - yLo) / max(yHi - yLo, 1e-12) * (bottom - top)
        }
        s += "<text x=\"\(x0 + width / 2)\" y=\"\(y0 + 20)\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">\(escape(title))</text>\n"
        if let shade {
            let a = px(max(shade.lowerBound, xRange.lowerBound)), b = px(min(shade.upperBound, xRange.upperBound))
            if b > a {
                s += "<rect x=\"\(a)\" y=\"\(top)\" width=\"\(b - a)\" height=\"\(bottom - top)\" fill=\"#eeeeee\"/>\n"
                if let shadeLabel {
                    s += "<text x=\"\((a + b) / 2)\" y=\"\(bottom - 8)\" text-anchor=\"middle\" font-size=\"11\" fill=\"#777\">\(escape(shadeLabel))</text>\n"
                }
            }
        }
        for t in yTicks {
            let y = py(t)
            s += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(right)\" y2=\"\(y)\" stroke=\"#dddddd\"/>\n"
            s += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\" font-size=\"11\">\(fmt(t))</text>\n"
        }
        for (t, label) in xTicks where xRange.contains(t) {
            let x = px(t)
            // The last label ends at the axis end instead of running past the picture.
            let anchor = x > right - 30 ? "end" : "middle"
            s += "<line x1=\"\(x)\" y1=\"\(top)\" x2=\"\(x)\" y2=\"\(bottom)\" stroke=\"#eeeeee\"/>\n"
            s += "<text x=\"\(x)\" y=\"\(bottom + 16)\" text-anchor=\"\(anchor)\" font-size=\"11\">\(escape(label))</text>\n"
        }
        s += "<line x1=\"\(left)\" y1=\"\(bottom)\" x2=\"\(right)\" y2=\"\(bottom)\" stroke=\"#333\"/>\n"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(bottom)\" stroke=\"#333\"/>\n"
        s += "<text x=\"\((left + right) / 2)\" y=\"\(bottom + 36)\" text-anchor=\"middle\" font-size=\"12\">\(escape(xLabel))</text>\n"
        s += "<text x=\"\(x0 + 16)\" y=\"\((top + bottom) / 2)\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 \(x0 + 16) \((top + bottom) / 2))\">\(escape(yLabel))</text>\n"
        for (i, line) in series.enumerated() where !line.points.isEmpty {
            let color = palette[(i + colorOffset) % palette.count]
            let d = line.points.enumerated().map { j, p in
                (j == 0 ? "M" : "L") + String(format: "%.1f,%.1f", px(p.x), py(p.y))
            }.joined(separator: " ")
            s += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(line.dashed ? " stroke-dasharray=\"6,4\"" : "")/>\n"
            if line.points.count == 1 {
                s += "<circle cx=\"\(px(line.points[0].x))\" cy=\"\(py(line.points[0].y))\" r=\"3\" fill=\"\(color)\"/>\n"
            }
            // Legend, top right, on a white box so that lines do not run through it.
            let ly = top + 14 + Double(i) * 16
            let lx = right - 150
            s += "<rect x=\"\(lx - 6)\" y=\"\(ly - 12)\" width=\"150\" height=\"16\" fill=\"white\" fill-opacity=\"0.85\"/>\n"
            s += "<rect x=\"\(lx)\" y=\"\(ly - 6)\" width=\"14\" height=\"3\" fill=\"\(color)\"/>\n"
            s += "<text x=\"\(lx + 20)\" y=\"\(ly)\" font-size=\"11\">\(escape(line.name))</text>\n"
        }
        return s
    }

    static func document(width: Double, height: Double, body: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif">
        <rect width="100%" height="100%" fill="white"/>
        \(body)</svg>

        """
    }

    /// The percentile spectrum, as HdrHistogram plots it: x is 1/(1−p) on a log scale.
    public static func percentileSpectrum(_ histograms: [(String, Histogram<UInt64>)], title: String) -> String {
        var series: [Series] = []
        var maxX = 100.0
        for (name, h) in histograms where h.totalCount > 0 {
            var points: [(Double, Double)] = []
            let limit = pow(10, ceil(log10(Double(max(h.totalCount, 10)))))
            let last = min(limit, 1e6)
            for v in h.percentiles(ticksPerHalfDistance: 5) {
                let p = v.percentileLevelIteratedTo
                if p >= 100 { break }
                let x = 1 / (1 - p / 100)
                // Beyond 1/(1-p) = count the percentile says nothing new: the line ends at the maximum.
                if x >= last { break }
                points.append((x, Double(v.value) / 1e6))
            }
            points.append((last, Double(h.max) / 1e6))
            maxX = max(maxX, last)
            series.append(Series(name: name, points: points))
        }
        let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
        let ticks = (0...6).map { (pow(10, Double($0)), labels[$0]) }
        let body = panel(x0: 0, y0: 0, width: 760, height: 420, title: title, xLabel: "Percentile",
                         yLabel: "Latency (ms)", series: series, xRange: 1...maxX, xTicks: ticks, xLog: true)
        return document(width: 760, height: 420, body: body)
    }

    /// Throughput and p99 latency over time; the warm-up shaded.
    public static func timeline(throughput: [Series], p99: [Series], warmup: Double, end: Double) -> String {
        let xs = (throughput + p99).flatMap { $0.points.map(\.x) }
        let lo = min(xs.min() ?? 0, -warmup), hi = max(xs.max() ?? 1, end)
        let tickStep = max(1, (hi - lo) / 10).rounded(.up)
        let ticks = stride(from: (lo / tickStep).rounded(.down) * tickStep, through: hi, by: tickStep).map { ($0, fmt($0)) }
        var body = panel(x0: 0, y0: 0, width: 760, height: 300, title: "Throughput over time",
                         xLabel: "Time since the measured phase began (s)", yLabel: "Operations per second",
                         series: throughput, xRange: lo...hi, xTicks: ticks, xLog: false,
                         shade: warmup > 0 ? lo...0 : nil, shadeLabel: warmup > 0 ? "warm-up" : nil)
        body += panel(x0: 0, y0: 300, width: 760, height: 300, title: "p99 latency over time",
                      xLabel: "Time since the measured phase began (s)", yLabel: "p99 latency (ms)",
                      series: p99, xRange: lo...hi, xTicks: ticks, xLog: false,
                      shade: warmup > 0 ? lo...0 : nil, shadeLabel: warmup > 0 ? "warm-up" : nil)
        return document(width: 760, height: 600, body: body)
    }

    /// A bar of a fault chart: node row, start and end (s), kind ("down", "stalled", "slow", "partitioned").
    public struct FaultBar {
        public var node: Int
        public var start: Double
        public var end: Double
        public var kind: String
        public init(node: Int, start: Double, end: Double, kind: String) {
            self.node = node
            self.start = start
            self.end = end
            self.kind = kind
        }
    }

    /// Which node was in which condition when: one row per node, time on x, a legend of the conditions.
    public static func faultTimeline(_ bars: [FaultBar], nodes: Int, end: Double) -> String {
        let kinds = [("down", "#d62728"), ("stalled", "#ff7f0e"), ("slow", "#9467bd"), ("partitioned", "#17becf")]
        let rowHeight = 22.0, left = 80.0, right = 740.0, top = 56.0
        let height = top + Double(nodes) * rowHeight + 60
        let hi = max(end, 1)
        func px(_ t: Double) -> Double { left + (right - left) * min(max(t, 0), hi) / hi }
        var b = "<text x=\"380\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">Faults over time</text>\n"
        for (i, (name, color)) in kinds.enumerated() {
            let x = left + Double(i) * 130
            b += "<rect x=\"\(x)\" y=\"32\" width=\"14\" height=\"10\" fill=\"\(color)\"/>"
            b += "<text x=\"\(x + 20)\" y=\"41\" font-size=\"11\">\(name)</text>\n"
        }
        for n in 0..<nodes {
            let y = top + Double(n) * rowHeight
            b += "<rect x=\"\(left)\" y=\"\(y)\" width=\"\(right - left)\" height=\"\(rowHeight - 4)\" fill=\"#eef5ee\"/>"
            b += "<text x=\"\(left - 8)\" y=\"\(y + rowHeight / 2 + 2)\" text-anchor=\"end\" font-size=\"11\">node \(n + 1)</text>\n"
        }
        for bar in bars {
            guard let color = kinds.first(where: { $0.0 == bar.kind })?.1, bar.end > bar.start else { continue }
            let y = top + Double(bar.node) * rowHeight
            let x0 = px(bar.start), x1 = max(px(bar.end), x0 + 1)
            b += "<rect x=\"\(fmtCoord(x0))\" y=\"\(y)\" width=\"\(fmtCoord(x1 - x0))\" height=\"\(rowHeight - 4)\" fill=\"\(color)\"/>\n"
        }
        let axisY = top + Double(nodes) * rowHeight + 4
        b += "<line x1=\"\(left)\" y1=\"\(axisY)\" x2=\"\(right)\" y2=\"\(axisY)\" stroke=\"black\"/>\n"
        for t in niceTicks(hi, count: 8) where t <= hi * 1.0001 {
            b += "<line x1=\"\(fmtCoord(px(t)))\" y1=\"\(axisY)\" x2=\"\(fmtCoord(px(t)))\" y2=\"\(axisY + 5)\" stroke=\"black\"/>"
            b += "<text x=\"\(fmtCoord(px(t)))\" y=\"\(axisY + 18)\" text-anchor=\"middle\" font-size=\"11\">\(fmt(t))</text>\n"
        }
        b += "<text x=\"\((left + right) / 2)\" y=\"\(axisY + 40)\" text-anchor=\"middle\" font-size=\"12\">Time since the measured phase began (s)</text>\n"
        return document(width: 760, height: height, body: b)
    }

    static func fmtCoord(_ v: Double) -> String { String(format: "%.1f", v) }

    /// P(consistent read) against the time since the write committed: one line per series.
    public static func visibility(_ series: [Series], title: String = "Probability of a consistent read after a write commits") -> String {
        let hi = max(series.flatMap { $0.points.map(\.x) }.max() ?? 1, 1e-9)
        let ticks = niceTicks(hi, count: 8).filter { $0 <= hi * 1.0001 }.map { ($0, fmt($0)) }
        let body = panel(x0: 0, y0: 0, width: 760, height: 420, title: title,
                         xLabel: "Time since the write committed (ms)", yLabel: "P(consistent read)",
                         series: series + [Series(name: "", points: [(0, 1)])].filter { _ in false },
                         xRange: 0...hi, xTicks: ticks, xLog: false)
        return document(width: 760, height: 420, body: body)
    }
}
