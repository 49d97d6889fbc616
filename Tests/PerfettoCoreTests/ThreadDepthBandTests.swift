import ArrowTestSupport
import Testing
@testable import PerfettoCore
import ScenarioSupport

/// Thread spans nested 512 deep or deeper (a deep recursion): Perfetto never pushes a slice
/// begun at depth 512, so in the lanes layouts such spans go on depth-band tracks under
/// their thread, where they nest again; the micromegas layout keeps micromegas' bytes.
struct ThreadDepthBandTests {
    static let thread = ThreadInfo(streamId: "stream-a", threadId: 7, name: "worker-7")

    /// A recursion `depth` calls deep (every call named `recurse`, as one function's calls
    /// are), then a sibling tree, then a second recursion after the first has returned.
    static func spans(depth: Int) -> [Scenario.Span] {
        func span(_ b: Int, _ e: Int, _ name: String = "recurse") -> Scenario.Span {
            Scenario.Span(begin: UInt64(b), end: UInt64(e), name: name, target: "t", filename: "f.rs", line: 3)
        }
        var spans: [Scenario.Span] = []
        for k in 0..<depth { spans.append(span(1_000 + k, 1_000_000 - k)) }
        spans.append(span(2_000_000, 2_000_100, "after"))
        spans.append(span(2_000_010, 2_000_020, "child"))
        for k in 0..<600 { spans.append(span(3_000_000 + k, 3_100_000 - k)) }
        return spans
    }

    func generate(_ spans: [Scenario.Span], layout: AsyncLayout) throws -> [UInt8] {
        let writer = try TraceWriter(processId: "11111111-2222-3333-4444-555555555555", sink: .memory())
        let g = try TraceGenerator(writer: writer, exe: "e", threads: [Self.thread], spanTypes: .thread,
                                   rangeBegin: 0, rangeEnd: .max, layout: layout)
        let tracker = ArrowTestStream.Tracker()
        let stream = ArrowTestStream.make(threadSpanBatches(spans, batchSize: 300), schema: threadSpanSchema,
                                          tracker: tracker)
        defer { ArrowTestStream.deallocate(stream) }
        try g.addThreadSpans(streamId: Self.thread.streamId, stream: stream)
        #expect(try g.finish().threadSpans == spans.count)
        #expect(tracker.live == 0)
        return try writer.takeBytes()
    }

    @Test(arguments: [AsyncLayout.lanes, .threadLanes])
    func deepSpansGoOnDepthBands(_ layout: AsyncLayout) throws {
        let depth = 1_300
        let spans = Self.spans(depth: depth)
        let bytes = try generate(spans, layout: layout)
        let report = validatedReport(bytes)
        #expect(report.isClean, "\(report.examples.map(\.message))")
        #expect(report.maxDepth == LaneLayout.maxNesting)
        #expect(report.slices == spans.count)

        var decoder = TraceDecoder()
        let packets = try decoder.decode(bytes)
        let threadTrack = XXH64.hash(Self.thread.streamId)
        let band1 = TraceGenerator.depthBandTrackUUID(1, thread: threadTrack)
        let band2 = TraceGenerator.depthBandTrackUUID(2, thread: threadTrack)
        // Each band described once, under the thread track, before its first slice.
        let descriptors = packets.compactMap(\.descriptor).filter { $0.parent == threadTrack }
        #expect(descriptors.map(\.uuid) == [band1, band2])
        #expect(descriptors.map(\.name) == ["worker-7 depth 512+", "worker-7 depth 1024+"])
        #expect(Set([threadTrack, band1, band2]).count == 3)
        // Every span where its depth puts it, with its own times.
        let begins = packets.compactMap(\.event).filter { $0.type == 1 }
        #expect(begins.count == spans.count)
        for (k, event) in begins.enumerated() {
            let expected: UInt64
            if k < depth { expected = k < 512 ? threadTrack : k < 1_024 ? band1 : band2 } else {
                expected = k - depth >= 2 + 512 ? band1 : threadTrack  // the second recursion: 600 deep
            }
            #expect(event.track == expected, "span \(k)")
            #expect(event.timestamp == spans[k].begin)
        }
        #expect(try rebuildSlices(packets.compactMap(\.event)).count == spans.count)
    }

