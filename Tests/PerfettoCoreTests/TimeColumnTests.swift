import ArrowTestSupport
import CArrowABI
import CPerfettoMM
import Testing
@testable import PerfettoCore

/// Time columns through the C ABI: timestamps in s, ms, us and ns with any zone or none,
/// and int64 nanoseconds, give the same trace for the same instants; a value whose
/// nanoseconds do not fit in int64 is an error naming the column.
struct TimeColumnTests {
    static let processId = "34d7c06d-3163-4111-863e-c5fc09d22d51"
    static let thread = ThreadInfo(streamId: "0b4c7a9e-1f2d-4e3c-8a5b-6c7d8e9f0a1b", threadId: 7, name: "main-7")
    /// Instants (ns) that every unit can represent: whole seconds since the epoch.
    static let second: Int64 = 1_000_000_000
    static let spans: [(Int64, Int64)] = [(1_700_000_000, 1_700_000_005), (1_700_000_001, 1_700_000_002),
                                          (1_700_000_010, 1_700_000_011)].map { ($0 * second, $1 * second) }
    static let asyncSpans: [(Int64, Int64)] = [(1_700_000_000, 1_700_000_020), (1_700_000_003, 1_700_000_004)]
        .map { ($0 * second, $1 * second) }

    static let formats = ["tsn:+00:00", "tsn:UTC", "tsn:", "tsu:+00:00", "tsu:", "tsm:UTC", "tsm:Europe/Paris",
                          "tss:", "tss:+00:00", "l"]

    static func perUnit(_ format: String) -> Int64 {
        switch format.prefix(3) {
        case "tss": return 1_000_000_000
        case "tsm": return 1_000_000
        case "tsu": return 1_000
        default: return 1
        }
    }

    func cStream(_ stream: UnsafeMutablePointer<CArrowABI.ArrowArrayStream>) -> UnsafeMutablePointer<CPerfettoMM.ArrowArrayStream> {
        UnsafeMutableRawPointer(stream).assumingMemoryBound(to: CPerfettoMM.ArrowArrayStream.self)
    }

    func threadBatch(_ format: String, _ values: [(Int64, Int64)]) -> [ArrowTestStream.Batch] {
        let scale = Self.perUnit(format)
        return [ArrowTestStream.Batch([
            .integers("begin", format: format, values.map { $0.0 / scale }),
            .integers("end", format: format, values.map { $0.1 / scale }),
            .strings("name", large: false, values.indices.map { "span\($0)" }),
            .strings("target", large: false, values.map { _ in "t" }),
            .strings("filename", large: false, values.map { _ in "f.rs" }),
            .integers("line", format: "I", values.indices.map { Int64($0) }),
        ])]
    }

    func asyncBatch(_ format: String, _ values: [(Int64, Int64)]) -> [ArrowTestStream.Batch] {
        let scale = Self.perUnit(format)
        let events = values.enumerated().flatMap { i, s in [(s.0, "begin", Int64(i + 1)), (s.1, "end", Int64(i + 1))] }
        return [ArrowTestStream.Batch([
            .integers("time", format: format, events.map { $0.0 / scale }),
            .strings("event_type", large: false, events.map(\.1)),
            .integers("span_id", format: "l", events.map(\.2)),
            .integers("parent_span_id", format: "l", events.map { _ in 0 }),
            .strings("name", large: false, events.map { "op\($0.2)" }),
            .strings("filename", large: false, events.map { _ in "a.rs" }),
            .strings("target", large: false, events.map { _ in "a" }),
            .integers("line", format: "I", events.map { _ in 3 }),
        ])]
    }

