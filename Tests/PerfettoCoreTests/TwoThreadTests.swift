import ArrowTestSupport
import Testing
@testable import PerfettoCore

/// The two-thread phases give the results of one thread. Async events are decoded on a
/// worker while the calling thread pairs them (`AsyncTileReader`); the lanes layouts place
/// spans on a worker while the calling thread writes them (`placeAndWrite`). Same bytes
/// whatever the input, the same error for faulty rows, and a failure midway stops the
/// worker and is reported.
struct TwoThreadTests {
    static let threads = [ThreadInfo(streamId: "stream-a", threadId: 1, name: "a"),
                          ThreadInfo(streamId: "stream-b", threadId: 2, name: "b")]

    /// `generate` with both threads' async spans, in batches of 2,500 rows (tiles of
    /// 1,024 rows: partial tiles too); `twoThreadMinimum` 0: workers for any input, .max: none.
    static func trace(_ events: [AsyncEvent], layout: AsyncLayout = .lanes, options: AsyncOptions = AsyncOptions(),
                      twoThreadMinimum: Int, batches: [ArrowTestStream.Batch]? = nil) throws -> ([UInt8], GenerationStats) {
        let (writer, stats) = try generate(processId: "p", exe: "e", threads: threads.map { ($0, []) },
                                           asyncBatches: batches ?? asyncEventBatches(events, batchSize: 2500),
                                           spanTypes: .async, range: 2_000...(events.map(\.time).max() ?? 0) - 5_000,
                                           layout: layout, options: options, twoThreadMinimumSpans: twoThreadMinimum,
                                           twoThreadMinimumRows: twoThreadMinimum)
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
                                                     twoThreadMinimum: .max)
                let (two, twoStats) = try Self.trace(events, layout: layout, options: options, twoThreadMinimum: 0)
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
                                              layout: layout, options: AsyncOptions(), twoThreadMinimum: .max)
                let (two, stats) = try Self.trace(events + [AsyncEvent(time: 20_000, isBegin: true, spanId: 99)],
                                                  layout: layout, options: AsyncOptions(), twoThreadMinimum: 0)
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

    enum Value { case string(String?), integer(Int64?) }
    static let columnIndex = ["time": 1, "event_type": 2, "span_id": 3, "name": 6, "target": 8]

    /// Batches of `events` whose column `column` has `value` at row `row` of the whole input.
    static func batches(_ events: [AsyncEvent], replacing column: String, at row: Int,
                        with value: Value) -> [ArrowTestStream.Batch] {
        asyncEventBatches(events, batchSize: 2500).enumerated().map { b, batch in
            guard row / 2500 == b, let k = columnIndex[column] else { return batch }
            var batch = batch
            switch (batch.columns[k], value) {
            case (.dictionary(let name, let format, let large, var values), .string(let v)):
                values[row % 2500] = v
                batch.columns[k] = .dictionary(name, indexFormat: format, large: large, values)
            case (.integers(let name, let format, var values), .integer(let v)):
                values[row % 2500] = v
                batch.columns[k] = .integers(name, format: format, values)
            default: Issue.record("column \(column) is not of the value's kind")
            }
            return batch
        }
    }

    /// Faulty rows inside tiles decoded by the worker: the same error as on one thread (the
    /// first faulty row's); null strings (read as empty): the same bytes.
    @Test func faultyRowsGiveTheSameResultOnOneThreadAndTwo() throws {
        let events = AsyncOrderTests.events(seed: 34, sequentialIds: true)
        let cases: [(String, Int, Value)] = [
            ("event_type", 5_123, .string("bogus")),
            ("time", 9_000, .integer(nil)),
            ("span_id", 17_001, .integer(nil)),
            ("event_type", 3, .string(nil)),
            ("name", 12_345, .string(nil)),
            ("target", 23_999, .string(nil)),
        ]
        for (column, row, value) in cases {
            let batches = Self.batches(events, replacing: column, at: row, with: value)
            var results: [Result<[UInt8], PerfettoError>] = []
            for minimum in [Int.max, 0] {
                do {
                    results.append(.success(try Self.trace(events, twoThreadMinimum: minimum, batches: batches).0))
                } catch let error as PerfettoError {
                    results.append(.failure(error))
                }
            }
            let same = results[0] == results[1]
            #expect(same, "\(column) at row \(row): \(results.map { (try? $0.get())?.count ?? -1 })")
            if case .failure(let error) = results[0] {
                #expect(["event_type", "time", "span_id"].contains(column), "\(column): \(error)")
            } else {
                #expect(["name", "target"].contains(column))
            }
        }
    }
}
