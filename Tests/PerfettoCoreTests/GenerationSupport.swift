import ArrowTestSupport
import Testing
import CArrowABI
@testable import PerfettoCore
import ScenarioSupport

/// How a test encodes string columns.
enum StringEncoding: CaseIterable {
    case dictionary32, dictionary8, dictionary64Unsigned, plain, large, largeDictionary, view
}

func stringColumn(_ name: String, _ values: [String?], _ encoding: StringEncoding) -> ArrowTestStream.Column {
    switch encoding {
    case .dictionary32: return .dictionary(name, indexFormat: "i", large: false, values)
    case .dictionary8: return .dictionary(name, indexFormat: "s", large: false, values)
    case .dictionary64Unsigned: return .dictionary(name, indexFormat: "L", large: false, values)
    case .plain: return .strings(name, large: false, values)
    case .large: return .strings(name, large: true, values)
    case .largeDictionary: return .dictionary(name, indexFormat: "l", large: true, values)
    case .view: return .stringViews(name, values)
    }
}

/// `thread_spans` batches of at most `batchSize` rows.
func threadSpanBatches(_ spans: [Scenario.Span], encoding: StringEncoding = .dictionary32, timeFormat: String = "tsn:+00:00",
                       lineFormat: String = "I", batchSize: Int = 8192, padding: Int = 0) -> [ArrowTestStream.Batch] {
    stride(from: 0, to: spans.count, by: batchSize).map { start in
        let part = Array(spans[start..<min(start + batchSize, spans.count)])
        return ArrowTestStream.Batch([
            .integers("id", format: "l", part.indices.map { Int64($0) }),
            .integers("begin", format: timeFormat, part.map { Int64($0.begin) }),
            .integers("end", format: timeFormat, part.map { Int64($0.end) }),
            stringColumn("name", part.map(\.name), encoding),
            stringColumn("target", part.map(\.target), encoding),
            stringColumn("filename", part.map(\.filename), encoding),
            .integers("line", format: lineFormat, part.map { Int64($0.line) }),
        ], columnPadding: padding, batchPadding: padding)
    }
}

/// An async event, as a row of `async_events`.
struct AsyncEvent {
    var streamId = "stream-a"
    var time: Int64
    var isBegin: Bool
    var spanId: Int64
    var parentSpanId: Int64 = 0
    var depth: UInt32 = 0
    var name = "op"
    var target = "t"
    var filename = "f.rs"
    var line: UInt32 = 1
}

/// The begin and end events of `spans` (span ids 1, 2, ...).
func asyncEvents(_ spans: [Scenario.Span]) -> [AsyncEvent] {
    spans.enumerated().flatMap { i, s in
        [AsyncEvent(time: Int64(s.begin), isBegin: true, spanId: Int64(i + 1), name: s.name, target: s.target,
                    filename: s.filename, line: s.line),
         AsyncEvent(streamId: "stream-b", time: Int64(s.end), isBegin: false, spanId: Int64(i + 1), name: s.name,
                    target: s.target, filename: s.filename, line: s.line)]
    }
}

func asyncEventBatches(_ events: [AsyncEvent], encoding: StringEncoding = .dictionary32,
                       batchSize: Int = 8192) -> [ArrowTestStream.Batch] {
    stride(from: 0, to: events.count, by: batchSize).map { start in
        let part = Array(events[start..<min(start + batchSize, events.count)])
        return ArrowTestStream.Batch([
            stringColumn("stream_id", part.map(\.streamId), encoding),
            .integers("time", format: "tsn:UTC", part.map(\.time)),
            stringColumn("event_type", part.map { $0.isBegin ? "begin" : "end" }, encoding),
            .integers("span_id", format: "l", part.map(\.spanId)),
            .integers("parent_span_id", format: "l", part.map(\.parentSpanId)),
            .integers("depth", format: "I", part.map { Int64($0.depth) }),
            stringColumn("name", part.map(\.name), encoding),
            stringColumn("filename", part.map(\.filename), encoding),
            stringColumn("target", part.map(\.target), encoding),
            .integers("line", format: "I", part.map { Int64($0.line) }),
        ])
    }
}

