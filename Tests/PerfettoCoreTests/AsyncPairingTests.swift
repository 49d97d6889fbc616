import ArrowTestSupport
import Testing
@testable import PerfettoCore

/// The pairing rules of docs/async-spans.md, checked on the written trace.
struct AsyncPairingTests {
    struct Expected: Hashable { var name: String; var begin: UInt64; var end: UInt64 }

    /// Range [100, 1000]; each span exercises one rule. Events are shuffled.
    static let events: [AsyncEvent] = [
        AsyncEvent(time: 200, isBegin: true, spanId: 1, name: "complete"),
        AsyncEvent(streamId: "other", time: 300, isBegin: false, spanId: 1, name: "complete"),
        AsyncEvent(time: 400, isBegin: true, spanId: 2, name: "open"),
        AsyncEvent(time: 500, isBegin: false, spanId: 3, name: "begun-before"),
        AsyncEvent(time: 600, isBegin: true, spanId: 4, name: "backwards"),
        AsyncEvent(time: 550, isBegin: false, spanId: 4, name: "backwards"),
        AsyncEvent(time: 700, isBegin: true, spanId: 5, name: "zero"),
        AsyncEvent(time: 700, isBegin: false, spanId: 5, name: "zero"),
        AsyncEvent(time: 250, isBegin: true, spanId: 6, name: "late-duplicate"),
        AsyncEvent(time: 220, isBegin: true, spanId: 6, name: "earliest"),
        AsyncEvent(time: 900, isBegin: false, spanId: 6, name: "end-name-ignored"),
        AsyncEvent(time: 800, isBegin: false, spanId: 6, name: "end-name-ignored"),
        AsyncEvent(time: 350, isBegin: false, spanId: 7, name: "from-end-event"),
        AsyncEvent(time: 50, isBegin: true, spanId: 8, name: "begin-outside-range"),
        AsyncEvent(time: 120, isBegin: false, spanId: 8, name: "begin-outside-range"),
        AsyncEvent(time: 100, isBegin: true, spanId: 9, name: "range-edges"),
        AsyncEvent(time: 1000, isBegin: false, spanId: 9, name: "range-edges"),
        AsyncEvent(time: 1001, isBegin: true, spanId: 10, name: "after-range"),
    ]

    /// The placing worker reads a record's parent id from its first 8 bytes while the
    /// calling thread writes its times: the halves must be where it reads them.
    @Test func parentIdIsReadFromItsOwnBytes() {
        #expect(AsyncRecord.parentIdOffsets == [0, 4])
        let records = AsyncRecords()
        for id: Int64 in [-1, 0, 1, .min, .max, 0x1234_5678_9ABC_DEF0] {
            let r = try? records.append(id)
            r?.pointee.parentSpanId = id &* 3
            #expect(r.map { AsyncRecord.parentSpanId(at: $0) } == id &* 3)
        }
    }

