import CArrowABI

/// How async spans are laid out on tracks.
public enum AsyncLayout: String, Sendable, CaseIterable {
    /// Overlapping spans spread over nested-or-disjoint lane tracks (the default).
    case lanes
    /// micromegas' own: one track, complete spans only, byte-identical to its writer.
    case micromegas
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
    /// Counter track uuids by (pool name id << 32 | pool unit id).
    @exclusivity(unchecked) var counterTracks = IdMap(capacity: 16)

    /// Writes the process, thread and async track descriptors to `writer`.
    public init(writer: TraceWriter, exe: String, threads: [ThreadInfo], spanTypes: SpanTypes,
                rangeBegin: Int64, rangeEnd: Int64, layout: AsyncLayout) throws(PerfettoError) {
        guard rangeBegin >= 0 else { throw .invalidArgument("range begin \(rangeBegin) is negative") }
        guard rangeBegin <= rangeEnd else {
            throw .invalidArgument("range begin \(rangeBegin) is after range end \(rangeEnd)")
        }
        self.writer = writer
        self.spanTypes = spanTypes
        self.layout = layout
        self.rangeBegin = rangeBegin
        self.rangeEnd = rangeEnd
        matcher = AsyncMatcher(rangeBegin: rangeBegin, rangeEnd: rangeEnd)
        threadTracks = Set(threads.map { XXH64.hash($0.streamId) })
        beginId = try pool.id("begin")
        endId = try pool.id("end")
        try writer.emitProcessDescriptor(exe: exe)
        for thread in threads {
            try writer.emitThreadDescriptor(streamId: thread.streamId, threadId: thread.threadId, threadName: thread.name)
        }
        if spanTypes.includesAsync {
            try writer.emitAsyncTrackDescriptor()
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
        let reader = try ArrowStreamReader(moving: stream, label: label)
        try checkOpen()
        guard spanTypes.includesThread else { return }
        guard UTF8Validation.isValid(streamId) else { throw .invalidUTF8("stream_id") }
        let track = XXH64.hash(streamId)
        guard threadTracks.contains(track) else {
            throw .invalidArgument("stream '\(String(decoding: streamId, as: UTF8.self))' is not in the thread list")
        }
        let columns = try ThreadSpanColumns(reader)
        try writer.setCurrentThread(trackUUID: track)
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
                try writer.emitPooledSlice(
                    track: track, begin: UInt64(b), end: UInt64(e), name: try name.id(row), target: try target.id(row),
                    filename: try filename.id(row), line: try lineValue(line, row, label), pool: pool)
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

    private func readAsyncEvents(stream: UnsafeMutablePointer<ArrowArrayStream>?) throws(PerfettoError) {
        let label = "async events"
        let reader = try ArrowStreamReader(moving: stream, label: label)
        try checkOpen()
        guard spanTypes.includesAsync else { return }
        let columns = try AsyncEventColumns(reader)
        while let batch = try reader.next() {
            func integer(_ index: Int) throws(PerfettoError) -> IntegerColumn {
                try IntegerColumn(batch: batch, field: reader.fields[index], index: index, label: label, timesOnly: false)
            }
            func string(_ index: Int) throws(PerfettoError) -> StringColumn {
                try StringColumn(batch: batch, field: reader.fields[index], index: index, label: label, pool: pool)
            }
            let time = try TimeColumn(batch: batch, field: reader.fields[columns.time], index: columns.time, label: label)
            let eventType = try string(columns.eventType)
            let spanId = try integer(columns.spanId)
            let parent = try integer(columns.parentSpanId)
            let depth = try columns.depth.map { (index) throws(PerfettoError) in try integer(index) }
            let name = try string(columns.name)
            let target = try string(columns.target)
            let filename = try string(columns.filename)
            let line = try integer(columns.line)
            for row in 0..<batch.length {
                let type = try eventType.id(row)
                guard type == beginId || type == endId else {
                    throw .invalidData("\(label): event_type must be 'begin' or 'end', got '\(pool.string(type))'")
                }
                let attributes = AsyncMatcher.Attributes(
                    parentSpanId: parent.optional(row, 0),
                    depth: UInt32(truncatingIfNeeded: depth?.optional(row, 0) ?? 0),
                    name: try name.id(row), target: try target.id(row), filename: try filename.id(row),
                    line: try lineValue(line, row, label))
                matcher.add(isBegin: type == beginId, time: try time.required(row), spanId: try spanId.required(row),
                            attributes: attributes)
            }
        }
        stats.matcher = matcher.counts
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
            var (spans, counts) = matcher.resolve()
            stats.matcher = counts
            switch layout {
            case .micromegas: try writeMicromegasLayout(&spans)
            case .lanes: try writeLanes(&spans)
            }
        }
        try writer.flush()
    }

    /// micromegas' layout: complete spans with begin < end, by begin then span id, on one track.
    private func writeMicromegasLayout(_ spans: inout [AsyncMatcher.Span]) throws(PerfettoError) {
        spans.removeAll { $0.kind != .complete || $0.begin >= $0.end }
        spans.sort { ($0.begin, $0.spanId) < ($1.begin, $1.spanId) }
        for s in spans { try writeAsync(s, track: writer.asyncTrackUUID) }
    }

    private func writeLanes(_ spans: inout [AsyncMatcher.Span]) throws(PerfettoError) {
        LaneLayout.sortForLanes(&spans)
        var layout = LaneLayout()
        var laneTracks: [UInt64] = []
        for s in spans {
            let placement = layout.place(s)
            if placement.isNewLane {
                let uuid = laneTracks.isEmpty ? writer.asyncTrackUUID : Self.laneTrackUUID(placement.lane, writer)
                if !laneTracks.isEmpty {
                    try writer.emitNamedTrackDescriptor(uuid: uuid, name: TraceWriter.asyncTrackName,
                                                        parent: writer.processTrackUUID)
                }
                laneTracks.append(uuid)
            }
            try writeAsync(s, track: laneTracks[placement.lane])
        }
        stats.asyncTracks = Swift.max(1, laneTracks.count)
    }

    /// The uuid of lane `lane` (> 0); lane 0 is micromegas' async track.
    public static func laneTrackUUID(_ lane: Int, _ writer: TraceWriter) -> UInt64 {
        XXH64.hash("async_track_lane_\(lane)", seed: writer.processTrackUUID)
    }

    private func writeAsync(_ s: AsyncMatcher.Span, track: UInt64) throws(PerfettoError) {
        guard s.begin >= 0 else { throw .invalidData("async events: negative time \(s.begin)") }
        try writer.emitPooledSlice(track: track, begin: UInt64(s.begin), end: UInt64(s.end), name: s.name,
                                   target: s.target, filename: s.filename, line: s.line, pool: pool)
        stats.asyncSpans += 1
    }

    // MARK: - Helpers

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
            throw .invalidData("\(label): line \(value) is out of range for uint32")
        }
        return line
    }
}