    /// The micromegas layout writes micromegas' bytes: every span on the thread track, as
    /// its writer does (so Perfetto's depth limit shows there, and validate reports it).
    @Test func micromegasLayoutKeepsOneTrack() throws {
        let spans = Self.spans(depth: 700)
        let bytes = try generate(spans, layout: .micromegas)
        var decoder = TraceDecoder()
        let packets = try decoder.decode(bytes)
        let threadTrack = XXH64.hash(Self.thread.streamId)
        #expect(packets.compactMap(\.event).allSatisfy { $0.track == threadTrack })
        #expect(validatedReport(bytes).count(.depthLimit) > 0)
        // The same spans written one by one with the writer's own call, as micromegas does.
        let writer = try TraceWriter(processId: "11111111-2222-3333-4444-555555555555", sink: .memory())
        try writer.emitProcessDescriptor(exe: "e")
        try writer.emitThreadDescriptor(streamId: Self.thread.streamId, threadId: Self.thread.threadId,
                                        threadName: Self.thread.name)
        try writer.setCurrentThread(streamId: Self.thread.streamId)
        for s in spans { try writer.emitSpan(begin: s.begin, end: s.end, name: s.name, target: s.target,
                                             filename: s.filename, line: s.line) }
        try writer.flush()
        #expect(try writer.takeBytes() == bytes)
    }

    /// Spans that end where the next begins are siblings, not nested (Perfetto pops a slice
    /// ended at the next begin): 2,000 back-to-back spans stay on the thread track.
    @Test func backToBackSpansAreNotNested() throws {
        let spans = (0..<2_000).map {
            Scenario.Span(begin: UInt64(10 * $0), end: UInt64(10 * $0 + 10), name: "tick", target: "t",
                          filename: "f.rs", line: 1)
        }
        let bytes = try generate(spans, layout: .lanes)
        var decoder = TraceDecoder()
        let threadTrack = XXH64.hash(Self.thread.streamId)
        #expect(try decoder.decode(bytes).compactMap(\.event).allSatisfy { $0.track == threadTrack })
        #expect(validatedReport(bytes).isClean)
    }

    /// Spans out of begin order (a producer's partitioned write; the spec says sorted, and
    /// Perfetto sorts them anyway): from the first begin earlier than the one before, the
    /// stack tells nothing, so the rest of the thread stays on its track; before it, spans
    /// went where their depth put them. 2,000 disjoint spans in reverse order made 2,000 open
    /// spans of the stack and three bogus bands.
    @Test func spansOutOfBeginOrderStayOnTheThreadTrack() throws {
        let reversed: [Scenario.Span] = (0..<2_000).reversed().map { (k: Int) in
            Scenario.Span(begin: UInt64(10 * k), end: UInt64(10 * k + 5), name: "tick", target: "t", filename: "f.rs",
                          line: 1)
        }
        let threadTrack = XXH64.hash(Self.thread.streamId)
        var decoder = TraceDecoder()
        let lanes = try generate(reversed, layout: .lanes)
        #expect(try decoder.decode(lanes).compactMap(\.event).allSatisfy { $0.track == threadTrack })
        #expect(lanes == (try generate(reversed, layout: .micromegas)))
        // A deep recursion, then spans that begin before its end was reached: its deep part
        // is banded, the late spans are not.
        let deep = Self.spans(depth: 600) + [Scenario.Span(begin: 500, end: 600, name: "late", target: "t",
                                                           filename: "f.rs", line: 1)]
        var deepDecoder = TraceDecoder()
        let events = try deepDecoder.decode(try generate(deep, layout: .lanes)).compactMap(\.event)
        let band1 = TraceGenerator.depthBandTrackUUID(1, thread: threadTrack)
        let onBand = events.filter { (e: TraceDecoder.Event) in e.track == band1 }.count
        #expect(onBand == 2 * (88 + 88))
        #expect(events.last { $0.type == 1 }?.track == threadTrack)
    }

