#if canImport(Glibc)
import Glibc
#endif
import CArrowABI
import BenchReference
import PerfettoCore

/// The generator benchmark: the writer workload's thread spans (8 threads x 125,000,
/// or 32 threads with --threads-scale 4) and 200,000 async spans, heavily overlapping,
/// 30% of them children of an open span, as Arrow batches of 8,192 rows with
/// dictionary strings. Batches are built before each timed call.
enum GeneratorBench {
    static let batchRows = 8192
    static let threadColumns: [(String, String, String?)] = [
        ("begin", "tsn:UTC", nil), ("end", "tsn:UTC", nil), ("name", "i", "u"), ("target", "i", "u"),
        ("filename", "i", "u"), ("line", "I", nil),
    ]
    static let asyncColumns: [(String, String, String?)] = [
        ("stream_id", "i", "u"), ("time", "tsn:UTC", nil), ("event_type", "i", "u"), ("span_id", "l", nil),
        ("parent_span_id", "l", nil), ("depth", "I", nil), ("name", "i", "u"), ("filename", "i", "u"),
        ("target", "i", "u"), ("line", "I", nil),
    ]

    struct Dictionaries {
        let names, targets, files: BenchDictionary
        let streams = BenchDictionary([Array("stream-a".utf8), Array("stream-b".utf8)])
        let eventTypes = BenchDictionary([Array("begin".utf8), Array("end".utf8)])
    }

    static func threadStream(_ spans: [BenchWorkload.Span], _ workload: BenchWorkload, _ d: Dictionaries) -> ArrowArrayStream {
        var batches: [ArrowArray] = []
        for start in stride(from: 0, to: spans.count, by: batchRows) {
            let part = spans[start..<min(start + batchRows, spans.count)]
            let columns = [
                BenchColumn(name: "begin", format: "tsn:UTC", values: columnBuffer(part.map { Int64($0.begin) })),
                BenchColumn(name: "end", format: "tsn:UTC", values: columnBuffer(part.map { Int64($0.end) })),
                BenchColumn(name: "name", format: "i", values: columnBuffer(part.map { Int32($0.name) }), dictionary: d.names),
                BenchColumn(name: "target", format: "i", values: columnBuffer(part.map { Int32($0.target) }), dictionary: d.targets),
                BenchColumn(name: "filename", format: "i",
                            values: columnBuffer(part.map { Int32(workload.locations[Int($0.location)].file) }), dictionary: d.files),
                BenchColumn(name: "line", format: "I", values: columnBuffer(part.map { workload.locations[Int($0.location)].line })),
            ]
            batches.append(benchBatch(length: part.count, columns))
        }
        return BenchStream(columns: threadColumns, batches: batches).export()
    }

    struct AsyncSpan {
        var begin: Int64, end: Int64, parent: Int64, depth: UInt32
        var name: Int32, target: Int32, file: Int32, line: UInt32
    }

    /// 200,000 async spans from the workload's async generator; 30% become children of a
    /// recent span still open at their begin (drawn from a second SplitMix64 stream).
    static func asyncSpans(_ workload: inout BenchWorkload) -> [AsyncSpan] {
        var spans: [AsyncSpan] = []
        var rng = BenchWorkload(scale: 0)
        rng.state = 7
        let locations = workload.locations
        workload.asyncSpans(batchSize: 1 << 20) { batch in
            for s in batch {
                var span = AsyncSpan(begin: Int64(s.begin), end: Int64(s.end), parent: 0, depth: 0, name: Int32(s.name),
                                     target: Int32(s.target), file: Int32(locations[Int(s.location)].file),
                                     line: locations[Int(s.location)].line)
                if rng.below(10) < 3, !spans.isEmpty {
                    let p = spans.count - 1 - Int(rng.below(UInt64(min(spans.count, 64))))
                    if spans[p].end > span.begin {
                        span.parent = Int64(p + 1)
                        span.depth = spans[p].depth + 1
                        if rng.below(4) != 0 { span.end = min(span.end, spans[p].end) }  // a quarter outlive their parent
                    }
                }
                spans.append(span)
            }
        }
        return spans
    }

    /// An async event: type 0 begin, 1 end; span: index in the spans.
    typealias Event = (time: Int64, type: Int32, id: Int64, span: Int)

    /// Begin and end events, in an order that is not globally sorted by time.
    static func asyncStream(_ spans: [AsyncSpan], _ d: Dictionaries) -> ArrowArrayStream {
        var events: [Event] = []
        events.reserveCapacity(spans.count * 2)
        for (i, s) in spans.enumerated() {
            events.append((s.begin, 0, Int64(i + 1), i))
            events.append((s.end, 1, Int64(i + 1), i))
        }
        return asyncStream(spans, d, events: events, streams: d.streams, streamOf: { $0.type }, id: { $0 })
    }

