import ArrowTestSupport
import Testing
@testable import PerfettoCore

/// The lanes layouts place spans on a worker thread while the calling thread writes them
/// (`placeAndWrite`): the bytes are those of one thread, whatever the input, and a write
/// that fails midway stops the worker and reports the error.
struct TwoThreadPlacementTests {
    static let threads = [ThreadInfo(streamId: "stream-a", threadId: 1, name: "a"),
                          ThreadInfo(streamId: "stream-b", threadId: 2, name: "b")]

    /// `generate` with both threads' async spans and the given worker threshold.
    static func trace(_ events: [AsyncEvent], layout: AsyncLayout, options: AsyncOptions,
                      twoThreadMinimumSpans: Int) throws -> ([UInt8], GenerationStats) {
        let (writer, stats) = try generate(processId: "p", exe: "e", threads: threads.map { ($0, []) },
                                           asyncBatches: asyncEventBatches(events, batchSize: 2500), spanTypes: .async,
                                           range: 2_000...(events.map(\.time).max() ?? 0) - 5_000, layout: layout,
                                           options: options, twoThreadMinimumSpans: twoThreadMinimumSpans)
        return (try writer.takeBytes(), stats)
    }

    @Test(arguments: [(31, true), (32, false)] as [(UInt64, Bool)])
    func sameBytesOnOneThreadAndTwo(seed: UInt64, sequentialIds: Bool) throws {
        // Begins on both threads' streams, so thread-lanes has several lane groups.
        var events = AsyncOrderTests.events(seed: seed, sequentialIds: sequentialIds)
        for k in events.indices where events[k].spanId % 3 == 0 { events[k].streamId = "stream-b" }
        for layout in [AsyncLayout.lanes, .threadLanes] {
            for options in [AsyncOptions(), AsyncOptions(spanArgs: false, flows: false),
                            AsyncOptions(spanArgs: true, flows: false)] {
                let (one, oneStats) = try Self.trace(events, layout: layout, options: options,
                                                     twoThreadMinimumSpans: .max)
                // 0: a worker for any input, handing over placements 512 at a time.
                let (two, twoStats) = try Self.trace(events, layout: layout, options: options, twoThreadMinimumSpans: 0)
                let same = one == two
                #expect(same, "\(layout) \(options): two threads give other bytes")
                #expect(oneStats == twoStats)
                #expect(oneStats.asyncSpans > 11_000 && oneStats.asyncTracks > 10)
            }
        }
    }

    @Test func noSpansAndOneSpanWithAWorker() throws {
        for layout in [AsyncLayout.lanes, .threadLanes] {
            for events in [[], asyncEvents([.init(begin: 3_000, end: 9_000, name: "n", target: "t", filename: "f",
                                                  line: 1)])] {
                let (one, _) = try Self.trace(events + [AsyncEvent(time: 20_000, isBegin: true, spanId: 99)],
                                              layout: layout, options: AsyncOptions(), twoThreadMinimumSpans: .max)
                let (two, stats) = try Self.trace(events + [AsyncEvent(time: 20_000, isBegin: true, spanId: 99)],
                                                  layout: layout, options: AsyncOptions(), twoThreadMinimumSpans: 0)
                let same = one == two
                #expect(same)
                #expect(stats.asyncSpans == events.count / 2)
            }
        }
    }

    /// A sink that fails after its second chunk: the error comes out of `finish`, the
    /// worker (still placing) is stopped and joined, and the generator stays failed.
    @Test func aFailingSinkStopsTheWorker() throws {
        let events = AsyncOrderTests.events(seed: 33, sequentialIds: true)
        for layout in [AsyncLayout.lanes, .threadLanes] {
            var chunks = 0
            let sink = TraceSink.chunks(chunkSize: 4096) { (_, _) throws(PerfettoError) in
                chunks += 1
                if chunks > 2 { throw .io(errno: 28, "no space left (test)") }
            }
            let writer = try TraceWriter(processId: "p", sink: sink)
            let generator = try TraceGenerator(writer: writer, exe: "e", threads: Self.threads, spanTypes: .async,
                                               rangeBegin: 0, rangeEnd: .max, layout: layout)
            generator.twoThreadMinimumSpans = 0
            let tracker = ArrowTestStream.Tracker()
            let stream = ArrowTestStream.make(asyncEventBatches(events), schema: asyncEventSchema, tracker: tracker)
            defer { ArrowTestStream.deallocate(stream) }
            try generator.addAsyncEvents(stream: stream)
            #expect(throws: PerfettoError.io(errno: 28, "no space left (test)")) { _ = try generator.finish() }
            #expect(chunks == 3)
            #expect(throws: PerfettoError.self) { _ = try generator.currentStats() }
            #expect(tracker.live == 0)
        }
    }
}