    /// The open-span stack itself, against a plain reference (pops while the top ended by
    /// the begin): nested, disjoint, equal times and improperly nested spans alike.
    @Test func openSpanDepthsMatchTheStackRule() throws {
        var rng: UInt64 = 12_345
        func next(_ n: Int64) -> Int64 {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Int64((rng >> 33) % UInt64(n))
        }
        let ends = OpenSpanEnds()
        var reference: [Int64] = []
        var begin: Int64 = 0
        for _ in 0..<20_000 {
            begin += next(3)
            let end = begin + next(40)
            while let last = reference.last, last <= begin { reference.removeLast() }
            #expect(try ends.push(begin: begin, end: end) == reference.count)
            reference.append(end)
            if next(50) == 0 { ends.compact() }  // as when another thread's spans come between  // as when another thread's spans come between
        }
        let fresh = OpenSpanEnds()
        #expect(try fresh.push(begin: .max, end: .max) == 0)
        #expect(try fresh.push(begin: .max, end: .max) == 0)  // ended at Int64.max: popped
    }

    /// A thread's spans in two calls with another thread's between them (A, B, A): the
    /// second call goes on from the first one's open spans, as if A came in one call.
    @Test(arguments: [AsyncLayout.lanes, .threadLanes])
    func aThreadResumedAfterAnotherKeepsItsDepths(_ layout: AsyncLayout) throws {
        let other = ThreadInfo(streamId: "stream-b", threadId: 8, name: "worker-8")
        let spans = Self.spans(depth: 1_300)
        let otherSpans = Self.spans(depth: 700)
        func run(_ calls: [(ThreadInfo, ArraySlice<Scenario.Span>)]) throws -> [UInt8] {
            let writer = try TraceWriter(processId: "11111111-2222-3333-4444-555555555555", sink: .memory())
            let g = try TraceGenerator(writer: writer, exe: "e", threads: [Self.thread, other], spanTypes: .thread,
                                       rangeBegin: 0, rangeEnd: .max, layout: layout)
            for (thread, part) in calls {
                let stream = ArrowTestStream.make(threadSpanBatches(Array(part), batchSize: 300),
                                                  schema: threadSpanSchema)
                defer { ArrowTestStream.deallocate(stream) }
                try g.addThreadSpans(streamId: thread.streamId, stream: stream)
            }
            _ = try g.finish()
            return try writer.takeBytes()
        }
        // Cut inside the first recursion, 800 calls deep (band 1 open).
        let split = try run([(Self.thread, spans[..<800]), (other, otherSpans[...]), (Self.thread, spans[800...])])
        let report = validatedReport(split)
        #expect(report.isClean, "\(report.examples.map(\.message))")
        #expect(report.slices == spans.count + otherSpans.count)

        var decoder = TraceDecoder()
        let tracks = try decoder.decode(split).compactMap(\.event).filter { $0.type == 1 }.map(\.track)
        let threadTrack = XXH64.hash(Self.thread.streamId)
        var wholeDecoder = TraceDecoder()
        let whole = try wholeDecoder.decode(try run([(Self.thread, spans[...]), (other, otherSpans[...])]))
            .compactMap(\.event).filter { $0.type == 1 }.map(\.track)
        // A's spans are on the same tracks as in one call: its first 800, then its rest after B's.
        let tracksOfA = Array(tracks[..<800]) + Array(tracks[(800 + otherSpans.count)...])
        #expect(tracksOfA == Array(whole[..<spans.count]))
        #expect(Array(tracks[800..<(800 + otherSpans.count)]) == Array(whole[spans.count...]))
        #expect(tracksOfA[1_100] == TraceGenerator.depthBandTrackUUID(2, thread: threadTrack))
    }
}
