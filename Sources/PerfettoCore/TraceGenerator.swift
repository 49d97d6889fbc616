import CArrowABI
import CThreadSupport

/// How async spans are laid out on tracks.
public enum AsyncLayout: String, Sendable, CaseIterable {
    /// Overlapping spans spread over nested-or-disjoint lane tracks (the default).
    case lanes
    /// micromegas' own: one track, complete spans only, byte-identical to its writer.
    case micromegas
    /// Lanes under each thread track, for the spans begun on that thread; the others on
    /// process-level lanes.
    case threadLanes = "thread-lanes"

    /// Whether async spans go on lane tracks (with merge keys, span args and flows).
    public var isLanes: Bool { self != .micromegas }
}

/// Which spans a trace holds.
public enum SpanTypes: String, Sendable, CaseIterable {
    case thread, async, both

    public var includesThread: Bool { self != .async }
    public var includesAsync: Bool { self != .thread }
}

/// A thread of the process: its stream, tid and display name.
public struct ThreadInfo: Sendable {
    public var streamId: String
    public var threadId: Int32
    public var name: String

    public init(streamId: String, threadId: Int32, name: String) {
        self.streamId = streamId
        self.threadId = threadId
        self.name = name
    }
}

/// What a generation wrote and what the async matcher decided.
public struct GenerationStats: Equatable, Sendable {
    /// Thread spans written, and read but outside the range.
    public var threadSpans = 0
    public var threadSpansOutsideRange = 0
    /// Async spans written.
    public var asyncSpans = 0
    /// Async lane tracks used (1 with the `micromegas` layout when async spans are requested).
    public var asyncTracks = 0
    public var matcher = AsyncMatcher.Counts()
    /// Log entries written, and read but outside the range.
    public var logEntries = 0
    public var logEntriesOutsideRange = 0
    /// Measures written, and read but outside the range; counter tracks described.
    public var measures = 0
    public var measuresOutsideRange = 0
    public var counterTracks = 0

    public init() {}
}

/// Writes a process's trace from Arrow streams (docs/async-spans.md, packet order):
/// descriptors when created, then each thread's spans as the caller hands them over,
/// one stream at a time and batch by batch, then the async spans on `finish()`.
///
/// Thread spans are streamed: memory does not grow with them. Async events are paired
/// as they arrive; their spans are laid out and written at the end.
public final class TraceGenerator {
    public let writer: TraceWriter
    public let spanTypes: SpanTypes
    public let layout: AsyncLayout
    public let rangeBegin: Int64
    public let rangeEnd: Int64
    @exclusivity(unchecked) public internal(set) var stats = GenerationStats()
    let pool = StringPool()
    let threadTracks: Set<UInt64>
    @exclusivity(unchecked) var matcher: AsyncMatcher
    let beginId: UInt32
    let endId: UInt32
    @exclusivity(unchecked) var finished = false
    /// The error that failed the generator; every later call reports it.
    @exclusivity(unchecked) public private(set) var failure: PerfettoError?
    @exclusivity(unchecked) var logTrackDescribed = false
    /// Counter track uuids by (pool name id << 32 | pool unit id), and the names given.
    @exclusivity(unchecked) var counterTracks = IdMap(capacity: 16)
    var counterTrackNames = Set<String>()

    /// What the lanes layouts add to async slices.
    public let options: AsyncOptions
    /// Lanes layouts: with at least this many async spans, spans are placed on a worker
    /// thread while this one writes them (`placeAndWrite`); `.max`: never a second thread.
    @exclusivity(unchecked) package var twoThreadMinimumSpans = 16_384
    /// From the first batch of async events with at least this many rows, tiles are decoded
    /// on a worker thread while this one pairs them (`AsyncDecodeAhead`); `.max`: never.
    @exclusivity(unchecked) package var decodeAheadMinimumRows = 4 * AsyncTile.rows
    /// Thread track uuid by the pool id of its stream id (thread-lanes).
    var threadTrackByStream: [UInt32: UInt64] = [:]
    /// The writer's source-location iid by matcher location id (0: not yet known).
    @exclusivity(unchecked) var asyncLocationIids: [UInt64] = []
    /// Lanes layouts: thread display names by track uuid, the depth bands described, the
    /// depths of every thread written so far by track uuid, and those of the thread being
    /// written (TraceGenerator+DepthBands.swift).
    var threadNames: [UInt64: String] = [:]
    var describedDepthBands = Set<UInt64>()
    var depthsByThread: [UInt64: ThreadSpanDepths] = [:]
    @exclusivity(unchecked) var threadDepths = ThreadSpanDepths()
    var depthsThread: UInt64?

