import ArrowTestSupport
import CArrowABI
import Testing
@testable import PerfettoCore
import ScenarioSupport

/// Log entries as instant events on a `Logs` track, measures as counter tracks: decoded
/// independently and compared with the input, row by row.
struct LogsMetricsTests {
    static let stream = "0b4c7a9e-1f2d-4e3c-8a5b-6c7d8e9f0a1b"

    struct Log {
        var time: Int64
        var target: String
        var level: Int64
        var msg: String?
    }

    struct Measure {
        var time: Int64
        var name: String
        var unit: String
        var value: Double
    }

    func logBatch(_ logs: [Log], _ encoding: StringEncoding) -> ArrowTestStream.Batch {
        ArrowTestStream.Batch([
            .dictionary("process_id", indexFormat: "i", large: false, logs.map { _ in "p" }),
            .integers("time", format: "tsn:UTC", logs.map(\.time)),
            stringColumn("target", logs.map(\.target), encoding),
            .integers("level", format: "i", logs.map(\.level)),
            stringColumn("msg", logs.map(\.msg), encoding),
        ])
    }

    func measureBatch(_ measures: [Measure], _ encoding: StringEncoding = .dictionary32) -> ArrowTestStream.Batch {
        ArrowTestStream.Batch([
            .integers("time", format: "tsn:UTC", measures.map(\.time)),
            stringColumn("target", measures.map { _ in "t" }, encoding),
            stringColumn("name", measures.map(\.name), encoding),
            stringColumn("unit", measures.map(\.unit), encoding),
            .doubles("value", measures.map(\.value)),
        ])
    }

