import ArrowTestSupport
import Testing
@testable import PerfettoCore

/// Async events are decoded on a worker thread while the calling thread pairs them
/// (`AsyncDecodeAhead`): the bytes, counts and errors are those of one thread, whatever
/// the batches, and every Arrow object is released, on success and on error.
@Suite(.timeLimit(.minutes(2)))
struct DecodeAheadTests {
    static let threads = [ThreadInfo(streamId: "stream-a", threadId: 1, name: "a"),
                          ThreadInfo(streamId: "stream-b", threadId: 2, name: "b")]

    /// The trace of `batches` (or the error), with a decoding worker from the first batch
    /// (`ahead`) or none.
    static func trace(_ batches: [ArrowTestStream.Batch], layout: AsyncLayout,
                      ahead: Bool) -> Result<([UInt8], GenerationStats), PerfettoError> {
        do {
            let (writer, stats) = try generate(processId: "p", exe: "e", threads: threads.map { ($0, []) },
                                               asyncBatches: batches, spanTypes: .async, range: 2_000...Int64.max - 1,
                                               layout: layout, decodeAheadMinimumRows: ahead ? 0 : .max)
            return .success((try writer.takeBytes(), stats))
        } catch let error as PerfettoError {
            return .failure(error)
        } catch {
            return .failure(.invalidData("unexpected \(error)"))
        }
    }

    static func expectSame(_ batches: [ArrowTestStream.Batch], layouts: [AsyncLayout] = [.lanes, .threadLanes, .micromegas],
                           _ comment: String) -> [Result<([UInt8], GenerationStats), PerfettoError>] {
        layouts.map { layout in
            let two = trace(batches, layout: layout, ahead: true)
            let one = trace(batches, layout: layout, ahead: false)
            switch (one, two) {
            case (.success(let a), .success(let b)):
                #expect(a.0 == b.0, "\(comment) \(layout): other bytes with a decoding worker")
                #expect(a.1 == b.1, "\(comment) \(layout)")
            case (.failure(let a), .failure(let b)):
                #expect(a == b, "\(comment) \(layout)")
            default:
                Issue.record("\(comment) \(layout): one thread \(one), two \(two)")
            }
            return one
        }
    }

    /// Batches of one row to many tiles, tiles split across batches, empty batches, and
    /// every string encoding (plain strings are interned row by row, on the worker).
    @Test(arguments: [1, 700, 1024, 2500, 8192, 30_000])
    func sameTraceOnOneThreadAndTwo(batchSize: Int) throws {
        var events = AsyncOrderTests.events(seed: 41, sequentialIds: batchSize % 2 == 0)
        for k in events.indices where events[k].spanId % 3 == 0 { events[k].streamId = "stream-b" }
        // The whole input (24,000 events) in batches of 8,192; shorter inputs for the others
        // (batches of one row: 3,000 batches).
        if batchSize != 8192 { events = Array(events.prefix(batchSize == 1 ? 3_000 : 9_000)) }
        for encoding in batchSize == 2500 ? StringEncoding.allCases : [.dictionary32] {
            var batches = asyncEventBatches(events, encoding: encoding, batchSize: batchSize)
            if batches.count > 2 { batches.insert(ArrowTestStream.Batch(batches[0].columns.map(Self.empty)), at: 1) }
            // The layouts read the same columns but thread-lanes (the stream column).
            let layouts: [AsyncLayout] = batchSize == 8192 ? [.lanes, .threadLanes, .micromegas]
                : encoding == .dictionary32 ? [.lanes, .threadLanes] : [.lanes]
            let results = Self.expectSame(batches, layouts: layouts, "\(batchSize) rows, \(encoding)")
            for result in results {
                guard case .success(let (_, stats)) = result else {
                    Issue.record("\(batchSize) \(encoding): \(result)")
                    continue
                }
                #expect(stats.asyncSpans > events.count / 3)
            }
        }
    }

    /// An empty column like `column`.
    static func empty(_ column: ArrowTestStream.Column) -> ArrowTestStream.Column {
        switch column {
        case .integers(let n, let f, _): return .integers(n, format: f, [])
        case .strings(let n, let l, _): return .strings(n, large: l, [])
        case .dictionary(let n, let i, let l, _): return .dictionary(n, indexFormat: i, large: l, [])
        case .doubles(let n, _): return .doubles(n, [])
        case .rawUTF8(let n, _): return .rawUTF8(n, [])
        case .stringViews(let n, _): return .stringViews(n, [])
        }
    }

    /// `batches` with row `row` of batch `batch`'s column `name` replaced by `value` (an
    /// integer, or a string of a dictionary column).
    static func replacing(_ batches: [ArrowTestStream.Batch], batch: Int, row: Int, column name: String,
                          integer value: Int64? = nil, string: String? = nil) -> [ArrowTestStream.Batch] {
        var batches = batches
        batches[batch].columns = batches[batch].columns.map { column in
            switch column {
            case .integers(let n, let f, var values) where n == name:
                values[row] = value
                return .integers(n, format: f, values)
            case .dictionary(let n, let i, let l, var values) where n == name:
                values[row] = string
                return .dictionary(n, indexFormat: i, large: l, values)
            default:
                return column
            }
        }
        return batches
    }

