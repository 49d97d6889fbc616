import ArrowTestSupport
import CArrowABI
import Testing
@testable import PerfettoCore

/// The lanes layouts' additions (merge keys, span id args, parent -> child flows) and the
/// `thread-lanes` layout, decoded independently and checked span by span.
struct LanesContentTests {
    static let threads = [ThreadInfo(streamId: "stream-a", threadId: 1, name: "a"),
                          ThreadInfo(streamId: "stream-b", threadId: 2, name: "b")]
    static let range: ClosedRange<Int64> = 1_000...1_000_000

    struct Expected {
        var spanId: Int64
        var parent: Int64
        var begin: Int64
        var end: Int64
        var beginStream: String?  // nil: no begin in the range
        var name: String
    }

    /// Nested and overlapping spans: 40% children of an open span; begin streams a, b or an
    /// unlisted one; some begun before the range, some still open at its end.
    static func workload(count: Int = 600) -> (events: [AsyncEvent], expected: [Expected]) {
        var rng: UInt64 = 0x9E37_79B9
        func next(_ n: Int) -> Int {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Int((rng >> 33) % UInt64(n))
        }
        var events: [AsyncEvent] = []
        var expected: [Expected] = []
        var open: [(Int64, Int64)] = []  // (span id, end)
        var t: Int64 = 2_000
        for i in 1...count {
            t += Int64(next(1_500))
            let id = Int64(i * 7)
            var duration = Int64(next(40_000) + 1)
            var parent: Int64 = 0
            if let candidate = open.last(where: { $0.1 > t }), next(10) < 4 {
                parent = candidate.0
                duration = Swift.max(1, Swift.min(duration, candidate.1 - t))
            }
            let streams = ["stream-a", "stream-b", "stream-x"]
            let beginStream = streams[next(3)]
            let name = "op\(next(5))"
            let beforeRange = i % 97 == 0, openAtEnd = i % 89 == 0
            var e = Expected(spanId: id, parent: parent, begin: t, end: t + duration, beginStream: beginStream, name: name)
            if beforeRange {
                events.append(AsyncEvent(streamId: beginStream, time: 10, isBegin: true, spanId: id, parentSpanId: parent,
                                         name: name))
                e.begin = range.lowerBound
                e.beginStream = nil
            } else {
                events.append(AsyncEvent(streamId: beginStream, time: t, isBegin: true, spanId: id, parentSpanId: parent,
                                         name: name))
            }
            if openAtEnd {
                e.end = range.upperBound
            } else {
                events.append(AsyncEvent(streamId: streams[next(3)], time: t + duration, isBegin: false, spanId: id,
                                         parentSpanId: parent, name: name))
            }
            expected.append(e)
            open.append((id, e.end))
            if open.count > 64 { open.removeFirst(32) }
        }
        return (events, expected)
    }

    func generate(_ events: [AsyncEvent], layout: AsyncLayout, options: AsyncOptions = AsyncOptions()) throws
        -> (packets: [TraceDecoder.Packet], stats: GenerationStats) {
        let (bytes, stats) = try generateBytes(events, layout: layout, options: options)
        var decoder = TraceDecoder()
        return (try decoder.decode(bytes), stats)
    }

    func generateBytes(_ events: [AsyncEvent], layout: AsyncLayout, options: AsyncOptions = AsyncOptions()) throws
        -> (bytes: [UInt8], stats: GenerationStats) {
        let writer = try TraceWriter(processId: "p", sink: .memory())
        let g = try TraceGenerator(writer: writer, exe: "e", threads: Self.threads, spanTypes: .async,
                                   rangeBegin: Self.range.lowerBound, rangeEnd: Self.range.upperBound, layout: layout,
                                   options: options)
        let tracker = ArrowTestStream.Tracker()
        let stream = ArrowTestStream.make(asyncEventBatches(events, batchSize: 256), tracker: tracker)
        defer { ArrowTestStream.deallocate(stream) }
        try g.addAsyncEvents(stream: stream)
        let stats = try g.finish()
        return (try writer.takeBytes(), stats)
    }