    /// A whole generation through perfetto_mm.h: the trace, or the failing status and message.
    func generate(threadBatches: [ArrowTestStream.Batch], asyncBatches: [ArrowTestStream.Batch]) throws
        -> Result<[UInt8], CABIReplay.Failure> {
        var w: OpaquePointer?
        try CABIReplay.c(Self.processId) { try CABIReplay.check(pmm_writer_new_buffer($0, $1, 0, &w)) }
        let writer = try #require(w)
        defer { pmm_writer_free(writer) }
        let id = Array(Self.thread.streamId.utf8CString), name = Array(Self.thread.name.utf8CString)
        let exe = Array("app".utf8CString)
        var g: OpaquePointer?
        try id.withUnsafeBufferPointer { idBuffer in
            try name.withUnsafeBufferPointer { nameBuffer in
                try exe.withUnsafeBufferPointer { exeBuffer in
                    var thread = pmm_thread(stream_id: idBuffer.baseAddress, stream_id_len: id.count - 1, thread_id: 7,
                                            thread_name: nameBuffer.baseAddress, thread_name_len: name.count - 1)
                    try withUnsafePointer(to: &thread) { threads in
                        var options = pmm_generator_options(
                            exe: exeBuffer.baseAddress, exe_len: exe.count - 1, threads: threads, thread_count: 1,
                            span_types: PMM_SPANS_BOTH, async_layout: PMM_LAYOUT_MICROMEGAS, range_begin_ns: 0,
                            range_end_ns: Int64.max, flags: 0)
                        try CABIReplay.check(pmm_generator_new(writer, &options, &g))
                    }
                }
            }
        }
        let generator = try #require(g)
        defer { pmm_generator_free(generator) }
        let tracker = ArrowTestStream.Tracker()
        defer { #expect(tracker.live == 0, "Arrow objects released") }
        do {
            let threadStream = ArrowTestStream.make(threadBatches, tracker: tracker)
            defer { ArrowTestStream.deallocate(threadStream) }
            try CABIReplay.c(Self.thread.streamId) {
                try CABIReplay.check(pmm_generator_add_thread_spans(generator, $0, $1, cStream(threadStream)))
            }
            let asyncStream = ArrowTestStream.make(asyncBatches, tracker: tracker)
            defer { ArrowTestStream.deallocate(asyncStream) }
            try CABIReplay.check(pmm_generator_add_async_events(generator, cStream(asyncStream)))
            try CABIReplay.check(pmm_generator_finish(generator, nil))
        } catch let failure as CABIReplay.Failure {
            return .failure(failure)
        }
        var data: UnsafeMutablePointer<UInt8>?
        var length = 0
        try CABIReplay.check(pmm_writer_take_buffer(writer, &data, &length))
        defer { pmm_buffer_free(data) }
        return .success(Array(UnsafeBufferPointer(start: data, count: length)))
    }

    @Test(arguments: formats)
    func everyUnitAndZoneGivesTheSameInstants(format: String) throws {
        let expected = try generate(threadBatches: threadBatch("tsn:+00:00", Self.spans),
                                    asyncBatches: asyncBatch("tsn:+00:00", Self.asyncSpans)).get()
        let bytes = try generate(threadBatches: threadBatch(format, Self.spans),
                                 asyncBatches: asyncBatch(format, Self.asyncSpans)).get()
        #expect(bytes == expected, "\(format)")
        var decoder = TraceDecoder()
        let events = try decoder.decode(bytes).compactMap(\.event)
        let written = events.map { Int64($0.timestamp) }
        let thread = Self.spans.flatMap { [$0.0, $0.1] }, async = Self.asyncSpans.flatMap { [$0.0, $0.1] }
        #expect(written == thread + async)
    }

    @Test(arguments: [("tss:", Int64.max / 1_000_000_000 + 1), ("tsm:UTC", Int64.min / 1_000_000 - 1),
                      ("tsu:+00:00", Int64.max / 1_000 + 1)])
    func outOfRangeTimeNamesTheColumn(format: String, value: Int64) throws {
        let spans = try generate(
            threadBatches: [ArrowTestStream.Batch([
                .integers("begin", format: "tsn:", [1]), .integers("end", format: format, [value]),
                .strings("name", large: false, ["n"]), .strings("target", large: false, ["t"]),
                .strings("filename", large: false, ["f"]), .integers("line", format: "I", [1]),
            ])],
            asyncBatches: asyncBatch("tsn:", []))
        guard case .failure(let failure) = spans else { Issue.record("no error for \(value) in \(format)"); return }
        #expect(failure.status == PMM_ERR_INVALID_DATA)
        #expect(failure.message.contains("column 'end'") && failure.message.contains("\(value)"), "\(failure.message)")

        let events = try generate(threadBatches: threadBatch("tsn:", []), asyncBatches: [ArrowTestStream.Batch([
            .integers("time", format: format, [value]), .strings("event_type", large: false, ["begin"]),
            .integers("span_id", format: "l", [1]), .integers("parent_span_id", format: "l", [0]),
            .strings("name", large: false, ["n"]), .strings("filename", large: false, ["f"]),
            .strings("target", large: false, ["t"]), .integers("line", format: "I", [1]),
        ])])
        guard case .failure(let failure) = events else { Issue.record("no error for async \(value) in \(format)"); return }
        #expect(failure.status == PMM_ERR_INVALID_DATA)
        #expect(failure.message.contains("column 'time'"), "\(failure.message)")
    }

    @Test func largestSecondsThatFitAreExact() throws {
        // 9_223_372_036 s is the last whole second within int64 ns.
        let last: Int64 = 9_223_372_036
        let bytes = try generate(
            threadBatches: threadBatch("tss:", [((last - 1) * Self.second, last * Self.second)]),
            asyncBatches: asyncBatch("tss:", [])).get()
        var decoder = TraceDecoder()
        let times = try decoder.decode(bytes).compactMap(\.event).map(\.timestamp)
        #expect(times == [UInt64(last - 1) * 1_000_000_000, UInt64(last) * 1_000_000_000])
    }
}