    /// Writes the process, thread and async track descriptors to `writer`.
    public init(writer: TraceWriter, exe: String, threads: [ThreadInfo], spanTypes: SpanTypes,
                rangeBegin: Int64, rangeEnd: Int64, layout: AsyncLayout,
                options: AsyncOptions = AsyncOptions()) throws(PerfettoError) {
        guard rangeBegin >= 0 else { throw .invalidArgument("range begin \(rangeBegin) is negative") }
        guard rangeBegin <= rangeEnd else {
            throw .invalidArgument("range begin \(rangeBegin) is after range end \(rangeEnd)")
        }
        // One descriptor per thread track: a stream listed twice would describe its track twice.
        var streams = Set<String>()
        for (i, thread) in threads.enumerated() where !streams.insert(thread.streamId).inserted {
            throw .invalidArgument("threads[\(i)]: stream '\(thread.streamId)' is already in the thread list")
        }
        self.writer = writer
        self.spanTypes = spanTypes
        self.layout = layout
        self.options = options
        self.rangeBegin = rangeBegin
        self.rangeEnd = rangeEnd
        matcher = AsyncMatcher(rangeBegin: rangeBegin, rangeEnd: rangeEnd)
        threadTracks = Set(threads.map { XXH64.hash($0.streamId) })
        beginId = try pool.id("begin")
        endId = try pool.id("end")
        try writer.emitProcessDescriptor(exe: exe)
        for thread in threads {
            try writer.emitThreadDescriptor(streamId: thread.streamId, threadId: thread.threadId, threadName: thread.name)
            if layout == .threadLanes {
                threadTrackByStream[try pool.id(thread.streamId)] = XXH64.hash(thread.streamId)
            }
            if layout.isLanes { threadNames[XXH64.hash(thread.streamId)] = thread.name }
        }
        if spanTypes.includesAsync {
            if layout.isLanes {
                try writer.emitAsyncTrackDescriptor(mergeKey: Self.laneMergeKey)
            } else {
                try writer.emitAsyncTrackDescriptor()
            }
            stats.asyncTracks = 1
        }
    }

    // MARK: - Thread spans

    /// Writes the spans of thread `streamId` from `stream` (the `thread_spans` columns:
    /// begin, end, name, target, filename, line), keeping those with begin <= range end
    /// and end >= range begin. Takes ownership of the stream and always releases it.
    public func addThreadSpans(streamId: UnsafeRawBufferPointer,
                               stream: UnsafeMutablePointer<ArrowArrayStream>?) throws(PerfettoError) {
        try failingOnError { () throws(PerfettoError) in try writeThreadSpans(streamId: streamId, stream: stream) }
    }

    private func writeThreadSpans(streamId: UnsafeRawBufferPointer,
                                  stream: UnsafeMutablePointer<ArrowArrayStream>?) throws(PerfettoError) {
        let label = "thread spans of stream '\(String(decoding: streamId, as: UTF8.self))'"
        // The call is checked before the stream is read: a refused call, or spans not asked
        // for, release it unread (a failing stream cannot fail the generator then).
        let track: UInt64
        do throws(PerfettoError) {
            try admit(stream, label: label)
            guard spanTypes.includesThread else {
                ArrowStreamReader.discard(stream)
                return
            }
            guard UTF8Validation.isValid(streamId) else { throw .invalidUTF8("stream_id") }
            track = XXH64.hash(streamId)
            guard threadTracks.contains(track) else {
                throw .invalidArgument("stream '\(String(decoding: streamId, as: UTF8.self))' is not in the thread list")
            }
        } catch {
            ArrowStreamReader.discard(stream)
            throw error
        }
        let reader = try ArrowStreamReader(moving: stream, label: label)
        let columns = try ThreadSpanColumns(reader)
        try writer.setCurrentThread(trackUUID: track)
        // Lanes layouts: spans 512 deep or deeper go on depth bands (TraceGenerator+DepthBands).
        let bands = layout.isLanes
        if bands { selectThreadDepths(track) }
        while let batch = try reader.next() {
            let begin = try TimeColumn(batch: batch, field: reader.fields[columns.begin], index: columns.begin,
                                       label: label)
            let end = try TimeColumn(batch: batch, field: reader.fields[columns.end], index: columns.end, label: label)
            let name = try StringColumn(batch: batch, field: reader.fields[columns.name], index: columns.name,
                                        label: label, pool: pool)
            let target = try StringColumn(batch: batch, field: reader.fields[columns.target], index: columns.target,
                                          label: label, pool: pool)
            let filename = try StringColumn(batch: batch, field: reader.fields[columns.filename],
                                            index: columns.filename, label: label, pool: pool)
            let line = try IntegerColumn(batch: batch, field: reader.fields[columns.line], index: columns.line,
                                         label: label, timesOnly: false)
            var written = 0
            for row in 0..<batch.length {
                let b = try begin.required(row), e = try end.required(row)
                guard b <= rangeEnd, e >= rangeBegin else { continue }
                guard b >= 0 else { throw .invalidData("\(label): negative begin time \(b)") }
                var spanTrack = track
                if bands { spanTrack = try threadSpanTrack(depth: try threadDepths.depth(begin: b, end: e), thread: track) }
                try writer.emitPooledSlice(
                    track: spanTrack, begin: UInt64(b), end: UInt64(e), name: try name.id(row),
                    target: try target.id(row), filename: try filename.id(row), line: try lineValue(line, row, label),
                    pool: pool)
                written += 1
            }
            stats.threadSpans += written
            stats.threadSpansOutsideRange += batch.length - written
        }
    }