/// Runs a generation: each thread's spans, then the async events.
func generate(processId: String, exe: String, threads: [(ThreadInfo, [ArrowTestStream.Batch])],
              asyncBatches: [ArrowTestStream.Batch], spanTypes: SpanTypes = .both,
              range: ClosedRange<Int64> = 0...Int64.max, layout: AsyncLayout = .lanes,
              options: AsyncOptions = AsyncOptions(), twoThreadMinimumSpans: Int? = nil,
              decodeAheadMinimumRows: Int? = nil, sink: TraceSink = .memory()) throws -> (writer: TraceWriter, stats: GenerationStats) {
    let writer = try TraceWriter(processId: processId, sink: sink)
    let generator = try TraceGenerator(writer: writer, exe: exe, threads: threads.map(\.0), spanTypes: spanTypes,
                                       rangeBegin: range.lowerBound, rangeEnd: range.upperBound, layout: layout,
                                       options: options)
    if let twoThreadMinimumSpans { generator.twoThreadMinimumSpans = twoThreadMinimumSpans }
    if let decodeAheadMinimumRows { generator.decodeAheadMinimumRows = decodeAheadMinimumRows }
    // Every schema, batch and stream handed over is released, on success and on error.
    let tracker = ArrowTestStream.Tracker()
    defer { #expect(tracker.live == 0, "Arrow objects not released") }
    for (thread, batches) in threads {
        let stream = ArrowTestStream.make(batches, schema: threadSpanSchema, tracker: tracker)
        defer { ArrowTestStream.deallocate(stream) }
        try generator.addThreadSpans(streamId: thread.streamId, stream: stream)
    }
    let stream = ArrowTestStream.make(asyncBatches, schema: asyncEventSchema, tracker: tracker)
    defer { ArrowTestStream.deallocate(stream) }
    try generator.addAsyncEvents(stream: stream)
    return (writer, try generator.finish())
}

let threadSpanSchema: [ArrowTestStream.Column] = threadSpanBatches(
    [Scenario.Span(begin: 0, end: 0, name: "", target: "", filename: "", line: 0)]).first?.columns ?? []
let asyncEventSchema: [ArrowTestStream.Column] = asyncEventBatches([AsyncEvent(time: 0, isBegin: true, spanId: 0)])
    .first?.columns ?? []

/// A slice as Perfetto's trace processor rebuilds it.
struct RebuiltSlice: Equatable, Hashable {
    var track: UInt64
    var begin: UInt64
    var end: UInt64
    var name: String
}

/// Rebuilds slices the way trace processor does: events sorted by timestamp (stable,
/// so packet order breaks ties), one stack per track, an end closing the innermost
/// open slice. Also returns each track's intervals in packet order (begin then end).
func rebuildSlices(_ events: [TraceDecoder.Event]) throws -> [RebuiltSlice] {
    let sorted = events.enumerated().sorted { ($0.element.timestamp, $0.offset) < ($1.element.timestamp, $1.offset) }
    var stacks: [UInt64: [(UInt64, String)]] = [:]
    var slices: [RebuiltSlice] = []
    for (_, e) in sorted {
        if e.type == 1 {
            stacks[e.track, default: []].append((e.timestamp, e.name))
        } else {
            guard let open = stacks[e.track]?.popLast() else {
                throw TraceDecoder.DecodeError(description: "end without open slice on track \(e.track)")
            }
            slices.append(RebuiltSlice(track: e.track, begin: open.0, end: e.timestamp, name: open.1))
        }
    }
    return slices
}

/// Whether intervals on each track nest or are disjoint (no partial overlap).
func partialOverlaps(_ slices: [RebuiltSlice]) -> Int {
    var count = 0
    for (_, onTrack) in Dictionary(grouping: slices, by: \.track) {
        let sorted = onTrack.sorted { ($0.begin, -Int64(bitPattern: $0.end)) < ($1.begin, -Int64(bitPattern: $1.end)) }
        var stack: [UInt64] = []  // ends of open intervals
        for s in sorted {
            while let last = stack.last, last <= s.begin { stack.removeLast() }
            if let last = stack.last, s.end > last { count += 1 }
            stack.append(s.end)
        }
    }
    return count
}

func decodeEvents(_ bytes: [UInt8]) throws -> (packets: [TraceDecoder.Packet], events: [TraceDecoder.Event]) {
    var decoder = TraceDecoder()
    let packets = try decoder.decode(bytes)
    return (packets, packets.compactMap(\.event))
}