    /// A generation with one thread span, then `logs` and `measures` (each a list of batches).
    func generate(logs: [ArrowTestStream.Batch], measures: [ArrowTestStream.Batch], range: ClosedRange<Int64> = 0...1000)
        throws -> (bytes: [UInt8], stats: GenerationStats, writer: TraceWriter) {
        let writer = try TraceWriter(processId: "p", sink: .memory())
        let g = try TraceGenerator(writer: writer, exe: "e", threads: [ThreadInfo(streamId: Self.stream, threadId: 1, name: "t")],
                                   spanTypes: .both, rangeBegin: range.lowerBound, rangeEnd: range.upperBound,
                                   layout: .lanes)
        let tracker = ArrowTestStream.Tracker()
        defer { #expect(tracker.live == 0, "Arrow objects not released") }
        let spans = ArrowTestStream.make(threadSpanBatches([Scenario.Span(begin: 1, end: 5, name: "s", target: "t",
                                                                          filename: "f", line: 1)]), tracker: tracker)
        defer { ArrowTestStream.deallocate(spans) }
        try g.addThreadSpans(streamId: Self.stream, stream: spans)
        if !logs.isEmpty {
            let s = ArrowTestStream.make(logs, tracker: tracker)
            defer { ArrowTestStream.deallocate(s) }
            try g.addLogEntries(stream: s)
        }
        if !measures.isEmpty {
            let s = ArrowTestStream.make(measures, tracker: tracker)
            defer { ArrowTestStream.deallocate(s) }
            try g.addMeasures(stream: s)
        }
        let stats = try g.finish()
        return (try writer.takeBytes(), stats, writer)
    }

    static let levelNames = ["fatal", "error", "warn", "info", "debug", "trace"]

    @Test(arguments: StringEncoding.allCases)
    func logEntriesComeBackExactly(_ encoding: StringEncoding) throws {
        let long = String(repeating: "x", count: 99) + "é and more"  // the cut falls inside "é"
        let logs = [
            Log(time: 10, target: "app::net", level: 3, msg: "connection slow"),
            Log(time: 2000, target: "app::net", level: 1, msg: "outside the range"),
            Log(time: 11, target: "app::ui", level: 4, msg: long),
            Log(time: 11, target: "app::ui", level: 9, msg: "odd level"),
            Log(time: 12, target: "app::net", level: 6, msg: nil),
            Log(time: 13, target: "app::net", level: 3, msg: "connection slow"),
        ]
        let (bytes, stats, _) = try generate(logs: [logBatch(Array(logs[0..<3]), encoding),
                                                    logBatch(Array(logs[3...]), encoding)], measures: [])
        #expect(stats.logEntries == 5 && stats.logEntriesOutsideRange == 1)
        let (packets, events) = try decodeEvents(bytes)
        let logTrack = try #require(packets.compactMap(\.descriptor).first { $0.name == "Logs" })
        #expect(logTrack.parent == XXH64.hash("p") && logTrack.counterUnit == nil && logTrack.siblingMergeKey == nil)
        let instants = events.filter { $0.type == 3 }
        #expect(instants.allSatisfy { $0.track == logTrack.uuid })
        let expected = logs.filter { $0.time <= 1000 }
        try #require(instants.count == expected.count)
        for (e, log) in zip(instants, expected) {
            let msg = log.msg ?? ""
            #expect(e.timestamp == UInt64(log.time))
            #expect(e.category == log.target)
            #expect(e.args["target"] == .string(log.target))
            if (1...6).contains(log.level) {
                #expect(e.args["level"] == .string(Self.levelNames[Int(log.level) - 1]))
            } else {
                #expect(e.args["level"] == .int(log.level))
            }
            if msg.utf8.count > TraceWriter.logNameMaxBytes {
                #expect(e.name == String(repeating: "x", count: 99), "cut before the 2-byte character")
                #expect(e.args["message"] == .string(msg))
            } else {
                #expect(e.name == msg && e.args["message"] == nil)
            }
            #expect(!e.inlineName)
        }
        // The Logs descriptor precedes the first entry; each annotation name is interned once.
        let firstLog = try #require(packets.firstIndex { $0.event?.type == 3 })
        let descriptorIndex = try #require(packets.firstIndex { $0.descriptor?.name == "Logs" })
        #expect(descriptorIndex < firstLog)
    }

    @Test func logNamesInternedUpToTheCapThenInline() throws {
        let n = TraceWriter.maxInternedLogNames + 50
        let logs = (0..<n).map { Log(time: Int64($0 % 1000), target: "t", level: 4, msg: "message \($0)") }
        let (bytes, stats, writer) = try generate(logs: [logBatch(logs, .plain)], measures: [])
        #expect(stats.logEntries == n)
        let instants = try decodeEvents(bytes).events.filter { $0.type == 3 }
        #expect(instants.map(\.name) == logs.map { $0.msg ?? "" })
        #expect(instants.filter(\.inlineName).count == 50)
        #expect(writer.internedLogNames == TraceWriter.maxInternedLogNames)
        // A repeated message that was interned keeps its iid after the cap.
        let repeated = try generate(logs: [logBatch(logs + [Log(time: 1, target: "t", level: 4, msg: "message 0")], .plain)],
                                    measures: [])
        let last = try #require(try decodeEvents(repeated.bytes).events.last)
        #expect(last.name == "message 0" && !last.inlineName)
    }

    @Test func measuresBecomeCounterTracks() throws {
        let measures = [
            Measure(time: 5, name: "frame_time", unit: "ms", value: 16.6),
            Measure(time: 5, name: "memory", unit: "bytes", value: 1_073_741_824),
            Measure(time: 6, name: "frame_time", unit: "ms", value: 33.3),
            Measure(time: 7, name: "queue_depth", unit: "", value: 3),
            Measure(time: 1001, name: "late_metric", unit: "count", value: 1),
            Measure(time: 8, name: "latency", unit: "ns", value: -0.5),
            Measure(time: 9, name: "requests", unit: "count", value: 12),
            Measure(time: 9, name: "frame_time", unit: "us", value: 16600),
        ]
        let (bytes, stats, _) = try generate(logs: [], measures: [measureBatch(Array(measures[0..<4])),
                                                                  measureBatch(Array(measures[4...]))])
        #expect(stats.measures == 7 && stats.measuresOutsideRange == 1 && stats.counterTracks == 6)
        let (packets, _) = try decodeEvents(bytes)
        var tracks: [UInt64: TraceDecoder.Descriptor] = [:]
        var seen: [(String, UInt64, Double)] = []  // (track name, timestamp, value)
        for p in packets {
            if let d = p.descriptor, d.counterUnit != nil {
                #expect(tracks[d.uuid] == nil, "described once")
                #expect(d.parent == XXH64.hash("p"))
                tracks[d.uuid] = d
            }
            if let e = p.event, e.type == 4 {
                let d = try #require(tracks[e.track], "counter track described before its first value")
                seen.append((d.name ?? "", e.timestamp, try #require(e.counterValue)))
            }
        }
        let order = packets.compactMap { (p: TraceDecoder.Packet) in p.descriptor }.filter { $0.counterUnit != nil }
            .map { "\($0.name ?? "")/\($0.counterUnit ?? 9)" }
        #expect(order == ["frame_time (ms)/0", "memory/3", "queue_depth/0", "latency/1", "requests/2", "frame_time (us)/0"])
        let expected: [(String, UInt64, Double)] = measures.filter { $0.time <= 1000 }.map {
            (TraceGenerator.counterTrack(name: $0.name, unit: $0.unit).name, UInt64($0.time), $0.value)
        }
        #expect(seen.map(\.0) == expected.map(\.0) && seen.map(\.1) == expected.map(\.1) && seen.map(\.2) == expected.map(\.2))
    }

    /// Metrics that Perfetto would show under one name (`mem` in bytes, `mem` in B, `mem`
    /// with no unit; `mem (ms)` with no unit and `mem` in ms) get distinct track names, in
    /// order of first appearance: the first keeps its name.
    @Test func counterTracksNeverShareAName() throws {
        let metrics = [("mem", "bytes"), ("mem", ""), ("mem", "B"), ("mem (ms)", ""), ("mem", "ms"),
                       ("mem (no unit)", ""), ("mem", "B"), ("other", "")]
        let measures = metrics.enumerated().map { Measure(time: Int64($0.offset + 1), name: $0.element.0,
                                                          unit: $0.element.1, value: 1) }
        let (bytes, stats, _) = try generate(logs: [], measures: [measureBatch(measures)])
        #expect(stats.counterTracks == 7)
        let names = try decodeEvents(bytes).packets.compactMap(\.descriptor).filter { $0.counterUnit != nil }
            .map { $0.name ?? "" }
        #expect(names == ["mem", "mem (no unit)", "mem (B)", "mem (ms)", "mem (ms) 2", "mem (no unit) (no unit)", "other"])
    }

    /// Random metrics over names and units made to collide (`x (ms)` with no unit and `x` in
    /// ms, the literal unit `no unit`, names that look numbered): every counter track has a
    /// name of its own starting with its metric's name, one track per (name, unit), its values
    /// on it; the first metric to want a free name gets it.
    @Test(arguments: 0..<6)
    func counterTrackNamesStayUniqueOnRandomMetrics(_ seed: Int) throws {
        var rng = UInt64(seed) &* 0x9E3779B97F4A7C15 &+ 5
        func next(_ n: Int) -> Int {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Int((rng >> 33) % UInt64(n))
        }
        let names = ["x", "x (ms)", "x (no unit)", "x (no unit) 2", "x (ms) 2", "x (B)", "y", "x (bytes)"]
        let units = ["", "ms", "B", "bytes", "byte", "ns", "nanoseconds", "count", "no unit", "ms) (x"]
        let measures = (0..<300).map { i in
            Measure(time: Int64(1 + i), name: names[next(names.count)], unit: units[next(units.count)],
                    value: Double(i))
        }
        let batches = stride(from: 0, to: measures.count, by: 37).map {
            measureBatch(Array(measures[$0..<min($0 + 37, measures.count)]))
        }
        let (bytes, stats, writer) = try generate(logs: [], measures: batches)
        let decoded = try decodeEvents(bytes)
        let counters = decoded.packets.compactMap(\.descriptor).filter { $0.counterUnit != nil }
        var keys: [String: (name: String, unit: String)] = [:]
        var order: [String] = []
        for m in measures where keys.updateValue((m.name, m.unit), forKey: m.name + "\u{1F}" + m.unit) == nil {
            order.append(m.name + "\u{1F}" + m.unit)
        }
        #expect(stats.counterTracks == keys.count)
        #expect(counters.count == keys.count)
        let shown = counters.map { $0.name ?? "" }
        #expect(Set(shown).count == shown.count, "\(shown)")
        // Each metric on the track of its (name, unit), in order of first appearance, named after it.
        let uuids = order.map { TraceGenerator.counterTrackUUID(name: keys[$0]!.name, unit: keys[$0]!.unit, writer) }
        #expect(counters.map(\.uuid) == uuids)
        var taken = Set<String>()
        for (k, key) in order.enumerated() {
            let (name, unit) = keys[key]!
            let wanted = TraceGenerator.counterTrack(name: name, unit: unit).name
            #expect(shown[k].hasPrefix(name), "\(shown[k]) for \(name) in \(unit)")
            if !taken.contains(wanted) { #expect(shown[k] == wanted, "\(name) in \(unit)") }
            taken.insert(shown[k])
        }
        let values = decoded.events.filter { $0.counterValue != nil }
        #expect(values.count == measures.count)
        for (m, e) in zip(measures, values) {
            #expect(e.track == TraceGenerator.counterTrackUUID(name: m.name, unit: m.unit, writer))
            #expect(e.counterValue == m.value)
        }
    }

    @Test func sameTraceTwice() throws {
        let logs = [logBatch([Log(time: 3, target: "a", level: 2, msg: "m")], .dictionary32)]
        let measures = [measureBatch([Measure(time: 4, name: "x", unit: "ms", value: 1)])]
        #expect(try generate(logs: logs, measures: measures).bytes == generate(logs: logs, measures: measures).bytes)
    }

    /// Feeds one batch of `columns` to `add` and returns the error message.
    func error(_ columns: [ArrowTestStream.Column], measures: Bool) throws -> String {
        let writer = try TraceWriter(processId: "p", sink: .memory())
        let g = try TraceGenerator(writer: writer, exe: "e", threads: [], spanTypes: .both, rangeBegin: 0,
                                   rangeEnd: 1000, layout: .lanes)
        let tracker = ArrowTestStream.Tracker()
        let stream = ArrowTestStream.make([ArrowTestStream.Batch(columns)], tracker: tracker)
        defer { ArrowTestStream.deallocate(stream) }
        var message = ""
        do {
            if measures { try g.addMeasures(stream: stream) } else { try g.addLogEntries(stream: stream) }
        } catch {
            message = error.description
        }
        #expect(tracker.live == 0, "released on error")
        return message
    }

    @Test func badColumnsAreNamed() throws {
        var columns = logBatch([Log(time: 1, target: "t", level: 1, msg: "m")], .plain).columns
        #expect(try error(Array(columns.dropLast()), measures: false).contains("missing column 'msg'"))
        columns[3] = .doubles("level", [1])
        let levelError = try error(columns, measures: false)
        #expect(levelError.contains("'level'") && levelError.contains("float64"), "\(levelError)")
        let bad = logBatch([Log(time: 1, target: "t", level: 1, msg: "m")], .plain).columns.dropLast() + [.rawUTF8("msg", [[0x61, 0xFF]])]
        #expect(try error(Array(bad), measures: false).contains("invalid UTF-8 in column 'msg'"))

        var m = measureBatch([Measure(time: 1, name: "n", unit: "u", value: 1)]).columns
        m[4] = .integers("value", format: "l", [1])
        let valueError = try error(m, measures: true)
        #expect(valueError.contains("'value'") && valueError.contains("float64"), "\(valueError)")
        #expect(try error(Array(m.dropFirst()), measures: true).contains("missing column 'time'"))
    }

    @Test func cutKeepsCharacters() {
        func cut(_ s: String, _ n: Int) -> Int {
            var s = s
            return s.withUTF8 { TraceWriter.cutLength(UnsafeRawBufferPointer($0), n) }
        }
        #expect(cut("abc", 100) == 3)
        #expect(cut("ab€d", 3) == 2)  // € is 3 bytes starting at 2
        #expect(cut("ab€d", 5) == 5)
        #expect(cut("€", 1) == 0)
    }
}
