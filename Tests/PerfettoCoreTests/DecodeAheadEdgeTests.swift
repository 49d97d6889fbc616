import ArrowTestSupport
import CArrowABI
import Testing
@testable import PerfettoCore

/// Edge cases of the decoding worker (`AsyncDecodeAhead`) that `DecodeAheadTests` does not
/// reach: batch sizes at the tile and threshold boundaries, an error in a later batch
/// (its columns, or the stream's get_next) after a faulty row in the last tile of the batch
/// before, a closure that throws while the worker is ahead, a generator used again after an
/// error, and a stream discarded (`spanTypes: .thread`). Every Arrow object is released.
@Suite(.timeLimit(.minutes(2)))
struct DecodeAheadEdgeTests {
    static let threads = DecodeAheadTests.threads

    /// The outcome of one `addAsyncEvents` call and `finish`, with a decoding worker from the
    /// first batch (`ahead`) or none, and whether a second call is then refused.
    static func outcome(_ batches: [ArrowTestStream.Batch], failAfter: Int? = nil, spanTypes: SpanTypes = .async,
                        ahead: Bool) throws -> Result<[UInt8], PerfettoError> {
        let tracker = ArrowTestStream.Tracker()
        let writer = try TraceWriter(processId: "p", sink: .memory())
        let generator = try TraceGenerator(writer: writer, exe: "e", threads: threads, spanTypes: spanTypes,
                                           rangeBegin: 0, rangeEnd: .max, layout: .lanes)
        generator.decodeAheadMinimumRows = ahead ? 0 : .max
        let stream = ArrowTestStream.make(batches, schema: asyncEventSchema, failAfter: failAfter, tracker: tracker)
        defer { ArrowTestStream.deallocate(stream) }
        let result: Result<[UInt8], PerfettoError>
        do throws(PerfettoError) {
            try generator.addAsyncEvents(stream: stream)
            _ = try generator.finish()
            result = .success(try writer.takeBytes())
        } catch {
            result = .failure(error)
            // A failed generator refuses the next call, and releases the stream it is given.
            let again = ArrowTestStream.make(batches, schema: asyncEventSchema, tracker: tracker)
            defer { ArrowTestStream.deallocate(again) }
            do {
                try generator.addAsyncEvents(stream: again)
                Issue.record("a failed generator took another stream")
            } catch {
                #expect("\(error)".contains("failed on an earlier error"), "\(error)")
            }
        }
        #expect(tracker.live == 0, "Arrow objects not released")
        return result
    }

    /// The same outcome with a decoding worker and without; returns the one-thread outcome.
    @discardableResult
    static func expectSame(_ batches: [ArrowTestStream.Batch], failAfter: Int? = nil, spanTypes: SpanTypes = .async,
                           _ comment: String) throws -> Result<[UInt8], PerfettoError> {
        let one = try outcome(batches, failAfter: failAfter, spanTypes: spanTypes, ahead: false)
        let two = try outcome(batches, failAfter: failAfter, spanTypes: spanTypes, ahead: true)
        switch (one, two) {
        case (.success(let a), .success(let b)): #expect(a == b, "\(comment): other bytes with a decoding worker")
        case (.failure(let a), .failure(let b)): #expect(a == b, "\(comment): one thread \(a), two \(b)")
        default: Issue.record("\(comment): one thread \(one), two \(two)")
        }
        return one
    }

    static func events(_ seed: UInt64) -> [AsyncEvent] {
        AsyncOrderTests.events(seed: seed, sequentialIds: true)
    }

    /// Batches of exactly one tile, one tile and a row, the default threshold and one more.
    @Test(arguments: [1_023, 1_024, 1_025, 2_048, 4_095, 4_096, 4_097])
    func tileBoundaries(batchSize: Int) throws {
        let batches = asyncEventBatches(Array(Self.events(50).prefix(12_000)), batchSize: batchSize)
        guard case .success = try Self.expectSame(batches, "\(batchSize) rows") else {
            Issue.record("\(batchSize): an error")
            return
        }
    }

    /// A batch whose columns are broken (an array offset no buffer can have), after large batches: its
    /// error, the same as on one thread, whatever tile the worker is on.
    @Test(arguments: [1, 2])
    func aBrokenColumnInALaterBatch(batch: Int) throws {
        var batches = asyncEventBatches(Self.events(51), batchSize: 5_000)
        batches[batch].corruptOffset = Int64.max / 16
        let result = try Self.expectSame(batches, "broken batch \(batch)")
        guard case .failure = result else {
            Issue.record("no error: \(result)")
            return
        }
    }