    struct Slice {
        var track: UInt64
        var begin: TraceDecoder.Event
        var end: UInt64
    }

    /// Each begin packet with its end (the next packet, as the generator writes them).
    func slices(_ packets: [TraceDecoder.Packet]) -> [Slice] {
        let events = packets.compactMap(\.event)
        var out: [Slice] = []
        var i = 0
        while i + 1 < events.count {
            if events[i].type == 1, events[i + 1].type == 2, events[i].track == events[i + 1].track {
                out.append(Slice(track: events[i].track, begin: events[i], end: events[i + 1].timestamp))
                i += 2
            } else {
                i += 1
            }
        }
        return out
    }

    func spanId(_ s: Slice) -> Int64? {
        if case .int(let v)? = s.begin.args["span_id"] { return v }
        return nil
    }

    @Test(arguments: [AsyncLayout.lanes, .threadLanes])
    func mergeKeysArgsAndFlows(_ layout: AsyncLayout) throws {
        let (events, expected) = Self.workload()
        let (packets, stats) = try generate(events, layout: layout)
        let descriptors = packets.compactMap(\.descriptor)
        let lanes = descriptors.filter { $0.name == TraceWriter.asyncTrackName }
        #expect(lanes.count == stats.asyncTracks && lanes.count > 2)
        // Merge fields on exactly the lane tracks.
        for d in descriptors {
            let isLane = d.name == TraceWriter.asyncTrackName
            #expect((d.siblingMergeBehavior == 3 && d.siblingMergeKey == TraceGenerator.laneMergeKey) == isLane)
            #expect(isLane || (d.siblingMergeBehavior == nil && d.siblingMergeKey == nil))
        }
        // Every span exactly once, with its ids as args.
        let all = slices(packets)
        #expect(all.count == expected.count)
        let byId = Dictionary(uniqueKeysWithValues: expected.map { ($0.spanId, $0) })
        var seen = Set<Int64>()
        for s in all {
            let id = try #require(spanId(s))
            let e = try #require(byId[id])
            #expect(seen.insert(id).inserted)
            #expect(s.begin.args["parent_span_id"] == .int(e.parent))
            #expect(s.begin.argOrder == ["span_id", "parent_span_id"])
            #expect((Int64(s.begin.timestamp), Int64(s.end), s.begin.name) == (e.begin, e.end, e.name))
        }
        // Flows: each child whose parent is in the trace, written before it, ends one flow that
        // its parent's begin starts (a child begun before the range may begin before its parent).
        var started: [UInt64: Int64] = [:]  // flow id -> parent span id
        var written: [Int64: Int] = [:]  // span id -> position in the trace
        for (k, s) in all.enumerated() {
            let id = try #require(spanId(s))
            written[id] = k
            for f in s.begin.flowIds { #expect(started.updateValue(id, forKey: f) == nil) }
        }
        var ended = 0
        for (k, s) in all.enumerated() {
            let id = try #require(spanId(s))
            let e = try #require(byId[id])
            if let p = written[e.parent], p < k, e.parent != e.spanId {
                #expect(s.begin.terminatingFlowIds.count == 1)
                #expect(started[s.begin.terminatingFlowIds[0]] == e.parent, "flow from the parent's slice")
                ended += 1
            } else {
                #expect(s.begin.terminatingFlowIds.isEmpty)
            }
        }
        #expect(ended == started.count && ended > 100, "no flow dangles")
        // Lanes invariant: on every track, slices nest or are disjoint.
        let rebuilt = try rebuildSlices(packets.compactMap(\.event))
        #expect(partialOverlaps(rebuilt) == 0)
    }

    @Test func threadLanesUnderTheBeginThread() throws {
        let (events, expected) = Self.workload()
        let (packets, _) = try generate(events, layout: .threadLanes)
        let descriptors = packets.compactMap(\.descriptor)
        let parentOfTrack = Dictionary(uniqueKeysWithValues: descriptors.map { ($0.uuid, $0.parent ?? 0) })
        let processTrack = XXH64.hash("p")
        let threadTrack = ["stream-a": XXH64.hash("stream-a"), "stream-b": XXH64.hash("stream-b")]
        let byId = Dictionary(uniqueKeysWithValues: expected.map { ($0.spanId, $0) })
        var perThread: [UInt64: Int] = [:]
        for s in slices(packets) {
            let id = try #require(spanId(s))
            let e = try #require(byId[id])
            let want = e.beginStream.flatMap { threadTrack[$0] } ?? processTrack
            #expect(parentOfTrack[s.track] == want, "span \(e.spanId) begun on \(e.beginStream ?? "-")")
            perThread[want, default: 0] += 1
        }
        #expect(perThread.count == 3 && perThread.values.allSatisfy { $0 > 50 })
        // Lanes per thread stay within the peak concurrency of that thread's spans.
        for (parent, _) in perThread {
            let mine = expected.filter { ($0.beginStream.flatMap { threadTrack[$0] } ?? processTrack) == parent }
            var peak = 0
            for e in mine { peak = Swift.max(peak, mine.filter { $0.begin <= e.begin && $0.end > e.begin }.count) }
            let laneCount = descriptors.filter { $0.name == TraceWriter.asyncTrackName && $0.parent == parent }.count
            #expect(laneCount >= 1 && laneCount <= peak)
        }
    }

    /// Children that begin before their parent (hostile producers: ids reused, clocks of two
    /// streams apart, a child begun before the range): Perfetto reads a flow's end before its
    /// start and connects nothing, so such a child gets no flow; every flow written connects
    /// (the validator finds no `flow_unconnected`), and the slices are the same without flows.
    @Test(arguments: [AsyncLayout.lanes, .threadLanes])
    func noFlowToAChildThatBeginsBeforeItsParent(_ layout: AsyncLayout) throws {
        var events: [AsyncEvent] = []
        func span(_ id: Int64, _ parent: Int64, _ begin: Int64?, _ end: Int64, stream: String = "stream-a") {
            if let begin { events.append(AsyncEvent(streamId: stream, time: begin, isBegin: true, spanId: id, parentSpanId: parent)) }
            events.append(AsyncEvent(streamId: stream, time: end, isBegin: false, spanId: id, parentSpanId: parent))
        }
        span(1, 0, 5_000, 9_000)           // a parent
        span(2, 1, 6_000, 7_000)           // its child, inside: a flow
        span(3, 1, 4_000, 8_000)           // a "child" that begins before its parent: none
        span(4, 1, nil, 5_500)             // begun before the range (at range begin): none
        span(5, 1, 5_000, 5_100)           // begins with its parent, written after it (span id order): a flow
        span(6, 7, 2_000, 2_500, stream: "stream-b")  // parent 7 begins later: none
        span(7, 0, 3_000, 3_500, stream: "stream-b")
        span(8, 8, 3_100, 3_200)           // its own parent: none
        let (bytes, _) = try generateBytes(events, layout: layout)
        var decoder = TraceDecoder()
        let all = slices(try decoder.decode(bytes))
        #expect(all.count == 8)
        var terminating: [Int64: Int] = [:]
        for s in all { terminating[try #require(spanId(s))] = s.begin.terminatingFlowIds.count }
        #expect(terminating == [1: 0, 2: 1, 3: 0, 4: 0, 5: 1, 6: 0, 7: 0, 8: 0])
        let flowsFrom1 = all.first { spanId($0) == 1 }?.begin.flowIds.count
        #expect(flowsFrom1 == 2)
        let report = validatedReport(bytes)
        #expect(report.flows == 2 && report.isClean, "\(report.examples.map(\.message))")
    }

    /// A parent chain deeper than Perfetto's depth limit (512): each span the child of the one
    /// before and inside it. Nesting it all on one lane made Perfetto drop every begin past
    /// depth 512 and close the wrong slices (every duration of the lane wrong); the spans
    /// past the limit now go on another lane, where they nest again.
    @Test(arguments: [AsyncLayout.lanes, .threadLanes])
    func parentChainDeeperThanPerfettoNestsAcrossLanes(_ layout: AsyncLayout) throws {
        let count = 1_200
        var events: [AsyncEvent] = []
        for i in 0..<count {
            let id = Int64(i + 1)
            events.append(AsyncEvent(time: 10_000 + Int64(i), isBegin: true, spanId: id, parentSpanId: Int64(i),
                                     depth: UInt32(i)))
            events.append(AsyncEvent(time: 900_000 - Int64(i), isBegin: false, spanId: id, parentSpanId: Int64(i),
                                     depth: UInt32(i)))
        }
        let (bytes, stats) = try generateBytes(events, layout: layout)
        #expect(stats.asyncSpans == count)
        let report = validatedReport(bytes)
        #expect(report.isClean, "\(report.examples.map(\.message))")
        #expect(report.maxDepth == SliceTrackModel.maxDepth)
        #expect(report.slices == count)
        // 512 + 512 + 176 spans: three lanes (thread-lanes: plus the process's empty one).
        #expect(stats.asyncTracks == (layout == .lanes ? 3 : 4))
    }

    @Test func optionsTurnArgsAndFlowsOff() throws {
        let (events, _) = Self.workload(count: 200)
        let both = try generate(events, layout: .lanes).packets
        let none = try generate(events, layout: .lanes, options: AsyncOptions(spanArgs: false, flows: false)).packets
        let noneEvents = none.compactMap(\.event)
        #expect(noneEvents.allSatisfy { $0.args.isEmpty && $0.flowIds.isEmpty && $0.terminatingFlowIds.isEmpty })
        let noArgs = try generate(events, layout: .lanes, options: AsyncOptions(spanArgs: false, flows: true)).packets
        #expect(noArgs.compactMap(\.event).allSatisfy { $0.args.isEmpty })
        #expect(noArgs.compactMap(\.event).contains { !$0.flowIds.isEmpty })
        // The same slices either way.
        let key = { (p: [TraceDecoder.Packet]) in p.compactMap(\.event).map { "\($0.type) \($0.track) \($0.timestamp) \($0.name)" } }
        #expect(key(both) == key(none))
        #expect(try generate(events, layout: .lanes).packets.count == both.count)
    }

    @Test func micromegasLayoutHasNoneOfIt() throws {
        let (events, _) = Self.workload(count: 200)
        let packets = try generate(events, layout: .micromegas).packets
        #expect(packets.compactMap(\.descriptor).allSatisfy { $0.siblingMergeKey == nil && $0.siblingMergeBehavior == nil })
        #expect(packets.compactMap(\.event).allSatisfy { $0.args.isEmpty && $0.flowIds.isEmpty && $0.terminatingFlowIds.isEmpty })
    }

    @Test func flowIdsAreDeterministic() throws {
        let (events, _) = Self.workload(count: 200)
        let a = try generate(events, layout: .threadLanes).packets.compactMap(\.event).flatMap(\.flowIds)
        let b = try generate(events, layout: .threadLanes).packets.compactMap(\.event).flatMap(\.flowIds)
        #expect(a == b && !a.isEmpty && Set(a).count == a.count)
    }
}

/// A span that begins at Int64.max ns (the largest time an int64 column holds) with no lane
/// busy: freeing the lanes ended by its begin popped an empty heap (a read and write out of
/// bounds, found by a differential oracle of the placement rules).
struct LaneAtTheLastInstantTests {
    @Test(arguments: [AsyncLayout.lanes, .threadLanes])
    func aSpanBeginningAtInt64MaxIsPlaced(_ layout: AsyncLayout) throws {
        let thread = ThreadInfo(streamId: "stream-a", threadId: 1, name: "a")
        let events = [AsyncEvent(time: 1_000, isBegin: true, spanId: 1), AsyncEvent(time: 2_000, isBegin: false, spanId: 1),
                      AsyncEvent(time: .max, isBegin: true, spanId: 2), AsyncEvent(time: .max, isBegin: false, spanId: 2)]
        let (writer, stats) = try generate(processId: "p", exe: "e", threads: [(thread, [])],
                                           asyncBatches: asyncEventBatches(events), spanTypes: .async,
                                           range: 0...Int64.max, layout: layout)
        #expect(stats.asyncSpans == 2)
        let report = validatedReport(try writer.takeBytes())
        #expect(report.slices == 2)
    }
}