    func run(_ layout: AsyncLayout, seed: UInt64) throws -> (Set<Expected>, [RebuiltSlice], GenerationStats) {
        var events = Self.events
        var rng = SplitMix64(seed: seed)
        events.shuffle(using: &rng)
        let (writer, stats) = try generate(processId: "p", exe: "e", threads: [], asyncBatches: asyncEventBatches(events, batchSize: 5),
                                           spanTypes: .async, range: 100...1000, layout: layout)
        let slices = try rebuildSlices(try decodeEvents(try writer.takeBytes()).events)
        return (Set(slices.map { Expected(name: $0.name, begin: $0.begin, end: $0.end) }), slices, stats)
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func lanesLayoutAppliesEveryRule(seed: UInt64) throws {
        let (spans, slices, stats) = try run(.lanes, seed: seed)
        #expect(spans == [
            Expected(name: "complete", begin: 200, end: 300),
            Expected(name: "open", begin: 400, end: 1000),
            Expected(name: "begun-before", begin: 100, end: 500),
            Expected(name: "zero", begin: 700, end: 700),
            Expected(name: "earliest", begin: 220, end: 800),
            Expected(name: "from-end-event", begin: 100, end: 350),
            Expected(name: "begin-outside-range", begin: 100, end: 120),
            Expected(name: "range-edges", begin: 100, end: 1000),
        ])
        #expect(slices.count == 8)
        #expect(partialOverlaps(slices) == 0)
        var counts = AsyncMatcher.Counts()
        counts.events = 16
        counts.eventsOutsideRange = 2
        counts.complete = 4  // 1, 5, 6, 9
        counts.openAtEnd = 1  // 2
        counts.begunBeforeRange = 3  // 3, 7, 8
        counts.duplicates = 2  // 6: a second begin, a second end
        counts.dropped = 1  // 4
        #expect(stats.matcher == counts)
        #expect(stats.asyncSpans == 8)
    }

    @Test func micromegasLayoutKeepsOnlyCompleteSpansWithDuration() throws {
        var events = Self.events
        var rng = SplitMix64(seed: 9)
        events.shuffle(using: &rng)
        let (writer, stats) = try generate(processId: "p", exe: "e", threads: [], asyncBatches: asyncEventBatches(events),
                                           spanTypes: .async, range: 100...1000, layout: .micromegas)
        let decoded = try decodeEvents(try writer.takeBytes()).events
        // Written by begin time, each span as its begin then its end packet, on one track.
        #expect(decoded.map { "\($0.type == 1 ? "B" : "E") \($0.name) \($0.timestamp)" } == [
            "B range-edges 100", "E range-edges 1000", "B complete 200", "E complete 300",
            "B earliest 220", "E earliest 800",
        ])
        #expect(Set(decoded.map(\.track)) == [writer.asyncTrackUUID])
        #expect(stats.asyncSpans == 3)
        #expect(stats.matcher.complete == 4)
        // Why `lanes` is the default: on one track, Perfetto closes the innermost open
        // slice, so the partially overlapping `complete` and `earliest` come out wrong.
        let rebuilt = Set(try rebuildSlices(decoded).map { Expected(name: $0.name, begin: $0.begin, end: $0.end) })
        #expect(rebuilt.contains(Expected(name: "earliest", begin: 220, end: 300)))
    }

    @Test func matcherCountsDirectly() {
        var matcher = AsyncMatcher(rangeBegin: 0, rangeEnd: 10)
        let a = AsyncMatcher.Attributes(parentSpanId: 0, depth: 0, name: 1, target: 1, filename: 1, line: 0)
        matcher.add(isBegin: false, time: 5, spanId: -3, attributes: a)
        matcher.add(isBegin: true, time: 2, spanId: -3, attributes: a)
        matcher.add(isBegin: true, time: 11, spanId: 4, attributes: a)
        let (spans, counts) = matcher.resolve()
        #expect(spans.map { [$0.begin, $0.end] } == [[2, 5]])
        #expect(counts.complete == 1 && counts.eventsOutsideRange == 1 && counts.events == 2)
    }
}

/// The `lanes` layout: nesting on the parent's lane, new lanes only when needed, and
/// exact recovery of every span under Perfetto's begin/end pairing.
struct LaneLayoutTests {
    @Test func childNestsOnItsParentsLaneAndOutlivingChildMoves() throws {
        let events: [AsyncEvent] = [
            (1, 0, 100, 500, "parent"), (2, 1, 150, 300, "child"), (3, 1, 400, 700, "outliving-child"),
            (4, 0, 120, 200, "unrelated"),
        ].flatMap { id, parent, b, e, name in
            [AsyncEvent(time: b, isBegin: true, spanId: id, parentSpanId: parent, depth: parent == 0 ? 0 : 1, name: name),
             AsyncEvent(time: e, isBegin: false, spanId: id, parentSpanId: parent, depth: parent == 0 ? 0 : 1, name: name)]
        }
        let (writer, stats) = try generate(processId: "p", exe: "e", threads: [], asyncBatches: asyncEventBatches(events),
                                           spanTypes: .async)
        let (packets, decoded) = try decodeEvents(try writer.takeBytes())
        let track = Dictionary(uniqueKeysWithValues: try rebuildSlices(decoded).map { ($0.name, $0.track) })
        #expect(track["parent"] == writer.asyncTrackUUID)
        #expect(track["child"] == track["parent"])
        #expect(track["unrelated"] != track["parent"])
        #expect(track["outliving-child"] == track["unrelated"])  // lane 1 is free again at 400
        #expect(stats.asyncTracks == 2)
        let lanes = packets.compactMap(\.descriptor).filter { $0.name == "Async Operations" }
        #expect(lanes.map(\.uuid) == [writer.asyncTrackUUID, TraceGenerator.laneTrackUUID(1, writer)])
        #expect(lanes.allSatisfy { $0.parent == writer.processTrackUUID })
    }

