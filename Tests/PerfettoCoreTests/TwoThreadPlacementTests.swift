import ArrowTestSupport
import Glibc
import ScenarioSupport
import Testing
@testable import PerfettoCore

/// The lanes layouts place spans on a worker thread while the calling thread writes them
/// (`placeAndWrite`): the bytes are those of one thread, whatever the input, and a write
/// that fails midway stops the worker and reports the error. (The two-thread trace is made
/// first: memory freed by a one-thread run, holding the right placements, cannot hide a
/// read before the worker wrote.)
@Suite(.timeLimit(.minutes(2)))
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
                // 0: a worker for any input, handing over placements 512 at a time.
                let (two, twoStats) = try Self.trace(events, layout: layout, options: options, twoThreadMinimumSpans: 0)
                let (one, oneStats) = try Self.trace(events, layout: layout, options: options,
                                                     twoThreadMinimumSpans: .max)
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
                let (two, stats) = try Self.trace(events + [AsyncEvent(time: 20_000, isBegin: true, spanId: 99)],
                                                  layout: layout, options: AsyncOptions(), twoThreadMinimumSpans: 0)
                let (one, _) = try Self.trace(events + [AsyncEvent(time: 20_000, isBegin: true, spanId: 99)],
                                              layout: layout, options: AsyncOptions(), twoThreadMinimumSpans: .max)
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

    /// 1,500 spans each overlapping the next without nesting: one lane each, past the 1,024
    /// lanes a layout has room for at first, on the worker thread as on one.
    @Test func lanesGrowOnTheWorker() throws {
        let spans = (0..<1_500).map { (i: Int) -> Scenario.Span in
            let begin = 3_000 + UInt64(i) * 10
            return Scenario.Span(begin: begin, end: begin + 2_000_000, name: "s\(i % 7)", target: "t", filename: "f",
                                 line: 1)
        }
        let events = asyncEvents(spans) + [AsyncEvent(time: 3_000_000, isBegin: true, spanId: 9_999)]
        for layout in [AsyncLayout.lanes, .threadLanes] {
            let (two, stats) = try Self.trace(events, layout: layout, options: AsyncOptions(), twoThreadMinimumSpans: 0)
            let (one, _) = try Self.trace(events, layout: layout, options: AsyncOptions(), twoThreadMinimumSpans: .max)
            let same = one == two
            #expect(same, "\(layout)")
            #expect(stats.asyncSpans == 1_500)
            // thread-lanes: the lanes under thread a, and the process's (unused) async track.
            #expect(stats.asyncTracks == (layout == .lanes ? 1_500 : 1_501))
        }
    }
}

/// The worker thread and the count it publishes through.
@Suite(.timeLimit(.minutes(1)))
struct WorkerThreadTests {
    /// A producer slower than the consumer's spin: the consumer sleeps and is woken for
    /// every value, and sees what was written before each.
    @Test func aSleepingWaiterIsWokenByEachPublish() throws {
        let count = PublishedCount()
        let values = UnsafeMutablePointer<Int>.allocate(capacity: 20)
        defer { values.deallocate() }
        let worker = WorkerThread.start {
            for k in 0..<20 {
                values[k] = k * 7
                usleep(1_000)  // 10x the spin: the waiter is asleep
                count.publish(k + 1)
            }
        }
        guard let worker else { return }  // a single CPU: no worker to test
        var seen = 0
        while seen < 20 {
            let ready = count.wait(atLeast: seen + 1)
            #expect(ready > seen)
            for k in seen..<ready { #expect(values[k] == k * 7) }
            seen = ready
        }
        worker.join()
    }

    /// A stop wakes a waiter asleep on a count that will never come.
    @Test func aStopWakesASleepingWaiter() throws {
        let count = PublishedCount()
        let worker = WorkerThread.start {
            usleep(5_000)
            count.requestStop()
        }
        guard let worker else { return }
        #expect(count.wait(atLeast: 10) == 0)
        #expect(count.stopRequested)
        worker.join()
    }

    /// A thread the system refuses (a stack larger than the address space): no handle, the
    /// body never runs, and nothing is joined or freed twice.
    @Test func aRefusedThreadGivesNoHandle() throws {
        let ran = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
        ran.initialize(to: false)
        defer { ran.deallocate() }
        for _ in 0..<3 {
            let worker = WorkerThread.start(stackSize: 1 << 50) { ran.pointee = true }
            #expect(worker == nil)
        }
        #expect(!ran.pointee)
        // A thread can still start afterwards.
        let worker = WorkerThread.start { ran.pointee = true }
        worker?.join()
        #expect(ran.pointee == (worker != nil))
    }
}
