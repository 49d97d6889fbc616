import ArrowTestSupport
import Testing
@testable import PerfettoCore

/// The async path's result does not depend on the order events arrive in: time-ordered
/// (the usual case, already in write order), reversed and shuffled events give the
/// same bytes, with sequential or arbitrary 64-bit span ids (0 and negatives included).
struct AsyncOrderTests {
    /// 12,000 overlapping spans (more than one storage chunk, several index growths),
    /// 30% children, many equal begins, some open at the end or begun before the range.
    static func events(seed: UInt64, sequentialIds: Bool) -> [AsyncEvent] {
        var rng = SplitMix64(seed: seed)
        var spans: [(id: Int64, parent: Int64, depth: UInt32, begin: Int64, end: Int64)] = []
        var used: Set<Int64> = []
        var t: Int64 = 500
        for i in 1...12_000 {
            t += Int64(rng.below(4)) * 100  // a quarter of the spans begin with the previous one
            var id = Int64(i)
            if !sequentialIds {
                repeat { id = i == 1 ? 0 : Int64(bitPattern: rng.next()) } while used.contains(id)
            }
            used.insert(id)
            var parent: Int64 = 0, depth: UInt32 = 0, end = t + 1 + Int64(rng.below(20_000))
            if rng.below(10) < 3, let p = spans.suffix(40).randomElement(using: &rng), p.end > t {
                parent = p.id
                depth = p.depth + 1
                end = rng.below(4) == 0 ? p.end + 100 : t + Int64(rng.below(UInt64(p.end - t) + 1))
            }
            if rng.below(30) == 0 { end = t }
            spans.append((id, parent, depth, t, end))
        }
        var events: [AsyncEvent] = []
        for s in spans {
            let name = "span-\(s.id)", line = UInt32(s.id & 63)
            events.append(AsyncEvent(time: s.begin, isBegin: true, spanId: s.id, parentSpanId: s.parent, depth: s.depth,
                                     name: name, line: line))
            events.append(AsyncEvent(time: s.end, isBegin: false, spanId: s.id, parentSpanId: s.parent, depth: s.depth,
                                     name: name, line: line))
        }
        return events
    }

    @Test(arguments: [(21, true), (22, false)] as [(UInt64, Bool)])
    func eventOrderDoesNotChangeTheTrace(seed: UInt64, sequentialIds: Bool) throws {
        var events = Self.events(seed: seed, sequentialIds: sequentialIds)
        events.sort { $0.time < $1.time }  // stable: time order, as a query returns them
        var shuffled = events
        var rng = SplitMix64(seed: seed + 100)
        shuffled.shuffle(using: &rng)
        for layout in AsyncLayout.allCases {
            // The range cuts the first and last spans: begun before the range, open at its end.
            let range: ClosedRange<Int64> = 2_000...(events[events.count - 1].time - 5_000)
            var traces: [[UInt8]] = []
            var allStats: [GenerationStats] = []
            for order in [events, Array(events.reversed()), shuffled] {
                let (writer, stats) = try generate(processId: "p", exe: "e", threads: [],
                                                   asyncBatches: asyncEventBatches(order, batchSize: 3000),
                                                   spanTypes: .async, range: range, layout: layout)
                traces.append(try writer.takeBytes())
                allStats.append(stats)
            }
            let reversedSame = traces[1] == traces[0], shuffledSame = traces[2] == traces[0]
            #expect(reversedSame, "reversed events give other bytes (\(layout))")
            #expect(shuffledSame, "shuffled events give other bytes (\(layout))")
            #expect(allStats[1] == allStats[0] && allStats[2] == allStats[0])
            #expect(allStats[0].matcher.begunBeforeRange > 0 && allStats[0].matcher.openAtEnd > 0)
            if layout == .lanes {
                let slices = try rebuildSlices(try decodeEvents(traces[0]).events)
                #expect(slices.count == allStats[0].asyncSpans)
                #expect(partialOverlaps(slices) == 0)
                #expect(allStats[0].asyncTracks > 10)
            }
        }
    }
}
