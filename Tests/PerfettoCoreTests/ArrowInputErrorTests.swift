import ArrowTestSupport
import CArrowABI
import Testing
@testable import PerfettoCore

/// Bad Arrow input gives an error naming the column and type; streams are always released.
struct ArrowInputErrorTests {
    static let stream = "0b4c7a9e-1f2d-4e3c-8a5b-6c7d8e9f0a1b"

    func generator(_ writer: TraceWriter, spanTypes: SpanTypes = .both) throws -> TraceGenerator {
        try TraceGenerator(writer: writer, exe: "e", threads: [ThreadInfo(streamId: Self.stream, threadId: 1, name: "t")],
                           spanTypes: spanTypes, rangeBegin: 0, rangeEnd: 1000, layout: .lanes)
    }

    /// Feeds `columns` as thread spans and returns the error message.
    func threadSpansError(_ columns: [ArrowTestStream.Column], failAfter: Int? = nil) throws -> String {
        let writer = try TraceWriter(processId: "p", sink: .memory())
        let g = try generator(writer)
        let tracker = ArrowTestStream.Tracker()
        let stream = ArrowTestStream.make([ArrowTestStream.Batch(columns)], failAfter: failAfter, tracker: tracker)
        defer { ArrowTestStream.deallocate(stream) }
        var message = ""
        do {
            try g.addThreadSpans(streamId: Self.stream, stream: stream)
        } catch {
            message = error.description
        }
        #expect(tracker.live == 0, "released on error")
        #expect(stream.pointee.release == nil, "moved out of the caller's struct")
        return message
    }

    func spans(begin: [Int64?] = [10], end: [Int64?] = [20], line: ArrowTestStream.Column = .integers("line", format: "I", [1]),
               name: ArrowTestStream.Column = .strings("name", large: false, ["n"])) -> [ArrowTestStream.Column] {
        [.integers("begin", format: "tsn:UTC", begin), .integers("end", format: "tsn:UTC", end), name,
         .strings("target", large: false, begin.map { _ in "t" }), .strings("filename", large: false, begin.map { _ in "f" }), line]
    }

    @Test func missingColumnIsNamed() throws {
        let message = try threadSpansError(Array(spans().dropLast()))
        #expect(message.contains("missing column 'line'"), "\(message)")
    }

    @Test func wrongTypeNamesColumnAndType() throws {
        let message = try threadSpansError(spans(line: .doubles("line", [1.5])))
        #expect(message.contains("'line'") && message.contains("float64"), "\(message)")
        let timeMessage = try threadSpansError([.strings("begin", large: false, ["10"])] + spans().dropFirst())
        #expect(timeMessage.contains("'begin'") && timeMessage.contains("utf8") && timeMessage.contains("timestamp (s, ms, us or ns)"))
    }

    @Test func nullInRequiredColumnIsNamed() throws {
        let message = try threadSpansError(spans(begin: [10, nil], end: [20, 30],
                                                 line: .integers("line", format: "I", [1, 2]),
                                                 name: .strings("name", large: false, ["a", "b"])))
        #expect(message.contains("null in column 'begin'"), "\(message)")
    }

    @Test func invalidUTF8IsNamed() throws {
        let message = try threadSpansError(spans(name: .rawUTF8("name", [[0x61, 0xFF]])))
        #expect(message.contains("invalid UTF-8 in column 'name'"), "\(message)")
    }

    @Test func lineOutOfRangeIsAnError() throws {
        let message = try threadSpansError(spans(line: .integers("line", format: "l", [-1])))
        #expect(message.contains("line -1"), "\(message)")
    }