    /// Writes the spans of thread `streamId` from `stream`.
    public func addThreadSpans(streamId: String, stream: UnsafeMutablePointer<ArrowArrayStream>?) throws(PerfettoError) {
        try withBytes(streamId) { (id) throws(PerfettoError) in try addThreadSpans(streamId: id, stream: stream) }
    }

    // MARK: - Async events

    /// Reads async events from `stream` (the `async_events` columns: time, event_type,
    /// span_id, parent_span_id, name, filename, target, line, and depth if present) and
    /// pairs them. May be called several times. Takes ownership of the stream.
    public func addAsyncEvents(stream: UnsafeMutablePointer<ArrowArrayStream>?) throws(PerfettoError) {
        try failingOnError { () throws(PerfettoError) in try readAsyncEvents(stream: stream) }
    }

    /// Each batch is read in tiles of `AsyncTile.rows` rows, column by column; a tile
    /// with anything to report (a null time, a bad dictionary index...) is read again row
    /// by row, which throws the error of its first faulty row.
    private func readAsyncEvents(stream: UnsafeMutablePointer<ArrowArrayStream>?) throws(PerfettoError) {
        let label = "async events"
        try admit(stream, label: label)
        guard spanTypes.includesAsync else {
            ArrowStreamReader.discard(stream)
            return
        }
        let reader = try ArrowStreamReader(moving: stream, label: label)
        let columns = try AsyncEventColumns(reader)
        var pending = try reader.next()
        guard let firstLength = pending?.length else {
            stats.matcher = matcher.counts
            return
        }
        /// The first batch, then the stream's (nil at its end).
        func nextBatch() throws(PerfettoError) -> ArrowBatch? {
            if let batch = pending.take() { return batch }
            return try reader.next()
        }
        // From a first batch of `decodeAheadMinimumRows` rows: decoding on a worker.
        if firstLength >= decodeAheadMinimumRows,
           let ahead = AsyncDecodeAhead.start(beginId: beginId, endId: endId) {
            defer { ahead.stop() }
            try ahead.run(next: { () throws(PerfettoError) in
                guard let batch = try nextBatch() else { return nil }
                return (batch, try AsyncEventBatch(batch, reader, columns, pool: pool, label: label,
                                                   withStream: layout == .threadLanes))
            }, pair: { (tile, n) throws(PerfettoError) in try addTile(tile, n) },
               readRows: { (c, rows) throws(PerfettoError) in try addRows(c, rows, label: label) })
            stats.matcher = matcher.counts
            return
        }
        let tile = AsyncTile()
        while let batch = try nextBatch() {
            let c = try AsyncEventBatch(batch, reader, columns, pool: pool, label: label,
                                        withStream: layout == .threadLanes)
            var start = 0
            while start < batch.length {
                let n = Swift.min(AsyncTile.rows, batch.length - start)
                if tile.decode(c, start, n, beginId: beginId, endId: endId) {
                    try addTile(tile, n)
                } else {
                    try addRows(c, start..<(start + n), label: label)
                }
                start += n
            }
        }
        stats.matcher = matcher.counts
    }

