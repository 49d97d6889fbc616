/// The standard writer workload of docs/benchmarks.md, generated exactly (SplitMix64,
/// seed 20250101, one stream in the documented order). Spans are produced in batches
/// so a run can either keep them all (generated up front) or stream them (flat memory).
struct BenchWorkload {
    struct Span {
        var begin: UInt64
        var end: UInt64
        var name: UInt16
        var target: UInt16
        var location: UInt16
    }

    struct Location {
        var file: Int
        var line: UInt32
    }

    static let processId = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    static let exe = "bench-exe"
    static let t0: UInt64 = 1_700_000_000_000_000_000
    static let threadCount = 8

    var state: UInt64 = 20_250_101
    let spansPerThread: Int
    let asyncSpanCount: Int
    private(set) var names: [[UInt8]] = []
    private(set) var targets: [[UInt8]] = []
    private(set) var files: [[UInt8]] = []
    private(set) var locations: [Location] = []

    /// `scale` multiplies the thread and async span counts (1 is the standard workload).
    init(scale: Int) {
        spansPerThread = 125_000 * scale
        asyncSpanCount = 200_000 * scale
        let alpha = Array("abcdefghijklmnopqrstuvwxyz_0123456789".utf8)
        func randString(_ length: Int) -> [UInt8] { (0..<length).map { _ in alpha[Int(below(37))] } }
        for _ in 0..<500 { names.append(randString(10 + Int(below(31)))) }
        for _ in 0..<50 { targets.append(randString(5 + Int(below(16)))) }
        for _ in 0..<100 { files.append(Array("src/".utf8) + randString(5 + Int(below(16))) + Array(".rs".utf8)) }
        for j in 0..<300 {
            let file = Int(below(100))
            locations.append(Location(file: file, line: UInt32(1 + 13 * j + Int(below(13)))))
        }
    }

    static func streamId(_ k: Int) -> String {
        let digits = String(k)
        return "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - digits.count) + digits
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: UInt64) -> UInt64 { next() % n }

    /// Generates thread `k`'s spans in pre-order, handing them over in batches of at
    /// least `batchSize` whole call trees (and a final partial batch).
    mutating func threadSpans(_ k: Int, batchSize: Int, _ consume: (inout [Span]) -> Void) {
        var batch: [Span] = []
        batch.reserveCapacity(batchSize + 512)
        var t = Self.t0 + 1000 * UInt64(k)
        var count = 0
        func node(_ depth: Int, _ me: inout BenchWorkload) {
            let name = UInt16(me.below(500)), target = UInt16(me.below(50)), location = UInt16(me.below(300))
            let slot = batch.count
            batch.append(Span(begin: t, end: 0, name: name, target: target, location: location))
            count += 1
            t += 1 + me.below(1000)
            if depth < 6 {
                let kids = me.below(4)
                for _ in 0..<kids {
                    if count >= me.spansPerThread { break }
                    node(depth + 1, &me)
                    t += me.below(500)
                }
            }
            t += 1 + me.below(1000)
            batch[slot].end = t
        }
        while count < spansPerThread {
            t += 1 + below(10000)
            node(1, &self)
            if batch.count >= batchSize {
                consume(&batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { consume(&batch) }
    }

    /// Generates the async spans in batches of `batchSize`.
    mutating func asyncSpans(batchSize: Int, _ consume: (inout [Span]) -> Void) {
        var batch: [Span] = []
        batch.reserveCapacity(batchSize)
        var t = Self.t0
        for _ in 0..<asyncSpanCount {
            t += below(50000)
            let duration = 1 + below(5_000_000)
            let name = UInt16(below(500)), target = UInt16(below(50)), location = UInt16(below(300))
            batch.append(Span(begin: t, end: t + duration, name: name, target: target, location: location))
            if batch.count == batchSize {
                consume(&batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { consume(&batch) }
    }
}
