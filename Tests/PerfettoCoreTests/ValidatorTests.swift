import ArrowTestSupport
import Testing
@testable import PerfettoCore
import ScenarioSupport

// The trace validator on hand-made traces: each problem kind found where it is, and clean
// traces reported clean.

private func validate(_ bytes: [UInt8]) -> ValidationReport {
    validatedReport(bytes)
}

private func describe(_ r: ValidationReport) -> String {
    ValidationProblemKind.allCases.filter { r.count($0) > 0 }.map { "\($0.name)=\(r.count($0))" }.joined(separator: " ")
        + " | " + r.examples.map { "\($0.kind.name)@\($0.packetOffset): \($0.message)" }.joined(separator: "; ")
}

/// Kinds with a non-zero count.
private func kinds(_ r: ValidationReport) -> Set<ValidationProblemKind> {
    Set(ValidationProblemKind.allCases.filter { r.count($0) > 0 })
}

@Suite struct ValidatorGoldenTests {
    /// micromegas' layout puts every async span on one track: the validator reports
    /// exactly the wrong slices a separate, simple model of Perfetto computes.
    @Test(arguments: Fixtures.goldenNames)
    func goldenTracesReportExactlyTheWrongSlices(name: String) throws {
        let scenario = try Fixtures.scenario(name)
        let report = validate(try Fixtures.golden(name))
        var expectedWrong = 0, expectedMisplaced = 0
        if scenario.spanTypes.includesAsync {
            (expectedWrong, expectedMisplaced) = simplePerfettoModel(scenario.asyncSpans)
        }
        if scenario.spanTypes.includesThread {
            for thread in scenario.threads {
                let (w, m) = simplePerfettoModel(thread.spans)
                expectedWrong += w
                expectedMisplaced += m
            }
        }
        #expect(report.isTrace)
        #expect(report.wrongDurationSlices == expectedWrong, "\(describe(report))")
        #expect(report.misplacedEndEvents == expectedMisplaced)
        // (`interning` writes its async spans out of begin order, within the reordering window.)
        #expect(report.outOfOrderEvents == 0)
        let threadSpans = scenario.spanTypes.includesThread ? scenario.threads.map(\.spans.count).reduce(0, +) : 0
        let asyncSpans = scenario.spanTypes.includesAsync ? scenario.asyncSpans.count : 0
        #expect(report.slices == threadSpans + asyncSpans)
        #expect(report.sliceEnds == report.slices)
        // Only slice-nesting problems: the framing, sequences and tracks are right.
        #expect(kinds(report).isSubset(of: [.wrongDuration, .misplacedEndEvent, .unmatchedEnd]), "\(describe(report))")
        if expectedWrong == 0 { #expect(report.isClean, "\(describe(report))") }
    }

    /// The large goldens do have overlapping async spans shown wrong (the tests above
    /// would pass trivially otherwise).
    @Test func largeGoldensHaveWrongSlices() throws {
        for name in ["many_threads", "large"] {
            let report = validate(try Fixtures.golden(name))
            #expect(report.wrongDurationSlices > 0, "\(name)")
            #expect(report.misplacedEndEvents > 0, "\(name)")
            #expect(report.examples.filter { $0.kind == .wrongDuration }.count == TraceValidator.maxExamplesPerKind)
        }
        // Thread spans nest: only the async track is wrong.
        let scenario = try Fixtures.scenario("large")
        for thread in scenario.threads { #expect(simplePerfettoModel(thread.spans).wrong == 0) }
    }

    /// The same spans laid out on lanes are shown right.
    @Test(arguments: ["basic", "interning", "many_threads", "large", "long_strings"])
    func lanesLayoutIsClean(name: String) throws {
        let scenario = try Fixtures.scenario(name)
        let (writer, _) = try generate(
            processId: scenario.processId, exe: scenario.exe,
            threads: scenario.threads.map {
                (ThreadInfo(streamId: $0.streamId, threadId: $0.threadId, name: $0.threadName), threadSpanBatches($0.spans))
            },
            asyncBatches: asyncEventBatches(asyncEvents(scenario.asyncSpans)), spanTypes: scenario.spanTypes,
            layout: .lanes)
        let report = validate(try writer.takeBytes())
        #expect(report.isClean, "\(describe(report))")
        #expect(report.slices == scenario.threads.map(\.spans.count).reduce(0, +) + scenario.asyncSpans.count)
    }

    /// Log entries (instants with debug annotations) and measures (counter tracks) are
    /// understood: a generated trace with them is clean.
    @Test func logsAndMeasuresAreClean() throws {
        let t = LogsMetricsTests()
        let logs = (0..<300).map { LogsMetricsTests.Log(time: Int64(($0 * 7) % 1000), target: "t\($0 % 3)", level: 3,
                                                        msg: "message \($0 % 20)") }
        let measures = (0..<200).map { LogsMetricsTests.Measure(time: Int64($0 * 5), name: "m\($0 % 4)", unit: "bytes",
                                                                value: Double($0)) }
        let (bytes, _, _) = try t.generate(logs: [t.logBatch(logs, .dictionary32)], measures: [t.measureBatch(measures)])
        let r = validate(bytes)
        #expect(r.isClean, "\(describe(r))")
        #expect(r.instants == 300 && r.counters == 200 && r.slices == 1)
        #expect(r.debugAnnotations >= 600)
    }

    /// Fed in pieces of any size, the report is the same as for the whole trace.
    @Test(arguments: [1, 2, 7, 100, 4096, 65536])
    func piecesGiveTheSameReport(pieceSize: Int) throws {
        let bytes = try Fixtures.golden("many_threads")
        let whole = validate(bytes)
        let validator = TraceValidator()
        for start in stride(from: 0, to: bytes.count, by: pieceSize) {
            try validator.feed(Array(bytes[start..<min(start + pieceSize, bytes.count)]))
        }
        let pieces = validator.finish()
        #expect(pieces.problemCounts == whole.problemCounts)
        #expect(pieces.examples == whole.examples)
        #expect(pieces.packets == whole.packets)
        #expect(pieces.bytes == Int64(bytes.count))
    }

    /// A trace cut anywhere inside a packet is reported as truncated at that packet.
    @Test func cutMidPacketIsTruncated() throws {
        let bytes = try Fixtures.golden("basic")
        var decoder = TraceDecoder()
        let packets = try decoder.decode(bytes).count
        let whole = validate(bytes)
        #expect(whole.packets == packets)
        // Record starts, from the framing.
        var starts: [Int] = []
        var i = 0
        while i < bytes.count {
            starts.append(i)
            var length = 0, shift = 0, j = i + 1
            while true { let b = bytes[j]; length |= Int(b & 0x7F) << shift; j += 1; if b < 0x80 { break }; shift += 7 }
            i = j + length
        }
        #expect(starts.count == packets)
        for cut in [starts[5] + 1, starts[5] + 3, starts[7] + 10, bytes.count - 1] {
            let report = validate(Array(bytes[..<cut]))
            let record = starts.last { $0 < cut } ?? 0
            #expect(report.count(.truncated) == 1, "cut at \(cut)")
            #expect(report.examples.first { $0.kind == .truncated }?.packetOffset == Int64(record))
            #expect(report.isTrace)
            #expect(report.packets == starts.firstIndex(of: record))
        }
        // Cut on a packet boundary: a shorter, valid trace (its last slice may be open).
        let report = validate(Array(bytes[..<starts[9]]))
        #expect(report.count(.truncated) == 0)
    }
}

@Suite struct ValidatorProblemTests {
    let process: UInt64 = 10
    let thread: UInt64 = 11

    /// A clean start: a cleared sequence, a process and a thread track.
    var header: [UInt8] {
        TP.clear() + TP.processTrack(process, pid: 42) + TP.threadTrack(thread, pid: 42, tid: 43, parent: process)
    }

    @Test func handMadeCleanTraceIsClean() {
        let trace = header + TP.slice(thread, 0, 100, "a") + TP.slice(thread, 10, 20, "b") + TP.slice(thread, 30, 100, "c")
            + TP.slice(thread, 200, 300, "a")
        let r = validate(trace)
        #expect(r.isClean, "\(describe(r))")
        #expect(r.slices == 4)
        #expect(r.maxDepth == 2)
    }

    @Test func notATrace() {
        #expect(!validate([]).isTrace)
        let garbage = validate(Array("hello, world".utf8))
        #expect(!garbage.isTrace)
        #expect(kinds(garbage) == [.framing])
        #expect(garbage.examples.first?.packetOffset == 0)
    }

    @Test func framingErrorAfterPackets() {
        let trace = header + [0x12, 0x01, 0x00] + TP.slice(thread, 0, 1, "a")
        let r = validate(trace)
        #expect(r.isTrace)
        #expect(kinds(r) == [.framing])
        #expect(r.examples.first?.packetOffset == Int64(header.count))
        #expect(r.slices == 0)  // nothing after the bad record is read
    }

    @Test func malformedPacketIsSkipped() {
        let trace = header + TP.packet([0x08]) + TP.packet([0x0A, 0x05, 0x00]) + TP.slice(thread, 0, 1, "a")
        let r = validate(trace)
        #expect(r.count(.malformedPacket) == 2, "\(describe(r))")
        #expect(kinds(r) == [.malformedPacket])
        #expect(r.slices == 1)
    }

    @Test func oversizedPacketIsSkipped() throws {
        let length = TraceFramer.maxPacketSize + 1
        let validator = TraceValidator()
        try validator.feed(header + PB.varint(1 << 3 | 2) + PB.varint(UInt64(length)))
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var left = length
        while left > 0 {
            let n = min(left, zeros.count)
            try validator.feed(Array(zeros[..<n]))
            left -= n
        }
        try validator.feed(TP.slice(thread, 0, 1, "a"))
        let r = validator.finish()
        #expect(kinds(r) == [.packetTooLarge], "\(describe(r))")
        #expect(r.slices == 1)
    }

    /// A record claiming a length up to 2^64 - 1 (found by the trace fuzzer) is skipped
    /// to the end and reported as cut, without overflowing.
    @Test func hugeClaimedLengthIsTruncated() {
        for length in [UInt64.max, UInt64(Int64.max), UInt64(Int64.max) - 3, UInt64(TraceFramer.maxPacketSize) + 1] {
            let r = validate(header + PB.varint(1 << 3 | 2) + PB.varint(length) + [1, 2, 3])
            #expect(kinds(r) == [.truncated], "\(length): \(describe(r))")
            #expect(r.examples.first?.packetOffset == Int64(header.count))
        }
    }

    @Test func sequenceNotCleared() {
        // The first packet of sequence 2 lacks SEQ_INCREMENTAL_STATE_CLEARED.
        let trace = header
            + TP.event(1, ts: 0, track: thread, extra: PB.int(10, 1), packetExtra: TP.internedNames([(1, "a")]), seq: 2)
            + TP.event(2, ts: 5, track: thread, extra: PB.int(10, 1), seq: 2)
        let r = validate(trace)
        #expect(kinds(r) == [.sequenceNotCleared], "\(describe(r))")
        #expect(r.count(.sequenceNotCleared) == 2)
        #expect(r.slices == 0)  // dropped, as Perfetto drops them
    }

    @Test func needsIncrementalStateMissing() {
        let trace = header
            + TP.event(1, ts: 0, track: thread, extra: PB.int(10, 1), packetExtra: TP.internedNames([(1, "a")]), flags: 0)
            + TP.event(2, ts: 5, track: thread, extra: PB.int(10, 1))
        let r = validate(trace)
        #expect(kinds(r) == [.needsIncrementalStateMissing], "\(describe(r))")
        #expect(r.count(.needsIncrementalStateMissing) == 1)
    }

    @Test func internedIds() {
        let trace = header
            + TP.event(1, ts: 0, track: thread, extra: PB.int(10, 7))  // undefined
            + TP.event(3, ts: 1, track: thread, extra: PB.int(10, 1), packetExtra: TP.internedNames([(1, "a")]))
            + TP.event(3, ts: 2, track: thread, extra: PB.int(10, 1), packetExtra: TP.internedNames([(1, "a")]))  // same value
            + TP.event(3, ts: 3, track: thread, extra: PB.int(10, 1), packetExtra: TP.internedNames([(1, "b")]))  // redefined
            + TP.event(3, ts: 4, track: thread, extra: PB.int(10, 1), packetExtra: TP.internedNames([(1, "c")]), flags: 3)
            + TP.event(2, ts: 9, track: thread)
            // After a clear, the old ids are gone.
            + TP.event(3, ts: 10, track: thread, extra: PB.int(10, 2), packetExtra: TP.internedNames([(2, "d")]))
            + TP.packet(TP.sequence(3)) + TP.event(3, ts: 11, track: thread, extra: PB.int(10, 2))
        let r = validate(trace)
        #expect(kinds(r) == [.internedIdUndefined, .internedIdRedefined], "\(describe(r))")
        #expect(r.count(.internedIdUndefined) == 2)
        #expect(r.count(.internedIdRedefined) == 1)
    }

    @Test func debugAnnotationsAndLocations() {
        let interned = PB.bytes(12, PB.bytes(3, PB.int(1, 5) + PB.string(2, "arg"))
                                    + PB.bytes(4, PB.int(1, 6) + PB.string(2, "f.rs") + PB.int(4, 10)))
        let annotation = PB.bytes(4, PB.int(1, 5) + PB.int(4, 99))
        let bad = PB.bytes(4, PB.int(1, 8) + PB.bytes(11, PB.int(1, 9) + PB.string(6, "x")))
        let trace = header
            + TP.event(1, ts: 0, track: thread, name: "a", extra: annotation + PB.int(34, 6), packetExtra: interned)
            + TP.event(2, ts: 5, track: thread, name: "a", extra: PB.bytes(4, PB.string(10, "inline") + PB.int(4, 1)))
            + TP.event(3, ts: 6, track: thread, name: "i", extra: bad + PB.int(34, 77))
        let r = validate(trace)
        #expect(r.count(.internedIdUndefined) == 3, "\(describe(r))")  // name 8, nested 9, location 77
        #expect(kinds(r) == [.internedIdUndefined])
        #expect(r.debugAnnotations == 3)
    }

    @Test func trackReferences() {
        let trace = header
            + TP.threadTrack(12, pid: 7, tid: 8, parent: process)  // pid differs from 42
            + TP.namedTrack(13, name: "orphan", parent: 999)
            + TP.slice(500, 0, 1, "a")  // never described
            + TP.slice(500, 2, 3, "b")
            + TP.slice(13, 0, 1, "a")
            + TP.event(3, ts: 4, track: nil, name: "default track")  // uuid 0: Perfetto's default track
        let r = validate(trace)
        #expect(kinds(r) == [.threadPidMismatch, .parentUndescribed, .trackUndescribed], "\(describe(r))")
        #expect(r.count(.trackUndescribed) == 1)
    }

    @Test func trackDescribedLaterIsFine() {
        let trace = TP.clear() + TP.slice(600, 0, 1, "a") + TP.namedTrack(600, name: "late")
        #expect(validate(trace).isClean)
    }

    @Test func trackRedescribed() {
        let trace = header + TP.namedTrack(20, name: "x", parent: process) + TP.namedTrack(20, name: "x", parent: process)
            + TP.namedTrack(20, name: "y", parent: process)
        let r = validate(trace)
        #expect(kinds(r) == [.trackRedescribed], "\(describe(r))")
        #expect(r.count(.trackRedescribed) == 1)
    }

    @Test func eventWithoutTimestampOrType() {
        let trace = header + TP.event(3, ts: nil, track: thread, name: "i") + TP.event(nil, ts: 5, track: thread, name: "x")
            + TP.event(9, ts: 5, track: thread, name: "x")
        let r = validate(trace)
        #expect(kinds(r) == [.eventWithoutTimestamp, .eventWithoutType], "\(describe(r))")
        #expect(r.count(.eventWithoutType) == 2)
    }

    @Test func countersAndInstants() {
        let counter: UInt64 = 30
        let trace = header + TP.namedTrack(counter, name: "mem", parent: process, counter: true)
            + TP.event(4, ts: 0, track: counter, extra: PB.int(30, 5))
            + TP.event(4, ts: 1, track: counter, extra: PB.fixed64(44, 0x4000_0000_0000_0000))
            + TP.slice(thread, 0, 100, "a")
            // Instants anywhere in file order, even before the slices they fall in.
            + TP.event(3, ts: 50, track: thread, name: "mark")
            + TP.event(3, ts: 0, track: thread, name: "mark")
            + TP.event(3, ts: 100, track: thread, name: "mark")
            + TP.slice(thread, 10, 20, "b")
        let clean = validate(trace)
        #expect(clean.isClean, "\(describe(clean))")
        #expect(clean.counters == 2)
        #expect(clean.instants == 3)
        #expect(clean.slices == 2)

        let bad = validate(header + TP.namedTrack(counter, name: "mem", parent: process, counter: true)
                           + TP.event(4, ts: 0, track: thread, extra: PB.int(30, 5))  // not a counter track
                           + TP.event(4, ts: 1, track: counter)  // no value
                           + TP.event(4, ts: 1, track: 31, extra: PB.int(30, 1)) + TP.namedTrack(31, name: "late", counter: true)
                           + TP.slice(counter, 2, 3, "s") + TP.event(3, ts: 4, track: counter, name: "i"))
        #expect(kinds(bad) == [.counterOnNonCounterTrack, .sliceOnCounterTrack], "\(describe(bad))")
        #expect(bad.count(.counterOnNonCounterTrack) == 3)
        #expect(bad.count(.sliceOnCounterTrack) == 3)
    }

    @Test func misplacedEndEvent() {
        // a [0, 10] and b [5, 20] cross: at 20, a (closed at 10) is buried under b, so
        // b is cut at 10 and its own end at 20 closes nothing.
        let trace = header + TP.slice(thread, 0, 10, "a") + TP.slice(thread, 5, 20, "b")
        let r = validate(trace)
        #expect(r.misplacedEndEvents == 1, "\(describe(r))")
        #expect(r.wrongDurationSlices == 1)
        #expect(r.count(.unmatchedEnd) == 1)
        #expect(kinds(r) == [.misplacedEndEvent, .wrongDuration, .unmatchedEnd])
        let wrong = r.examples.first { $0.kind == .wrongDuration }
        let bBegin = header.count + TP.slice(thread, 0, 10, "a").count
        #expect(wrong?.packetOffset == Int64(bBegin))
        #expect(wrong?.message.contains("shows duration 5, the trace says duration 15") == true, "\(wrong?.message ?? "")")
        #expect(simplePerfettoModel([.init(begin: 0, end: 10, name: "a", target: "c", filename: "", line: 0),
                                     .init(begin: 5, end: 20, name: "b", target: "c", filename: "", line: 0)])
                == (1, 1))
    }

    @Test func sameNameEndsCloseTheInnermost() {
        // Two "x" spans overlapping: each end closes the other one.
        let trace = header + TP.slice(thread, 0, 10, "x") + TP.slice(thread, 5, 20, "x")
        let r = validate(trace)
        #expect(kinds(r) == [.wrongDuration], "\(describe(r))")
        #expect(r.wrongDurationSlices == 2)
        // Same spans, other categories: matched by category, so a is cut as above.
        let other = validate(header + TP.slice(thread, 0, 10, "x", category: "p") + TP.slice(thread, 5, 20, "x", category: "q"))
        #expect(other.misplacedEndEvents == 1)
    }

    @Test func endsWithoutNamesMatchAnySlice() {
        // Perfetto SDK style: ends carry no name or category, and are written in time order.
        let trace = header + TP.event(1, ts: 0, track: thread, name: "a", category: "c")
            + TP.event(1, ts: 5, track: thread, name: "b", category: "c")
            + TP.event(2, ts: 6, track: thread) + TP.event(2, ts: 9, track: thread)
        let r = validate(trace)
        #expect(r.isClean, "\(describe(r))")
    }

    @Test func unmatchedEnd() {
        let trace = header + TP.event(2, ts: 5, track: thread, name: "a", category: "c") + TP.slice(thread, 10, 20, "a")
        let r = validate(trace)
        #expect(kinds(r) == [.unmatchedEnd], "\(describe(r))")
    }

    @Test func depthLimit() {
        // 513 nested slices with distinct names: the deepest is never pushed, so it never ends.
        var trace = header
        for d in 0...512 { trace += TP.event(1, ts: UInt64(d), track: thread, name: "s\(d)", category: "c") }
        for d in (0...512).reversed() { trace += TP.event(2, ts: UInt64(2000 - d), track: thread, name: "s\(d)", category: "c") }
        let r = validate(trace)
        #expect(r.count(.depthLimit) == 1, "\(describe(r))")
        #expect(r.wrongDurationSlices == 1)
        #expect(r.count(.unmatchedEnd) == 1)
        #expect(r.maxDepth == 512)
        #expect(kinds(r) == [.depthLimit, .wrongDuration, .unmatchedEnd])
    }

    @Test func openAtEndIsNotWrong() {
        let trace = header + TP.event(1, ts: 0, track: thread, name: "a", category: "c") + TP.slice(thread, 1, 2, "b")
        let r = validate(trace)
        #expect(r.isClean, "\(describe(r))")
        #expect(r.openAtEnd == 1)
    }

    @Test func flows() {
        let trace = header
            + TP.event(1, ts: 0, track: thread, name: "a", category: "c", extra: PB.fixed64(47, 1))
            + TP.event(2, ts: 5, track: thread, name: "a", category: "c")
            + TP.event(3, ts: 6, track: thread, name: "b", extra: PB.fixed64(48, 1))  // terminates flow 1
            + TP.event(3, ts: 7, track: thread, name: "c", extra: PB.fixed64(47, 2))  // flow 2: one event only
            + TP.event(3, ts: 8, track: thread, name: "d", extra: PB.int(36, 3))
            + TP.event(3, ts: 9, track: thread, name: "e", extra: PB.int(36, 3))
            + TP.event(3, ts: 10, track: thread, name: "f", extra: PB.fixed64(48, 4))  // never begun
        let r = validate(trace)
        #expect(kinds(r) == [.flowUnconnected], "\(describe(r))")
        #expect(r.count(.flowUnconnected) == 2)
        #expect(r.flows == 4)
    }

    @Test func lateBeginsWithinTheWindowArePlacedRight() {
        // Spans written as they end (children first), as a profiler records them.
        var trace = header
        var spans: [Scenario.Span] = []
        for root in 0..<50 {
            let t = UInt64(root * 1000)
            for (b, e, n) in [(t + 10, t + 20, "leaf"), (t + 30, t + 60, "leaf2"), (t + 5, t + 70, "mid"), (t, t + 900, "root")] {
                trace += TP.slice(thread, b, e, n)
                spans.append(.init(begin: b, end: e, name: n, target: "c", filename: "", line: 0))
            }
        }
        let r = validate(trace)
        #expect(r.isClean, "\(describe(r))")
        #expect(r.outOfOrderEvents == 0)
        // Crossing spans in that order are reported as a simple model over the sorted events says.
        let crossing = header + TP.slice(thread, 50, 150, "b") + TP.slice(thread, 0, 100, "a")
        let c = validate(crossing)
        #expect(c.outOfOrderEvents == 0)
        #expect(c.wrongDurationSlices == 1 && c.misplacedEndEvents == 1, "\(describe(c))")
    }

    @Test func beginsLaterThanTheWindowAreCounted() {
        var trace = header
        for i in 0..<(SliceTrackModel.window + 10) { trace += TP.slice(thread, UInt64(100 + 10 * i), UInt64(105 + 10 * i), "a") }
        trace += TP.slice(thread, 0, 50, "late")
        let r = validate(trace)
        #expect(r.outOfOrderEvents > 0)
    }

    @Test func heldEventLimitStopsTheLagAndKeepsResults() {
        // Many short tracks: each holds its events until it has `window` begins.
        var trace = header
        for t in 0..<200 { trace += TP.namedTrack(UInt64(1000 + t), name: "lane", parent: process) }
        for i in 0..<20 {
            for t in 0..<200 {
                let b = UInt64(i * 100 + t % 7)
                trace += TP.slice(UInt64(1000 + t), b, b + UInt64(10 + (t * 13) % 150), "s\(t % 3)")
            }
        }
        let unlimited = validate(trace)
        let limited = trace.withUnsafeBytes { (b) -> ValidationReport in
            let v = TraceValidator(heldEventLimit: 100)
            try? v.feed(b)
            return v.finish()
        }
        #expect(limited.problemCounts == unlimited.problemCounts)
        #expect(limited.wrongDurationSlices > 0)
        #expect(limited.outOfOrderEvents == 0)
    }

    @Test func feedAfterFinishIsAnError() {
        let v = TraceValidator()
        _ = v.finish()
        #expect(throws: PerfettoError.callOrder("feed after finish")) { try v.feed([0x0A, 0x00]) }
    }
}

@Suite struct SliceMapTests {
    /// Random sets and removals agree with a Dictionary (clusters, wrap-around, growth).
    @Test func agreesWithDictionary() {
        var rng = SplitMix64(seed: 15)
        var map = SliceMap<Int64>()
        var reference: [Int64: Int64] = [:]
        for step in 0..<200_000 {
            let key = Int64(rng.next() % 5000)
            if rng.next() % 3 == 0 {
                #expect(map.remove(key) == reference.removeValue(forKey: key), "step \(step)")
            } else {
                map.set(key, Int64(step))
                reference[key] = Int64(step)
            }
            #expect(map.count == reference.count)
        }
        #expect(Dictionary(uniqueKeysWithValues: map.entries) == reference)
    }
}