    /// The decoded rows of a tile.
    @inline(__always)
    private func addTile(_ tile: AsyncTile, _ n: Int) throws(PerfettoError) {
        matcher.index.touch(tile.spanId, n)
        for j in 0..<n {
            try matcher.addEvent(isBegin: tile.type[j] == beginId, time: tile.time[j], spanId: tile.spanId[j]) {
                AsyncMatcher.Attributes(
                    parentSpanId: tile.parent[j], depth: UInt32(truncatingIfNeeded: tile.depth[j]), name: tile.name[j],
                    target: tile.target[j], filename: tile.filename[j], line: UInt32(truncatingIfNeeded: tile.line[j]),
                    stream: tile.stream[j])
            }
        }
    }

    /// Rows read one by one, with every check in row order: the first faulty row throws.
    private func addRows(_ c: AsyncEventBatch, _ rows: Range<Int>, label: String) throws(PerfettoError) {
        for row in rows {
            let type = try c.eventType.id(row)
            guard type == beginId || type == endId else {
                if c.eventType.view.isNull(row) {
                    throw .invalidData("\(label): null in column 'event_type' (row \(row) of a batch)")
                }
                throw .invalidData("\(label): event_type must be 'begin' or 'end', got '\(pool.string(type))' "
                                   + "(row \(row) of a batch)")
            }
            let attributes = AsyncMatcher.Attributes(
                parentSpanId: c.parent.optional(row, 0),
                depth: UInt32(truncatingIfNeeded: c.depth?.optional(row, 0) ?? 0),
                name: try c.name.id(row), target: try c.target.id(row), filename: try c.filename.id(row),
                line: try lineValue(c.line, row, label), stream: (try? c.stream?.id(row)).flatMap { $0 } ?? 0)
            try matcher.addEvent(isBegin: type == beginId, time: try c.time.required(row),
                                 spanId: try c.spanId.required(row), attributes: attributes)
        }
    }

    // MARK: - Finish

    /// Pairs and lays out the async spans, writes them, and flushes the writer.
    public func finish() throws(PerfettoError) -> GenerationStats {
        try checkOpen()
        finished = true
        try failingOnError { () throws(PerfettoError) in try writeAsyncSpansAndFlush() }
        return stats
    }

    /// The statistics so far; an error once the generator failed.
    public func currentStats() throws(PerfettoError) -> GenerationStats {
        if let failure { throw Self.failedError(failure) }
        return stats
    }

    private func writeAsyncSpansAndFlush() throws(PerfettoError) {
        if spanTypes.includesAsync {
            try checkWorkingMemory()
            switch layout {
            case .micromegas: try writeMicromegasLayout()
            case .lanes: try writeLanes()
            case .threadLanes: try writeThreadLanes()
            }
        }
        try writer.flush()
    }

    /// The most bytes per async record that ordering, placing and writing hold at once (in
    /// Swift arrays, whose allocation failing would end the process): lanes and thread-lanes
    /// the order, parent, placement, lane-state and flow arrays; micromegas the order and
    /// its sort keys.
    static func workingBytesPerRecord(_ layout: AsyncLayout) -> Int {
        switch layout {
        case .micromegas: return 24
        case .lanes: return 48
        case .threadLanes: return 56
        }
    }

    /// Running out of memory while ordering and placing is an error, not the end of the
    /// process: that much memory is allocated (and given back) first, so that a process
    /// without it (a `ulimit -v`, a container limit enforced by malloc) is told.
    private func checkWorkingMemory() throws(PerfettoError) {
        let (bytes, overflow) = matcher.records.count.multipliedReportingOverflow(by: Self.workingBytesPerRecord(layout))
        guard !overflow else { throw .outOfMemory }
        guard bytes >= 1 << 20 else { return }
        guard pmm_can_allocate(bytes) != 0 else { throw .outOfMemory }
    }

    /// micromegas' layout: complete spans with begin < end, by begin then span id, on one track.
    private func writeMicromegasLayout() throws(PerfettoError) {
        var (order, counts, sortedPrefix) = matcher.resolveInPlace(completeWithDuration: true)
        stats.matcher = counts
        let records = matcher.records
        if sortedPrefix < order.count { AsyncOrder.sort(&order, records, lanes: false, sortedPrefix: sortedPrefix) }
        for index in order { try writeAsync(records[Int(index)], track: writer.asyncTrackUUID) }
    }