    /// A faulty row in a later batch, in a tile the worker decodes ahead: the same error as
    /// on one thread (the first faulty row's), after the same rows were paired.
    @Test func aFaultyRowGivesTheSameError() throws {
        let events = AsyncOrderTests.events(seed: 42, sequentialIds: true)
        let batches = asyncEventBatches(events, batchSize: 5_000)
        for (batch, row) in [(0, 0), (0, 1_500), (2, 4_999), (3, 3_071), (batches.count - 1, 0)] {
            for (column, value) in [("time", nil), ("span_id", nil), ("event_type", "middle")] as [(String, String?)] {
                let faulty = Self.replacing(batches, batch: batch, row: row, column: column, string: value)
                let results = Self.expectSame(faulty, layouts: [.lanes], "\(column) at \(batch):\(row)")
                for result in results {
                    guard case .failure(let error) = result else {
                        Issue.record("\(column) at \(batch):\(row): no error")
                        continue
                    }
                    #expect("\(error)".contains("row \(row) of a batch"), "\(error)")
                }
            }
        }
    }

    /// Two faulty rows: the first one's error, whichever tile the worker reaches first.
    @Test func theFirstOfTwoFaultyRowsIsReported() throws {
        let events = AsyncOrderTests.events(seed: 43, sequentialIds: true)
        var batches = asyncEventBatches(events, batchSize: 6_000)
        batches = Self.replacing(batches, batch: 1, row: 5_000, column: "time", integer: nil)
        batches = Self.replacing(batches, batch: 1, row: 100, column: "span_id", integer: nil)
        for result in Self.expectSame(batches, layouts: [.lanes], "two faults") {
            guard case .failure(let error) = result else { continue }
            #expect("\(error)".contains("span_id") && "\(error)".contains("row 100 of a batch"), "\(error)")
        }
    }

    /// A stream whose get_next fails after some batches: the stream's error, with the worker
    /// stopped; a generator failed so refuses the next call.
    @Test(arguments: [1, 2, 5])
    func aFailingStreamStopsTheWorker(failAfter: Int) throws {
        let events = AsyncOrderTests.events(seed: 44, sequentialIds: false)
        let batches = asyncEventBatches(events, batchSize: 4_096)
        var messages: [String] = []
        for ahead in [true, false] {
            let tracker = ArrowTestStream.Tracker()
            let writer = try TraceWriter(processId: "p", sink: .memory())
            let generator = try TraceGenerator(writer: writer, exe: "e", threads: Self.threads, spanTypes: .async,
                                               rangeBegin: 0, rangeEnd: .max, layout: .lanes)
            generator.decodeAheadMinimumRows = ahead ? 0 : .max
            let stream = ArrowTestStream.make(batches, failAfter: failAfter, tracker: tracker)
            defer { ArrowTestStream.deallocate(stream) }
            do {
                try generator.addAsyncEvents(stream: stream)
                Issue.record("no error")
            } catch {
                messages.append("\(error)")
            }
            #expect(tracker.live == 0)
            #expect(throws: PerfettoError.self) { _ = try generator.finish() }
        }
        #expect(messages.count == 2 && messages[0] == messages[1] && messages[0].contains("reading a batch"),
                "\(messages)")
    }

    /// Several calls with a worker each, and calls with and without one mixed: the same trace.
    @Test func severalCalls() throws {
        let events = AsyncOrderTests.events(seed: 45, sequentialIds: true)
        let parts = stride(from: 0, to: events.count, by: 7_000).map { Array(events[$0..<min($0 + 7_000, events.count)]) }
        var traces: [[UInt8]] = []
        for minimum in [0, 5_000, Int.max] {
            let tracker = ArrowTestStream.Tracker()
            let writer = try TraceWriter(processId: "p", sink: .memory())
            let generator = try TraceGenerator(writer: writer, exe: "e", threads: Self.threads, spanTypes: .async,
                                               rangeBegin: 0, rangeEnd: .max, layout: .lanes)
            generator.decodeAheadMinimumRows = minimum
            for (k, part) in parts.enumerated() {
                // Part sizes vary around the threshold: 5,000 starts a worker for some calls only.
                let stream = ArrowTestStream.make(asyncEventBatches(part, batchSize: 3_000 + 1_000 * (k % 3)),
                                                  schema: asyncEventSchema, tracker: tracker)
                defer { ArrowTestStream.deallocate(stream) }
                try generator.addAsyncEvents(stream: stream)
            }
            _ = try generator.finish()
            traces.append(try writer.takeBytes())
            #expect(tracker.live == 0)
        }
        #expect(traces[0] == traces[2] && traces[1] == traces[2])
    }
}