    /// Thousands of heavily overlapping spans, 30% children (some outliving their
    /// parent), some open at the end or begun before the range.
    @Test(arguments: [11, 12, 13, 14] as [UInt64])
    func randomOverlappingSpansAreRecoveredExactly(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let rangeBegin: Int64 = 1_000, rangeEnd: Int64 = 2_000_000
        var spans: [(id: Int64, parent: Int64, depth: UInt32, begin: Int64, end: Int64)] = []
        var t: Int64 = rangeBegin - 500
        for i in 1...4000 {
            t += Int64(rng.below(600))
            var parent: Int64 = 0, depth: UInt32 = 0
            var begin = t, end = t + 1 + Int64(rng.below(40_000))
            if rng.below(10) < 3, let p = spans.suffix(50).randomElement(using: &rng), p.end > t {
                parent = p.id
                depth = p.depth + 1
                begin = max(t, p.begin)
                end = rng.below(4) == 0 ? p.end + Int64(rng.below(5000)) : begin + Int64(rng.below(UInt64(p.end - begin) + 1))
            }
            if rng.below(50) == 0 { end = begin }
            spans.append((Int64(i), parent, depth, begin, end))
        }
        var events: [AsyncEvent] = []
        var expected: [AsyncPairingTests.Expected] = []
        for s in spans {
            let name = "span-\(s.id)"
            let hasBegin = s.begin >= rangeBegin, hasEnd = s.end <= rangeEnd && rng.below(100) != 0
            if hasBegin {
                events.append(AsyncEvent(time: s.begin, isBegin: true, spanId: s.id, parentSpanId: s.parent, depth: s.depth, name: name))
            }
            if hasEnd {
                events.append(AsyncEvent(time: s.end, isBegin: false, spanId: s.id, parentSpanId: s.parent, depth: s.depth, name: name))
            }
            guard hasBegin || hasEnd else { continue }
            expected.append(.init(name: name, begin: UInt64(hasBegin ? s.begin : rangeBegin), end: UInt64(hasEnd ? s.end : rangeEnd)))
        }
        events.shuffle(using: &rng)
        let (writer, stats) = try generate(processId: "p", exe: "e", threads: [], asyncBatches: asyncEventBatches(events, batchSize: 1000),
                                           spanTypes: .async, range: rangeBegin...rangeEnd)
        let (packets, decoded) = try decodeEvents(try writer.takeBytes())
        let slices = try rebuildSlices(decoded)
        #expect(slices.map { AsyncPairingTests.Expected(name: $0.name, begin: $0.begin, end: $0.end) }.sorted { $0.name < $1.name }
                == expected.sorted { $0.name < $1.name })
        #expect(partialOverlaps(slices) == 0)

        // Lanes never outnumber the spans open at one instant (closed intervals).
        let points = expected.flatMap { [($0.begin, 0), ($0.end, 1)] }.sorted { $0 < $1 }
        var open = 0, peak = 0
        for (_, kind) in points {
            open += kind == 0 ? 1 : -1
            peak = max(peak, open)
        }
        let laneDescriptors = packets.compactMap(\.descriptor).filter { $0.name == "Async Operations" }
        #expect(laneDescriptors.count == stats.asyncTracks)
        #expect(stats.asyncTracks <= peak)
        #expect(stats.asyncTracks > 1)
        #expect(Set(slices.map(\.track)).isSubset(of: Set(laneDescriptors.map(\.uuid))))
        // Each lane is described before its first slice.
        var described: Set<UInt64> = []
        for packet in packets {
            if let d = packet.descriptor { described.insert(d.uuid) }
            if let e = packet.event { #expect(described.contains(e.track)) }
        }
        // Children that fit go on their parent's lane.
        let trackOf = Dictionary(uniqueKeysWithValues: slices.map { ($0.name, $0.track) })
        let nested = spans.filter { s in
            guard s.parent != 0, let p = spans.first(where: { $0.id == s.parent }) else { return false }
            return s.end <= p.end && s.begin >= rangeBegin && p.begin >= rangeBegin && trackOf["span-\(s.id)"] == trackOf["span-\(p.id)"]
        }
        #expect(nested.count > 100)
    }
}