    /// `events` in that order; `streamOf` gives an event's index in `streams`, `id` maps
    /// the workload's span ids (1, 2, ...; parent 0: none) to those written.
    static func asyncStream(_ spans: [AsyncSpan], _ d: Dictionaries,
                            events: [Event], streams: BenchDictionary, streamOf: (Event) -> Int32,
                            id: (Int64) -> Int64) -> ArrowArrayStream {
        var batches: [ArrowArray] = []
        for start in stride(from: 0, to: events.count, by: batchRows) {
            let part = events[start..<min(start + batchRows, events.count)]
            func col<T>(_ name: String, _ format: String, _ values: [T], _ dictionary: BenchDictionary? = nil) -> BenchColumn {
                BenchColumn(name: name, format: format, values: columnBuffer(values), dictionary: dictionary)
            }
            batches.append(benchBatch(length: part.count, [
                col("stream_id", "i", part.map(streamOf), streams),
                col("time", "tsn:UTC", part.map(\.time)),
                col("event_type", "i", part.map(\.type), d.eventTypes),
                col("span_id", "l", part.map { id($0.id) }),
                col("parent_span_id", "l", part.map { spans[$0.span].parent == 0 ? 0 : id(spans[$0.span].parent) }),
                col("depth", "I", part.map { spans[$0.span].depth }),
                col("name", "i", part.map { spans[$0.span].name }, d.names),
                col("filename", "i", part.map { spans[$0.span].file }, d.files),
                col("target", "i", part.map { spans[$0.span].target }, d.targets),
                col("line", "I", part.map { spans[$0.span].line }),
            ]))
        }
        return BenchStream(columns: asyncColumns, batches: batches).export()
    }

    /// What a run measured, for same-run comparisons.
    struct Result {
        var threadSpansPerSecond: Double
        var asyncSpansPerSecond: Double
        var asyncBytesPerSpan: Double
    }