    @Test(arguments: [Int64.max, Int64.max - 1, Int64.max / 16, -5] as [Int64])
    func hostileOffsetsAreErrorsNotTraps(offset: Int64) throws {
        let writer = try TraceWriter(processId: "p", sink: .memory())
        let g = try generator(writer)
        let tracker = ArrowTestStream.Tracker()
        let stream = ArrowTestStream.make([ArrowTestStream.Batch(spans(), corruptOffset: offset)], tracker: tracker)
        defer { ArrowTestStream.deallocate(stream) }
        let error = #expect(throws: PerfettoError.self) { try g.addThreadSpans(streamId: Self.stream, stream: stream) }
        guard case .invalidData(let message)? = error else {
            Issue.record("expected invalidData, got \(String(describing: error))")
            return
        }
        #expect(message.hasPrefix("thread spans of stream '\(Self.stream)': "), "\(message)")
        #expect(tracker.live == 0)
    }

    @Test func producerFailureIsReported() throws {
        let message = try threadSpansError(spans(), failAfter: 0)
        #expect(message.contains("failed on purpose"), "\(message)")
    }

    @Test func nullStringsAndLinesReadAsEmptyAndZero() throws {
        let writer = try TraceWriter(processId: "p", sink: .memory())
        let g = try generator(writer, spanTypes: .thread)
        let stream = ArrowTestStream.make([ArrowTestStream.Batch(spans(
            begin: [10, 12], end: [20, 15], line: .integers("line", format: "I", [nil, 7]),
            name: .dictionary("name", indexFormat: "i", large: false, [nil, "x"])))])
        defer { ArrowTestStream.deallocate(stream) }
        try g.addThreadSpans(streamId: Self.stream, stream: stream)
        _ = try g.finish()
        let events = try decodeEvents(try writer.takeBytes()).events
        #expect(events.map(\.name) == ["", "", "x", "x"])
        #expect(events.map(\.line) == [0, 0, 7, 7])
    }

    @Test func threadSpansOutsideTheRangeAreSkipped() throws {
        let writer = try TraceWriter(processId: "p", sink: .memory())
        let g = try generator(writer, spanTypes: .thread)
        // range [0, 1000]: kept when begin <= 1000 and end >= 0; edges included, not clamped.
        let begins: [Int64?] = [1000, 1001, 500, 0]
        let ends: [Int64?] = [1500, 1200, 999, 0]
        let stream = ArrowTestStream.make([ArrowTestStream.Batch(spans(
            begin: begins, end: ends, line: .integers("line", format: "I", [1, 2, 3, 4]),
            name: .strings("name", large: false, ["a", "b", "c", "d"])))])
        defer { ArrowTestStream.deallocate(stream) }
        try g.addThreadSpans(streamId: Self.stream, stream: stream)
        let stats = try g.finish()
        let events = try decodeEvents(try writer.takeBytes()).events
        #expect(events.map(\.name) == ["a", "a", "c", "c", "d", "d"])
        #expect(events.map(\.timestamp) == [1000, 1500, 500, 999, 0, 0])
        #expect(stats.threadSpans == 3 && stats.threadSpansOutsideRange == 1)
    }

    /// Feeds `columns` as async events and returns the error message.
    func asyncEventsError(_ columns: [ArrowTestStream.Column]) throws -> String {
        let writer = try TraceWriter(processId: "p", sink: .memory())
        let g = try generator(writer, spanTypes: .async)
        let stream = ArrowTestStream.make([ArrowTestStream.Batch(columns)])
        defer { ArrowTestStream.deallocate(stream) }
        do {
            try g.addAsyncEvents(stream: stream)
        } catch {
            return error.description
        }
        return ""
    }

    func events(type: ArrowTestStream.Column = .strings("event_type", large: false, ["begin", "end", "end"]),
                name: ArrowTestStream.Column = .strings("name", large: false, ["a", "a", "b"]),
                line: ArrowTestStream.Column = .integers("line", format: "I", [1, 1, 1])) -> [ArrowTestStream.Column] {
        [.integers("time", format: "tsn:UTC", [10, 20, 30]), type, .integers("span_id", format: "l", [1, 1, 2]),
         .integers("parent_span_id", format: "l", [0, 0, 0]), name,
         .strings("filename", large: false, ["f", "f", "f"]), .strings("target", large: false, ["t", "t", "t"]), line]
    }