/// Column indices of a `thread_spans` stream, with their types checked.
struct ThreadSpanColumns {
    let begin, end, name, target, filename, line: Int

    init(_ reader: ArrowStreamReader) throws(PerfettoError) {
        begin = try reader.fieldIndex("begin")
        end = try reader.fieldIndex("end")
        name = try reader.fieldIndex("name")
        target = try reader.fieldIndex("target")
        filename = try reader.fieldIndex("filename")
        line = try reader.fieldIndex("line")
        try ColumnCheck.time(reader, begin)
        try ColumnCheck.time(reader, end)
        for i in [name, target, filename] { try ColumnCheck.string(reader, i) }
        try ColumnCheck.integer(reader, line)
    }
}

/// Column indices of an `async_events` stream, with their types checked.
struct AsyncEventColumns {
    let time, eventType, spanId, parentSpanId, name, target, filename, line: Int
    let depth: Int?

    init(_ reader: ArrowStreamReader) throws(PerfettoError) {
        time = try reader.fieldIndex("time")
        eventType = try reader.fieldIndex("event_type")
        spanId = try reader.fieldIndex("span_id")
        parentSpanId = try reader.fieldIndex("parent_span_id")
        name = try reader.fieldIndex("name")
        target = try reader.fieldIndex("target")
        filename = try reader.fieldIndex("filename")
        line = try reader.fieldIndex("line")
        depth = reader.optionalFieldIndex("depth")
        try ColumnCheck.time(reader, time)
        for i in [eventType, name, target, filename] { try ColumnCheck.string(reader, i) }
        for i in [spanId, parentSpanId, line] + (depth.map { [$0] } ?? []) { try ColumnCheck.integer(reader, i) }
    }
}

/// Type checks of schema fields, before any batch arrives.
enum ColumnCheck {
    static func time(_ reader: ArrowStreamReader, _ index: Int) throws(PerfettoError) {
        let field = reader.fields[index]
        switch field.type {
        case .timestamp, .integer(.int64): return
        default: throw mismatch(reader, field, TimeColumn.expected)
        }
    }

    static func integer(_ reader: ArrowStreamReader, _ index: Int) throws(PerfettoError) {
        let field = reader.fields[index]
        if case .integer = field.type { return }
        throw mismatch(reader, field, "an integer type")
    }

    static func string(_ reader: ArrowStreamReader, _ index: Int) throws(PerfettoError) {
        let field = reader.fields[index]
        switch field.type {
        case .utf8, .largeUTF8, .utf8View: return
        case .dictionary(_, let value) where StringLayout(format: value.format) != nil: return
        default: throw unsupportedString(reader.label, field)
        }
    }

    static func unsupportedString(_ label: String, _ field: ArrowField) -> PerfettoError {
        .invalidData("\(label): column '\(field.name)' has type \(field.type.description); "
                     + "expected utf8, large_utf8, string_view or dictionary<integer, utf8>")
    }

    static func mismatch(_ reader: ArrowStreamReader, _ field: ArrowField, _ expected: String) -> PerfettoError {
        .invalidData("\(reader.label): column '\(field.name)' has type \(field.type.description); expected \(expected)")
    }
}