    /// `label` names a memory run with the given async options (args and flows on or off);
    /// `twoThreads` false: the async phase on the calling thread alone (no decoding or
    /// placing worker); `quiet`: no lines.
    @discardableResult
    static func run(toFile path: String?, threadsScale: Int, options: AsyncOptions = AsyncOptions(),
                    label: String? = nil, twoThreads: Bool = true, quiet: Bool = false) -> Result {
        let threadCount = BenchWorkload.threadCount * threadsScale
        var workload = BenchWorkload(scale: 1)
        let d = Dictionaries(names: BenchDictionary(workload.names), targets: BenchDictionary(workload.targets),
                             files: BenchDictionary(workload.files))
        let threads = (0..<threadCount).map {
            ThreadInfo(streamId: BenchWorkload.streamId($0), threadId: Int32(1000 + $0), name: "bench-thread-\($0)")
        }
        let fd = path.map { open($0, O_WRONLY | O_CREAT | O_TRUNC, 0o644) } ?? -1
        let timer = Timed(), threadTimer = Timed(), asyncTimer = Timed()
        let writer: TraceWriter
        let generator: TraceGenerator
        do {
            writer = try TraceWriter(processId: BenchWorkload.processId,
                                     sink: fd >= 0 ? .fileDescriptor(fd) : .memory(initialCapacity: 120 << 20))
            let start = now()
            generator = try TraceGenerator(writer: writer, exe: BenchWorkload.exe, threads: threads, spanTypes: .both,
                                           rangeBegin: 0, rangeEnd: .max, layout: .lanes, options: options)
            if !twoThreads {
                generator.twoThreadMinimumSpans = .max
                generator.decodeAheadMinimumRows = .max
            }
            timer.seconds += now() - start
        } catch { fail("\(error)") }
        var threadSpans = 0
        for k in 0..<threadCount {
            var spans: [BenchWorkload.Span] = []
            workload.threadSpans(k, batchSize: 1 << 20) { spans += $0 }
            threadSpans += spans.count
            var stream = threadStream(spans, workload, d)
            spans = []
            threadTimer.measure { () throws(PerfettoError) in
                try generator.addThreadSpans(streamId: threads[k].streamId, stream: &stream)
            }
        }
        // Heap in use before the async input exists and after it is consumed (the stream
        // releases every batch): the difference is what the generator holds until finish.
        let heapBefore = heapBytesInUse()
        var async = asyncSpans(&workload)
        var stream = asyncStream(async, d)
        async = []
        var stats = GenerationStats()
        var heldBytes = 0
        let bytesBeforeAsync = writer.bufferedByteCount
        PerfControl.enable()
        let usageBefore = ProcessUsage()
        var readSeconds = 0.0
        asyncTimer.measure { () throws(PerfettoError) in
            let readStart = now()
            try generator.addAsyncEvents(stream: &stream)
            readSeconds = now() - readStart
            heldBytes = heapBytesInUse() - heapBefore
            stats = try generator.finish()
        }
        PerfControl.disable()
        let asyncUsage = ProcessUsage() - usageBefore
        let asyncBytes = writer.bufferedByteCount - bytesBeforeAsync
        if fd >= 0 { close(fd) }
        let result = Result(threadSpansPerSecond: Double(stats.threadSpans) / threadTimer.seconds,
                            asyncSpansPerSecond: Double(stats.asyncSpans) / asyncTimer.seconds,
                            asyncBytesPerSpan: Double(asyncBytes) / Double(Swift.max(stats.asyncSpans, 1)))
        if quiet { return result }
        if let label {
            bench("generator_\(label)_async_spans_per_s", result.asyncSpansPerSecond, "spans/s")
            bench("generator_\(label)_async_bytes_per_span", result.asyncBytesPerSpan, "bytes/span", decimals: 1)
            bench("generator_\(label)_thread_spans_per_s", result.threadSpansPerSecond, "spans/s")
            return result
        }
        let total = timer.seconds + threadTimer.seconds + asyncTimer.seconds
        let name = fd >= 0 ? "generator_file_\(threadsScale)x" : "generator_memory"
        bench("\(name)_thread_spans", Double(stats.threadSpans), "spans")
        bench("\(name)_async_spans", Double(stats.asyncSpans), "spans")
        bench("\(name)_async_lanes", Double(stats.asyncTracks), "tracks")
        bench("\(name)_thread_seconds", threadTimer.seconds, "s", decimals: 4)
        bench("\(name)_thread_spans_per_s", Double(stats.threadSpans) / threadTimer.seconds, "spans/s")
        bench("\(name)_async_seconds", asyncTimer.seconds, "s", decimals: 4)
        bench("\(name)_async_spans_per_s", Double(stats.asyncSpans) / asyncTimer.seconds, "spans/s")
        // Its two parts: reading and pairing the events (`add_async_events`), then `finish`.
        bench("\(name)_async_read_seconds", readSeconds, "s", decimals: 4)
        bench("\(name)_async_finish_seconds", asyncTimer.seconds - readSeconds, "s", decimals: 4)
        // The async phase's per-span rate over the thread phase's, same run (aim: >= 0.5).
        bench("\(name)_async_rate_ratio", (Double(stats.asyncSpans) / asyncTimer.seconds)
              / (Double(stats.threadSpans) / threadTimer.seconds), "x", decimals: 3)
        // CPU time of both threads, and pages first touched (minor faults), in the async phase.
        bench("\(name)_async_user_seconds", asyncUsage.userSeconds, "s", decimals: 4)
        bench("\(name)_async_system_seconds", asyncUsage.systemSeconds, "s", decimals: 4)
        bench("\(name)_async_minor_faults", Double(asyncUsage.minorFaults), "faults")
        bench("\(name)_async_held_bytes_per_span", Double(heldBytes) / Double(stats.asyncSpans), "bytes/span", decimals: 1)
        bench("\(name)_total_seconds", total, "s", decimals: 4)
        bench("\(name)_spans_per_s", Double(stats.threadSpans + stats.asyncSpans) / total, "spans/s")
        bench("\(name)_peak_rss_mb", peakRSSMegabytes(), "MB", decimals: 1)
        guard threadSpans == stats.threadSpans, stats.asyncSpans == 200_000 else {
            fail("expected \(threadSpans) thread spans and 200000 async spans, wrote \(stats.threadSpans) and \(stats.asyncSpans)")
        }
        if fd < 0 {
            // Same run: the minimal C encoder fed pre-resolved string ids, on the same 1M
            // thread spans. Ratio = its thread-span time / the generator's (>= 1: as fast).
            let reference = Reference.run(mode: BENCH_PRE_RESOLVED)
            bench("\(name)_reference_thread_seconds", reference.threadSeconds, "s", decimals: 4)
            bench("\(name)_thread_ratio", reference.threadSeconds / threadTimer.seconds, "x", decimals: 3)
        }
        return result
    }
}

/// With PMM_BENCH_PERF_CTL=FIFO (perf record --control fifo:FIFO -D -1), `perf` samples
/// only the async phase of the generator runs.
enum PerfControl {
    static let fd: Int32 = getenv("PMM_BENCH_PERF_CTL").map { open($0, O_WRONLY) } ?? -1

    static func enable() { send("enable\n") }
    static func disable() { send("disable\n") }

    private static func send(_ command: StaticString) {
        guard fd >= 0 else { return }
        _ = write(fd, command.utf8Start, command.utf8CodeUnitCount)
    }
}