    /// A bad value deep in the data is named with its table and its row (the caller turns the
    /// row of a batch into the row of the stream): a text that is not UTF-8, a dictionary
    /// index out of range, a line that does not fit in uint32 (shown as the value it is), an
    /// event type other than begin or end, null included.
    @Test func badValuesNameTheirTableAndRow() throws {
        let label = "thread spans of stream '\(Self.stream)'"
        func spansError(line: ArrowTestStream.Column = .integers("line", format: "I", [1, 2, 3]),
                        name: ArrowTestStream.Column) throws -> String {
            try threadSpansError(spans(begin: [10, 11, 12], end: [20, 21, 22], line: line, name: name))
        }
        var m = try spansError(name: .rawUTF8("name", [[0x61], [0x62], [0x61, 0xFF]]))
        #expect(m == "invalid data: \(label): invalid UTF-8 in column 'name' (row 2 of a batch)", "\(m)")
        m = try spansError(name: .stringViews("name", ["a", "b", "a string too long to be inline \u{00E9}"]))
        #expect(!m.contains("UTF-8"), "valid text stays valid: \(m)")
        m = try spansError(line: .integers("line", format: "L", [1, -1, 3]), name: .strings("name", large: false, ["a", "b", "c"]))
        #expect(m == "invalid data: \(label): line 18446744073709551615 is out of range for uint32 (row 1 of a batch)", "\(m)")
        m = try asyncEventsError(events(type: .strings("event_type", large: false, ["begin", "end", "BEGIN"])))
        #expect(m == "invalid data: async events: event_type must be 'begin' or 'end', got 'BEGIN' (row 2 of a batch)", "\(m)")
        m = try asyncEventsError(events(type: .strings("event_type", large: false, ["begin", nil, "end"])))
        #expect(m == "invalid data: async events: null in column 'event_type' (row 1 of a batch)", "\(m)")
        m = try asyncEventsError(events(name: .rawUTF8("name", [[0x61], [0x61], [0xC3]])))
        #expect(m == "invalid data: async events: invalid UTF-8 in column 'name' (row 2 of a batch)", "\(m)")
        m = try asyncEventsError(events(line: .integers("line", format: "l", [1, 1, 1 << 40])))
        #expect(m == "invalid data: async events: line 1099511627776 is out of range for uint32 (row 2 of a batch)", "\(m)")
    }

    @Test func misuseIsAnError() throws {
        let writer = try TraceWriter(processId: "p", sink: .memory())
        #expect(throws: PerfettoError.invalidArgument("range begin 5 is after range end 4")) {
            try TraceGenerator(writer: writer, exe: "e", threads: [], spanTypes: .both, rangeBegin: 5, rangeEnd: 4, layout: .lanes)
        }
        let g = try generator(writer)
        let tracker = ArrowTestStream.Tracker()
        let unknown = ArrowTestStream.make([ArrowTestStream.Batch(spans())], tracker: tracker)
        defer { ArrowTestStream.deallocate(unknown) }
        #expect(throws: PerfettoError.invalidArgument("stream 'nope' is not in the thread list")) {
            try g.addThreadSpans(streamId: "nope", stream: unknown)
        }
        _ = try g.finish()
        #expect(throws: PerfettoError.callOrder("the generator is finished")) { try g.finish() }
        let late = ArrowTestStream.make([ArrowTestStream.Batch(spans())], tracker: tracker)
        defer { ArrowTestStream.deallocate(late) }
        #expect(throws: PerfettoError.callOrder("the generator is finished")) {
            try g.addThreadSpans(streamId: Self.stream, stream: late)
        }
        #expect(tracker.live == 0)
    }
}
