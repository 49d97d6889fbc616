#if canImport(Glibc)
import Glibc
#endif
import CArrowABI
import PerfettoCore

/// `pmm-bench generator-digests`: the sha256 of the generator's trace for the bench's
/// async workload in every async layout and option set, with events as generated, time-
/// ordered, reversed and shuffled, sequential and scattered span ids, the whole range
/// and a narrow one (open and begun-before spans). Comparing the lines of two builds
/// shows whether a change to the async path changed any byte.
enum GeneratorDigests {
    enum EventOrder: String, CaseIterable { case generated, timeOrdered = "time", reversed, shuffled }

    struct Variant {
        var layout: AsyncLayout
        var options: AsyncOptions
        var order: EventOrder
        var scatteredIds: Bool
        var narrow: Bool
        var threadSpans: Bool

        var label: String {
            let opts = layout.isLanes ? " args=\(options.spanArgs ? 1 : 0) flows=\(options.flows ? 1 : 0)" : ""
            return "\(layout.rawValue)\(opts) order=\(order.rawValue) ids=\(scatteredIds ? "scattered" : "sequential")"
                + " range=\(narrow ? "narrow" : "full")\(threadSpans ? " +thread" : "")"
        }
    }

    static func variants() -> [Variant] {
        var all: [Variant] = []
        let optionSets = [AsyncOptions(), AsyncOptions(spanArgs: false, flows: false),
                          AsyncOptions(spanArgs: true, flows: false), AsyncOptions(spanArgs: false, flows: true)]
        for layout in AsyncLayout.allCases {
            let sets = layout.isLanes ? (layout == .lanes ? optionSets : Array(optionSets.prefix(2))) : [AsyncOptions()]
            for options in sets {
                for order in EventOrder.allCases {
                    for narrow in [false, true] {
                        all.append(Variant(layout: layout, options: options, order: order, scatteredIds: false,
                                           narrow: narrow, threadSpans: false))
                    }
                }
                all.append(Variant(layout: layout, options: options, order: .shuffled, scatteredIds: true, narrow: true,
                                   threadSpans: false))
            }
            all.append(Variant(layout: layout, options: AsyncOptions(), order: .generated, scatteredIds: false,
                               narrow: false, threadSpans: true))
        }
        return all
    }

    /// A span id scattered over 64 bits (a bijection, so ids stay unique; some negative, one is 0).
    static func scattered(_ id: Int64) -> Int64 {
        Int64(bitPattern: (UInt64(bitPattern: id) &- 7) &* 0x9E37_79B9_7F4A_7C15)
    }

    static func run() {
        var workload = BenchWorkload(scale: 1)
        let d = GeneratorBench.Dictionaries(names: BenchDictionary(workload.names),
                                            targets: BenchDictionary(workload.targets),
                                            files: BenchDictionary(workload.files))
        let threads = (0..<BenchWorkload.threadCount).map {
            ThreadInfo(streamId: BenchWorkload.streamId($0), threadId: Int32(1000 + $0), name: "bench-thread-\($0)")
        }
        var threadSpans: [[BenchWorkload.Span]] = []
        for k in 0..<threads.count {
            var spans: [BenchWorkload.Span] = []
            workload.threadSpans(k, batchSize: 1 << 20) { spans += $0 }
            threadSpans.append(spans)
        }
        let spans = GeneratorBench.asyncSpans(&workload)
        // Begin events on three of the threads and on a stream that is not a thread.
        let streams = BenchDictionary([0, 1, 2].map { Array(BenchWorkload.streamId($0).utf8) } + [Array("stream-x".utf8)])
        let first = spans.map(\.begin).min() ?? 0, last = spans.map(\.end).max() ?? 0
        for v in variants() {
            var events: [GeneratorBench.Event] = []
            events.reserveCapacity(spans.count * 2)
            for (i, s) in spans.enumerated() {
                events.append((s.begin, 0, Int64(i + 1), i))
                events.append((s.end, 1, Int64(i + 1), i))
            }
            switch v.order {
            case .generated: break
            case .timeOrdered: events.sort { ($0.time, $0.type, $0.id) < ($1.time, $1.type, $1.id) }
            case .reversed: events.reverse()
            case .shuffled:
                var rng = BenchWorkload(scale: 0)
                rng.state = 99
                for k in stride(from: events.count - 1, to: 0, by: -1) {
                    events.swapAt(k, Int(rng.below(UInt64(k + 1))))
                }
            }
            let scatter = v.scatteredIds
            func id(_ x: Int64) -> Int64 { scatter ? scattered(x) : x }
            func streamOf(_ e: GeneratorBench.Event) -> Int32 { Int32(truncatingIfNeeded: (e.span + Int(e.type)) % 4) }
            var stream = GeneratorBench.asyncStream(spans, d, events: events, streams: streams, streamOf: streamOf, id: id)
            let rangeBegin = v.narrow ? first + (last - first) / 4 : 0
            let rangeEnd = v.narrow ? first + (last - first) * 3 / 4 : .max
            let output: [UInt8]
            do {
                let writer = try TraceWriter(processId: BenchWorkload.processId, sink: .memory(initialCapacity: 64 << 20))
                let generator = try TraceGenerator(writer: writer, exe: BenchWorkload.exe, threads: threads,
                                                   spanTypes: v.threadSpans ? .both : .async, rangeBegin: rangeBegin,
                                                   rangeEnd: rangeEnd, layout: v.layout, options: v.options)
                if v.threadSpans {
                    for k in 0..<threads.count {
                        var s = GeneratorBench.threadStream(threadSpans[k], workload, d)
                        try generator.addThreadSpans(streamId: threads[k].streamId, stream: &s)
                    }
                }
                try generator.addAsyncEvents(stream: &stream)
                _ = try generator.finish()
                output = try writer.takeBytes()
            } catch { fail("\(v.label): \(error)") }
            var sha = SHA256()
            output.withUnsafeBytes { sha.update($0) }
            print("\(sha.hexDigest()) \(output.count) \(v.label)")
        }
    }
}