    private func writeLanes() throws(PerfettoError) {
        let records = matcher.records
        var laneTracks: [UInt64] = []
        var laneFields: [PacketEncoder.PackedField] = []
        try placeAndWrite(makeOrder: {
            var (order, counts, sortedPrefix) = matcher.resolveInPlace(completeWithDuration: false)
            stats.matcher = counts
            if sortedPrefix < order.count { AsyncOrder.sort(&order, records, lanes: true, sortedPrefix: sortedPrefix) }
            return order
        }, makePlacer: { order, parents in
            let layout = LaneLayout(records: LaneRecordState(recordCount: records.count),
                                    typicalGap: Self.typicalGap(order, records), spanCount: order.count)
            return { i in
                let r = records[i]
                return layout.place(i, begin: r.pointee.begin, end: r.pointee.end, parent: Int(parents[i]), records)
            }
        }, write: { (i, placement, flows) throws(PerfettoError) in
            if placement.isNewLane {
                let uuid = laneTracks.isEmpty ? writer.asyncTrackUUID : Self.laneTrackUUID(placement.lane, writer)
                if !laneTracks.isEmpty { try emitLaneDescriptor(uuid: uuid, parent: writer.processTrackUUID) }
                laneTracks.append(uuid)
                laneFields.append(PacketEncoder.trackField(uuid))
            }
            try writeLaneSpan(records[i], index: i, track: laneTracks[placement.lane],
                              trackField: laneFields[placement.lane], flows: flows)
        })
        stats.asyncTracks = Swift.max(1, laneTracks.count)
    }

    /// The uuid of lane `lane` (> 0); lane 0 is micromegas' async track.
    public static func laneTrackUUID(_ lane: Int, _ writer: TraceWriter) -> UInt64 {
        XXH64.hash("async_track_lane_\(lane)", seed: writer.processTrackUUID)
    }

    @inline(__always)
    private func writeAsync(_ r: UnsafeMutablePointer<AsyncRecord>, track: UInt64) throws(PerfettoError) {
        let s = r.pointee
        guard s.begin >= 0 else { throw .invalidData("async events: negative time \(s.begin)") }
        try writer.emitPooledSlice(track: track, begin: UInt64(s.begin), end: UInt64(s.end), name: s.name,
                                   target: s.target, filename: matcher.filename(s.location),
                                   line: matcher.line(s.location), pool: pool)
        stats.asyncSpans += 1
    }

    // MARK: - Helpers

    /// A call given `stream`: refused (the stream released unread) when the generator is
    /// finished or failed, or when the stream is NULL or released.
    func admit(_ stream: UnsafeMutablePointer<ArrowArrayStream>?, label: String) throws(PerfettoError) {
        do throws(PerfettoError) {
            try checkOpen()
        } catch {
            ArrowStreamReader.discard(stream)
            throw error
        }
        try ArrowStreamReader.checkMovable(stream, label: label)
    }

    func checkOpen() throws(PerfettoError) {
        if let failure { throw Self.failedError(failure) }
        guard !finished else { throw .callOrder("the generator is finished") }
    }

    private static func failedError(_ cause: PerfettoError) -> PerfettoError {
        .callOrder("the generator failed on an earlier error: \(cause)")
    }

    /// Runs `body`; an error other than a bad argument (nothing read or written) or a
    /// refused call fails the generator: its trace is incomplete, so later calls are refused.
    func failingOnError(_ body: () throws(PerfettoError) -> Void) throws(PerfettoError) {
        do {
            try body()
        } catch {
            switch error {
            case .invalidArgument, .invalidUTF8, .callOrder: break
            default: if failure == nil { failure = error }
            }
            throw error
        }
    }

    @inline(__always)
    private func lineValue(_ column: IntegerColumn, _ row: Int, _ label: String) throws(PerfettoError) -> UInt32 {
        let value = column.optional(row, 0)
        guard let line = UInt32(exactly: value) else {
            let shown = column.width == .uint64 ? String(UInt64(bitPattern: value)) : String(value)
            throw .invalidData("\(label): line \(shown) is out of range for uint32 (row \(row) of a batch)")
        }
        return line
    }
}

/// The columns of one `async_events` batch.
struct AsyncEventBatch {
    let time: TimeColumn
    let eventType: StringColumn
    let spanId, parent: IntegerColumn
    let depth: IntegerColumn?
    let name, target, filename: StringColumn
    let line: IntegerColumn
    let stream: StringColumn?