    /// A faulty row in the last tile of a batch, then a batch that fails (its columns, or
    /// the stream's get_next): the faulty row's error, which one thread reports first (it
    /// reads the next batch only after this one's last tile). Repeated: the worker's
    /// timing varies.
    @Test(arguments: [4_500, 4_999, 4_096])
    func aFaultyLastTileIsReportedBeforeTheNextBatchFails(row: Int) throws {
        let batches = DecodeAheadTests.replacing(asyncEventBatches(Self.events(52), batchSize: 5_000),
                                                 batch: 1, row: row, column: "time")
        var broken = batches
        broken[2].corruptOffset = Int64.max / 16
        for _ in 0..<2 {
            for (input, failAfter, what) in [(batches, 2, "get_next fails"), (broken, nil, "broken columns")] {
                let result = try Self.expectSame(input, failAfter: failAfter, "\(what) after row \(row)")
                guard case .failure(let error) = result else {
                    Issue.record("no error")
                    continue
                }
                #expect("\(error)".contains("null in column 'time' (row \(row) of a batch)"), "\(error)")
            }
        }
    }

    /// A faulty row in the last tile of a batch, more batches after it; and two faulty
    /// tiles, the second the last of its batch: the first faulty row's error.
    @Test func faultyLastTiles() throws {
        let base = asyncEventBatches(Self.events(53), batchSize: 4_096)
        let last = DecodeAheadTests.replacing(base, batch: 0, row: 4_095, column: "span_id")
        let two = DecodeAheadTests.replacing(DecodeAheadTests.replacing(base, batch: 1, row: 2_000, column: "time"),
                                             batch: 1, row: 4_000, column: "span_id")
        for (input, row, column) in [(last, 4_095, "span_id"), (two, 2_000, "time")] {
            let result = try Self.expectSame(input, "\(column) at row \(row)")
            guard case .failure(let error) = result else {
                Issue.record("no error")
                continue
            }
            #expect("\(error)".contains("null in column '\(column)' (row \(row) of a batch)"), "\(error)")
        }
    }

    /// A stream the generator does not read (no async spans asked for) is released unread.
    @Test func aStreamNotRead() throws {
        try Self.expectSame(asyncEventBatches(Self.events(54), batchSize: 5_000), spanTypes: .thread, "thread spans only")
    }

    /// `pair` throws while the worker decodes ahead (the matcher out of memory): the error,
    /// with the worker stopped before the batches it decodes are released (ThreadSanitizer
    /// or AddressSanitizer reports a read of a released batch).
    @Test(arguments: [0, 3, 5, 9])
    func aPairErrorWhileTheWorkerIsAhead(failingTile: Int) throws {
        let tracker = ArrowTestStream.Tracker()
        let stream = ArrowTestStream.make(asyncEventBatches(Self.events(55), batchSize: 5_000),
                                          schema: asyncEventSchema, tracker: tracker)
        defer { ArrowTestStream.deallocate(stream) }
        let pool = StringPool()
        try {
            let reader = try ArrowStreamReader(moving: stream, label: "async events")
            let columns = try AsyncEventColumns(reader)
            let beginId = try pool.id("begin"), endId = try pool.id("end")
            guard let ahead = AsyncDecodeAhead.start(beginId: beginId, endId: endId) else { return }
            defer { ahead.stop() }
            var paired = 0
            do throws(PerfettoError) {
                try ahead.run(next: { () throws(PerfettoError) in
                    guard let batch = try reader.next() else { return nil }
                    return (batch, try AsyncEventBatch(batch, reader, columns, pool: pool, label: "async events", withStream: false))
                }, pair: { (_, _) throws(PerfettoError) in
                    if paired == failingTile { throw .outOfMemory }
                    paired += 1
                }, readRows: { (_, _) throws(PerfettoError) in Issue.record("no row is faulty") })
                Issue.record("no error")
            } catch {
                #expect(error == .outOfMemory)
            }
            #expect(paired == failingTile)
        }()
        #expect(tracker.live == 0, "Arrow objects not released")
    }
}
