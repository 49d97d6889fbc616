import ArrowTestSupport
import Testing
@testable import PerfettoCore
import ScenarioSupport

/// Random thread-span workloads against the depth bands of the lanes layouts: deep chains,
/// equal times, spans ending exactly where the next begins, zero-length spans, improper
/// overlap, times up to Int64.max, spans outside the range, small batches, and a thread's
/// spans given in several addThreadSpans calls (as `generate_trace_chunks` does: groups of
/// 65,536 rows). Every span must be written once with its own times on the track its
/// depth (over all the thread's spans, whatever the calls) gives; properly nested input
/// must validate clean; the micromegas layout must write what the writer's own calls do.
struct DepthBandStressTests {
    static let threads = [ThreadInfo(streamId: "stream-a", threadId: 7, name: "worker-7"),
                          ThreadInfo(streamId: "stream-b", threadId: 8, name: "worker-8")]
    static let processId = "11111111-2222-3333-4444-555555555555"

    struct Rng {
        var state: UInt64
        mutating func next(_ n: UInt64) -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return n == 0 ? 0 : (state >> 11) % n
        }
    }

    static func span(_ b: UInt64, _ e: UInt64, _ name: String) -> Scenario.Span {
        Scenario.Span(begin: b, end: e, name: name, target: "t", filename: "f.rs", line: 3)
    }

    /// Properly nested spans of one thread in begin order (a call tree, depth first), from
    /// `start`: chains up to `maxChain` deep, zero gaps and zero lengths on purpose.
    static func nested(_ rng: inout Rng, start: UInt64, roots: Int, maxChain: Int) -> [Scenario.Span] {
        var spans: [Scenario.Span] = []
        var t = start
        func tree(_ depth: Int, _ budget: inout Int) {
            let b = t
            let index = spans.count
            spans.append(span(b, b, depth % 3 == 0 ? "recurse" : "f\(depth % 5)"))
            // A deep chain now and then, else a few children.
            let children: Int
            if budget > 0 && rng.next(4) == 0 { children = 1 } else { children = Int(rng.next(3)) }
            for _ in 0..<children where budget > 0 {
                budget -= 1
                t += rng.next(3)  // 0: the child begins with its parent (or its previous sibling's end)
                tree(depth + 1, &budget)
            }
            t += rng.next(3)  // 0: ends with its last child (or is zero-length)
            spans[index].end = t
        }
        for root in 0..<roots {
            var budget = Int(rng.next(UInt64(maxChain))) + 1
            // Deep recursions: one long chain (the first root always, past the limit).
            if root == 0 || rng.next(3) == 0 {
                let depth = root == 0 ? 513 + Int(rng.next(UInt64(maxChain - 512))) : Int(rng.next(UInt64(maxChain))) + 1
                let first = spans.count
                for _ in 0..<depth { spans.append(span(t, 0, "recurse")); t += rng.next(2) }
                tree(depth, &budget)
                for k in (first..<(first + depth)).reversed() { t += rng.next(2); spans[k].end = t }
            } else {
                tree(0, &budget)
            }
            t += rng.next(3)
        }
        return spans
    }

    /// Spans in begin order with random ends: improper overlaps, ends before begins too.
    static func tangled(_ rng: inout Rng, count: Int, start: UInt64, maxEnd: UInt64 = UInt64(Int64.max)) -> [Scenario.Span] {
        var t = start
        return (0..<count).map { _ in
            t += rng.next(3)
            let e: UInt64
            switch rng.next(6) {
            case 0: e = t  // zero length
            case 1: e = t >= 2 ? t - rng.next(3) : t  // ends before it begins
            case 2: e = maxEnd  // never ends inside the trace
            default: e = Swift.min(maxEnd, t + rng.next(2_000))
            }
            return span(t, e, rng.next(2) == 0 ? "recurse" : "g")
        }
    }

    /// The track of every span as the lanes layouts must place it: depth over all of a
    /// thread's written spans (those in the range), in order, by the stack rule.
    static func expectedTracks(_ spans: [Scenario.Span], thread: UInt64) -> [UInt64] {
        var open: [UInt64] = []
        return spans.map { s in
            while let last = open.last, last <= s.begin { open.removeLast() }
            let depth = open.count
            open.append(s.end)
            return depth < 512 ? thread : TraceGenerator.depthBandTrackUUID(depth / 512, thread: thread)
        }
    }

    /// The trace of `perThread` (each thread's spans, given in the calls `cuts` splits them
    /// into, in `batch`-row batches).
    static func generate(_ perThread: [[Scenario.Span]], cuts: [[Int]], batch: Int, layout: AsyncLayout,
                         range: (Int64, Int64)) throws -> [UInt8] {
        let writer = try TraceWriter(processId: processId, sink: .memory())
        let g = try TraceGenerator(writer: writer, exe: "e", threads: threads, spanTypes: .thread,
                                   rangeBegin: range.0, rangeEnd: range.1, layout: layout)
        for (i, spans) in perThread.enumerated() {
            var from = 0
            for to in cuts[i] + [spans.count] {
                let tracker = ArrowTestStream.Tracker()
                let part = Array(spans[from..<to])
                let stream = ArrowTestStream.make(part.isEmpty ? [] : threadSpanBatches(part, batchSize: batch),
                                                  schema: threadSpanSchema, tracker: tracker)
                defer { ArrowTestStream.deallocate(stream) }
                try g.addThreadSpans(streamId: threads[i].streamId, stream: stream)
                #expect(tracker.live == 0)
                from = to
            }
        }
        let inRange = perThread.joined().filter { Int64($0.begin) <= range.1 && Int64($0.end) >= range.0 }.count
        #expect(try g.finish().threadSpans == inRange)
        return try writer.takeBytes()
    }

    /// What the micromegas layout must write: the writer's own calls, span by span.
    static func micromegasReference(_ perThread: [[Scenario.Span]], cuts: [[Int]], range: (Int64, Int64)) throws -> [UInt8] {
        let writer = try TraceWriter(processId: processId, sink: .memory())
        try writer.emitProcessDescriptor(exe: "e")
        for t in threads { try writer.emitThreadDescriptor(streamId: t.streamId, threadId: t.threadId, threadName: t.name) }
        for (i, spans) in perThread.enumerated() {
            for _ in 0..<(cuts[i].count + 1) { try writer.setCurrentThread(streamId: threads[i].streamId) }
            for s in spans where Int64(s.begin) <= range.1 && Int64(s.end) >= range.0 {
                try writer.emitSpan(begin: s.begin, end: s.end, name: s.name, target: s.target, filename: s.filename,
                                    line: s.line)
            }
        }
        try writer.flush()
        return try writer.takeBytes()
    }

    /// Checks both lanes layouts and the micromegas one; returns how many spans went on bands.
    @discardableResult
    static func check(_ perThread: [[Scenario.Span]], rng: inout Rng, nestsProperly: Bool,
                      range: (Int64, Int64) = (0, .max), label: String) throws -> Int {
        // Up to 3 calls per thread, cut anywhere (also at 0 and at the end: empty calls).
        let cuts = perThread.map { spans -> [Int] in
            (0..<Int(rng.next(3))).map { _ in Int(rng.next(UInt64(spans.count + 1))) }.sorted()
        }
        let batch = Int(rng.next(700)) + 1
        var banded = 0
        for layout in [AsyncLayout.lanes, .threadLanes] {
            let bytes = try generate(perThread, cuts: cuts, batch: batch, layout: layout, range: range)
            // The same bytes as one call per thread in one batch: the calls and batches change nothing.
            let whole = try generate(perThread, cuts: perThread.map { _ in [] }, batch: 1 << 20, layout: layout,
                                     range: range)
            let same = bytes == whole  // (not inside #expect: its diff of two large arrays takes long)
            #expect(same, "\(label) \(layout): cuts \(cuts) batch \(batch) changed the trace")
            var decoder = TraceDecoder()
            let packets = try decoder.decode(bytes)
            let events = packets.compactMap(\.event)
            var written: [Scenario.Span] = []
            var tracks: [UInt64] = []
            for (i, spans) in perThread.enumerated() {
                let kept = spans.filter { Int64($0.begin) <= range.1 && Int64($0.end) >= range.0 }
                written += kept
                tracks += expectedTracks(kept, thread: XXH64.hash(threads[i].streamId))
            }
            // Each span once, begin then end, with its own times and name, where its depth puts it.
            #expect(events.count == 2 * written.count, "\(label) \(layout)")
            var misplaced = 0
            for (k, s) in written.enumerated() where 2 * k + 1 < events.count {
                let b = events[2 * k], e = events[2 * k + 1]
                if b.type != 1 || e.type != 2 || b.timestamp != s.begin || e.timestamp != s.end || b.name != s.name
                    || b.track != e.track || b.track != tracks[k] {
                    misplaced += 1
                }
            }
            #expect(misplaced == 0, "\(label) \(layout): \(misplaced) spans not written as given")
            // Every band described once, under its thread, before its first slice.
            let descriptors = packets.compactMap(\.descriptor)
            #expect(Set(descriptors.map(\.uuid)).count == descriptors.count, "\(label) \(layout)")
            let bands = Set(tracks).subtracting(threads.map { XXH64.hash($0.streamId) })
            banded = tracks.filter { bands.contains($0) }.count
            #expect(Set(descriptors.filter { bands.contains($0.uuid) }.map(\.uuid)) == bands, "\(label) \(layout)")
            let report = validatedReport(bytes)
            #expect(report.slices == written.count, "\(label) \(layout)")
            if nestsProperly {
                #expect(report.isClean, "\(label) \(layout): \(report.examples.map(\.message))")
                #expect(report.maxDepth <= LaneLayout.maxNesting, "\(label) \(layout)")
            }
        }
        let mm = try generate(perThread, cuts: cuts, batch: batch, layout: .micromegas, range: range)
        let sameAsWriter = try mm == micromegasReference(perThread, cuts: cuts, range: range)
        #expect(sameAsWriter, "\(label): micromegas bytes")
        return banded
    }

    @Test(arguments: 0..<12)
    func properlyNestedWorkloads(_ seed: Int) throws {
        var rng = Rng(state: UInt64(seed) &* 0x9E3779B97F4A7C15 &+ 1)
        let perThread = [Self.nested(&rng, start: 1_000, roots: 6, maxChain: 1_300),
                         Self.nested(&rng, start: rng.next(5_000), roots: 4, maxChain: 700)]
        #expect(try Self.check(perThread, rng: &rng, nestsProperly: true, label: "seed \(seed)") > 0)
    }

    /// A range that cuts the workload: spans wholly outside it are left out, and the depth of
    /// the others counts only the spans written.
    @Test(arguments: 0..<6)
    func properlyNestedWorkloadsInARange(_ seed: Int) throws {
        var rng = Rng(state: UInt64(seed) &* 0xD1B54A32D192ED03 &+ 7)
        let perThread = [Self.nested(&rng, start: 1_000, roots: 8, maxChain: 900),
                         Self.nested(&rng, start: 1_000, roots: 8, maxChain: 600)]
        let last = perThread.joined().map(\.end).max() ?? 0
        let lo = Int64(rng.next(last / 2)), hi = lo + Int64(rng.next(last / 2))
        try Self.check(perThread, rng: &rng, nestsProperly: true, range: (lo, hi), label: "seed \(seed) range \(lo)...\(hi)")
    }

    /// Improper overlaps, ends before begins, spans that never end, times near Int64.max.
    @Test(arguments: 0..<8)
    func tangledWorkloads(_ seed: Int) throws {
        var rng = Rng(state: UInt64(seed) &* 0xA0761D6478BD642F &+ 3)
        let top = UInt64(Int64.max)
        let perThread = [Self.tangled(&rng, count: 3_000, start: 10),
                         Self.tangled(&rng, count: 1_500, start: top - 3_000)
                            + [Self.span(top, top, "last"), Self.span(top, top, "last")]]
        try Self.check(perThread, rng: &rng, nestsProperly: false, label: "seed \(seed)")
    }

    /// The plain case that failed: a 700-deep recursion whose first calls are in one
    /// addThreadSpans call and the rest in the next (generate_trace_chunks hands a thread
    /// over in groups of 65,536 rows). The second call's spans kept depth 0 upward, so the
    /// thread track was 700 deep again (depth_limit, wrong durations).
    @Test(arguments: [AsyncLayout.lanes, .threadLanes])
    func aRecursionSplitAcrossTwoCallsStillGoesOnABand(_ layout: AsyncLayout) throws {
        let spans = (0..<700).map { Self.span(UInt64(1_000 + $0), UInt64(1_000_000 - $0), "recurse") }
        let bytes = try Self.generate([spans, []], cuts: [[300], []], batch: 128, layout: layout, range: (0, .max))
        let report = validatedReport(bytes)
        #expect(report.isClean, "\(report.examples.map(\.message))")
        let same = try bytes == Self.generate([spans, []], cuts: [[], []], batch: 128, layout: layout, range: (0, .max))
        #expect(same)
    }
}