    /// The columns of `batch` (`columns`: their indices in `reader`'s schema); the stream id
    /// column only `withStream` (thread-lanes, the one layout that uses it; it cannot fail a read).
    init(_ batch: ArrowBatch, _ reader: ArrowStreamReader, _ columns: AsyncEventColumns, pool: StringPool,
         label: String, withStream: Bool) throws(PerfettoError) {
        func integer(_ index: Int) throws(PerfettoError) -> IntegerColumn {
            try IntegerColumn(batch: batch, field: reader.fields[index], index: index, label: label, timesOnly: false)
        }
        func string(_ index: Int) throws(PerfettoError) -> StringColumn {
            try StringColumn(batch: batch, field: reader.fields[index], index: index, label: label, pool: pool)
        }
        time = try TimeColumn(batch: batch, field: reader.fields[columns.time], index: columns.time, label: label)
        eventType = try string(columns.eventType)
        spanId = try integer(columns.spanId)
        parent = try integer(columns.parentSpanId)
        depth = try columns.depth.map { (index) throws(PerfettoError) in try integer(index) }
        name = try string(columns.name)
        target = try string(columns.target)
        filename = try string(columns.filename)
        line = try integer(columns.line)
        stream = withStream ? columns.streamId.flatMap { try? string($0) } : nil
    }
}

/// Scratch columns for `rows` rows of async events, reused from tile to tile.
final class AsyncTile {
    static let rows = 1024
    let time = UnsafeMutablePointer<Int64>.allocate(capacity: rows)
    let spanId = UnsafeMutablePointer<Int64>.allocate(capacity: rows)
    let parent = UnsafeMutablePointer<Int64>.allocate(capacity: rows)
    let depth = UnsafeMutablePointer<Int64>.allocate(capacity: rows)
    let line = UnsafeMutablePointer<Int64>.allocate(capacity: rows)
    let type = UnsafeMutablePointer<UInt32>.allocate(capacity: rows)
    let name = UnsafeMutablePointer<UInt32>.allocate(capacity: rows)
    let target = UnsafeMutablePointer<UInt32>.allocate(capacity: rows)
    let filename = UnsafeMutablePointer<UInt32>.allocate(capacity: rows)
    let stream = UnsafeMutablePointer<UInt32>.allocate(capacity: rows)
    /// `depth` and `stream` hold zeros (a batch without the column left them so): the next
    /// batch without it need not fill them again.
    private var depthZeroed = false, streamZeroed = false

    deinit {
        for p in [time, spanId, parent, depth, line] { p.deallocate() }
        for p in [type, name, target, filename, stream] { p.deallocate() }
    }

    /// Decodes rows `start ..< start + n` (n <= `rows`). False when a row has anything to
    /// report: a null or out-of-range time, a null span id, an unreadable string, an event
    /// type other than begin and end, a line out of uint32 range.
    @inline(__always)
    func decode(_ c: AsyncEventBatch, _ start: Int, _ n: Int, beginId: UInt32, endId: UInt32) -> Bool {
        guard c.eventType.decodeIds(start, n, into: type), c.time.decode(start, n, into: time),
              c.spanId.decode(start, n, into: spanId, required: true, fallback: 0),
              c.parent.decode(start, n, into: parent, required: false, fallback: 0),
              c.name.decodeIds(start, n, into: name), c.target.decodeIds(start, n, into: target),
              c.filename.decodeIds(start, n, into: filename),
              c.line.decode(start, n, into: line, required: false, fallback: 0) else { return false }
        if let depthColumn = c.depth {
            _ = depthColumn.decode(start, n, into: depth, required: false, fallback: 0)
            depthZeroed = false
        } else if !depthZeroed {
            depth.update(repeating: 0, count: Self.rows)
            depthZeroed = true
        }
        // The stream id is informative: an unreadable one reads as none.
        if let streamColumn = c.stream {
            if !streamColumn.decodeIds(start, n, into: stream) {
                for j in 0..<n { stream[j] = (try? streamColumn.id(start + j)) ?? 0 }
            }
            streamZeroed = false
        } else if !streamZeroed {
            stream.update(repeating: 0, count: Self.rows)
            streamZeroed = true
        }
        var bad = false
        for j in 0..<n {
            let t = type[j]
            bad = bad || (t != beginId && t != endId) || UInt64(bitPattern: line[j]) > UInt64(UInt32.max)
        }
        return !bad
    }
}
