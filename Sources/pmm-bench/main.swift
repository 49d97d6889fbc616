#if canImport(Glibc)
import Glibc
#endif
import BenchReference
import PerfettoCore

// pmm-bench: the writer benchmark of docs/benchmarks.md.
//
//   pmm-bench memory            workload generated up front, written into a pre-sized buffer
//   pmm-bench file [--scale N]  workload streamed from the generator, written to a file
//
// Only writer calls are timed. Each figure is printed as `BENCH <name> <value> <unit>`.

let expectedSHA256 = "44999919c6674ff7e7cdcb24ccd8ca9b93b4856fd4e0dcb4edd1fb5e8b78eec7"
let expectedBytes = 92_502_895

/// The workload's strings, copied once into stable storage the writer reads from.
struct StringTable {
    let names: [UnsafeRawBufferPointer]
    let targets: [UnsafeRawBufferPointer]
    let files: [UnsafeRawBufferPointer]

    init(_ workload: BenchWorkload) {
        func stable(_ bytes: [UInt8]) -> UnsafeRawBufferPointer {
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            copy.copyBytes(from: bytes)
            return UnsafeRawBufferPointer(rebasing: copy[0..<bytes.count])
        }
        names = workload.names.map(stable)
        targets = workload.targets.map(stable)
        files = workload.files.map(stable)
    }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// The process's CPU time (all threads) and minor page faults so far.
struct ProcessUsage {
    var userSeconds: Double
    var systemSeconds: Double
    var minorFaults: Int

    init() {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        userSeconds = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        systemSeconds = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        minorFaults = usage.ru_minflt
    }

    private init(userSeconds: Double, systemSeconds: Double, minorFaults: Int) {
        self.userSeconds = userSeconds
        self.systemSeconds = systemSeconds
        self.minorFaults = minorFaults
    }

    static func - (a: ProcessUsage, b: ProcessUsage) -> ProcessUsage {
        ProcessUsage(userSeconds: a.userSeconds - b.userSeconds, systemSeconds: a.systemSeconds - b.systemSeconds,
                     minorFaults: a.minorFaults - b.minorFaults)
    }
}

/// Bytes the allocator has handed out and not yet had back (small blocks and mmapped ones).
func heapBytesInUse() -> Int { Int(bench_heap_bytes_in_use()) }

func bench(_ name: String, _ value: Double, _ unit: String, decimals: Int = 0) {
    let scale = decimals == 0 ? 1.0 : pow(10, Double(decimals))
    let rounded = (value * scale).rounded() / scale
    let text = decimals == 0 ? String(Int(rounded)) : String(rounded)
    print("BENCH \(name) \(text) \(unit)")
}

func fail(_ message: String) -> Never {
    let text = "pmm-bench: \(message)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

/// Times the writer calls of one batch of spans.
final class Timed {
    @exclusivity(unchecked) var seconds = 0.0
    @inline(__always) func measure(_ body: () throws(PerfettoError) -> Void) {
        let start = now()
        do { try body() } catch { fail("writer error: \(error)") }
        seconds += now() - start
    }
}

func writeHeader(_ writer: TraceWriter, _ timer: Timed) {
    timer.measure { () throws(PerfettoError) in
        try writer.emitProcessDescriptor(exe: BenchWorkload.exe)
        for k in 0..<BenchWorkload.threadCount {
            try writer.emitThreadDescriptor(streamId: BenchWorkload.streamId(k), threadId: Int32(1000 + k),
                                            threadName: "bench-thread-\(k)")
        }
        try writer.emitAsyncTrackDescriptor()
    }
}

@inline(__always)
func writeThreadSpans(_ writer: TraceWriter, _ spans: [BenchWorkload.Span], _ strings: StringTable,
                      _ locations: [BenchWorkload.Location]) throws(PerfettoError) {
    for s in spans {
        let location = locations[Int(s.location)]
        try writer.emitSpan(begin: s.begin, end: s.end, name: strings.names[Int(s.name)],
                            target: strings.targets[Int(s.target)], filename: strings.files[location.file],
                            line: location.line)
    }
}

@inline(__always)
func writeAsyncSpans(_ writer: TraceWriter, _ spans: [BenchWorkload.Span], _ strings: StringTable,
                     _ locations: [BenchWorkload.Location]) throws(PerfettoError) {
    for s in spans {
        let location = locations[Int(s.location)]
        let name = strings.names[Int(s.name)], target = strings.targets[Int(s.target)]
        let file = strings.files[location.file]
        try writer.emitAsyncSpanBegin(timestamp: s.begin, name: name, target: target, filename: file, line: location.line)
        try writer.emitAsyncSpanEnd(timestamp: s.end, name: name, target: target, filename: file, line: location.line)
    }
}

/// The workload generated up front, written into a pre-sized memory buffer.
func runMemory() {
    var workload = BenchWorkload(scale: 1)
    let strings = StringTable(workload)
    var threads: [[BenchWorkload.Span]] = []
    for k in 0..<BenchWorkload.threadCount {
        var all: [BenchWorkload.Span] = []
        workload.threadSpans(k, batchSize: 1 << 20) { all += $0 }
        threads.append(all)
    }
    var asyncSpans: [BenchWorkload.Span] = []
    workload.asyncSpans(batchSize: 1 << 20) { asyncSpans += $0 }
    let locations = workload.locations

    let timer = Timed()
    let writer: TraceWriter
    do { writer = try TraceWriter(processId: BenchWorkload.processId, sink: .memory(initialCapacity: 96 << 20)) } catch {
        fail("\(error)")
    }
    writeHeader(writer, timer)
    for k in 0..<BenchWorkload.threadCount {
        timer.measure { () throws(PerfettoError) in
            try writer.setCurrentThread(streamId: BenchWorkload.streamId(k))
            try writeThreadSpans(writer, threads[k], strings, locations)
        }
    }
    timer.measure { () throws(PerfettoError) in
        try writeAsyncSpans(writer, asyncSpans, strings, locations)
        try writer.flush()
    }
    let spanCount = threads.reduce(0) { $0 + $1.count }
    report("writer_memory", timer.seconds, spanCount: spanCount, packets: writer.packetCount,
           bytes: writer.bufferedByteCount)
    var sha = SHA256()
    let output: [UInt8]
    do { output = try writer.takeBytes() } catch { fail("\(error)") }
    output.withUnsafeBytes { sha.update($0) }
    check(sha.hexDigest(), bytes: output.count)
    // Same run: the minimal C encoder that hashes the strings of every call, as this
    // writer's callers hand them over. Ratio = its time / the writer's (>= 1: as fast).
    let reference = Reference.run(mode: BENCH_INTERN_PER_CALL)
    bench("writer_memory_reference_seconds", reference.seconds, "s", decimals: 4)
    bench("writer_memory_ratio", reference.seconds / timer.seconds, "x", decimals: 3)
}

/// The workload streamed from the generator, written to a file: memory stays flat.
func runFile(scale: Int, path: String) {
    var workload = BenchWorkload(scale: scale)
    let strings = StringTable(workload)
    let locations = workload.locations
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { fail("cannot create \(path)") }
    let timer = Timed()
    let writer: TraceWriter
    do { writer = try TraceWriter(processId: BenchWorkload.processId, sink: .fileDescriptor(fd)) } catch { fail("\(error)") }
    writeHeader(writer, timer)
    var spanCount = 0
    for k in 0..<BenchWorkload.threadCount {
        timer.measure { () throws(PerfettoError) in try writer.setCurrentThread(streamId: BenchWorkload.streamId(k)) }
        workload.threadSpans(k, batchSize: 8192) { batch in
            spanCount += batch.count
            timer.measure { () throws(PerfettoError) in try writeThreadSpans(writer, batch, strings, locations) }
        }
    }
    workload.asyncSpans(batchSize: 8192) { batch in
        timer.measure { () throws(PerfettoError) in try writeAsyncSpans(writer, batch, strings, locations) }
    }
    timer.measure { () throws(PerfettoError) in try writer.flush() }
    close(fd)
    let size = fileSize(path)
    report("writer_file_\(scale)x", timer.seconds, spanCount: spanCount, packets: writer.packetCount, bytes: size)
    if scale == 1 { check(sha256(ofFile: path), bytes: size) }
}

func report(_ name: String, _ seconds: Double, spanCount: Int, packets: Int, bytes: Int) {
    bench("\(name)_thread_spans", Double(spanCount), "spans")
    bench("\(name)_packets", Double(packets), "packets")
    bench("\(name)_seconds", seconds, "s", decimals: 4)
    bench("\(name)_thread_spans_per_s", Double(spanCount) / seconds, "spans/s")
    bench("\(name)_mb_per_s", Double(bytes) / 1e6 / seconds, "MB/s", decimals: 1)
    bench("\(name)_peak_rss_mb", peakRSSMegabytes(), "MB", decimals: 1)
}

func check(_ digest: String, bytes: Int) {
    guard digest == expectedSHA256, bytes == expectedBytes else {
        fail("output mismatch: \(bytes) bytes, sha256 \(digest); expected \(expectedBytes) bytes, sha256 \(expectedSHA256)")
    }
    print("output: \(bytes) bytes, sha256 \(digest) (matches micromegas' writer)")
}

func fileSize(_ path: String) -> Int {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : -1
}

func sha256(ofFile path: String) -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { fail("cannot read \(path)") }
    defer { close(fd) }
    var sha = SHA256()
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { chunk.deallocate() }
    while true {
        let n = read(fd, chunk.baseAddress, chunk.count)
        if n <= 0 { break }
        sha.update(UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
    }
    return sha.hexDigest()
}

/// Validates a trace file from its descriptor (streaming, 1 MiB reads): MB/s, the
/// process's peak RSS (which the validator alone determines in this mode), and the
/// same-run ratio to only reading the file in the same pieces.
func runValidate(path: String, name: String) {
    func timedRead() -> Double {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { fail("cannot read \(path)") }
        defer { close(fd) }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { chunk.deallocate() }
        let start = now()
        while read(fd, chunk.baseAddress, chunk.count) > 0 {}
        return now() - start
    }
    let readSeconds = timedRead()  // also warms the page cache for both
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { fail("cannot read \(path)") }
    defer { close(fd) }
    let start = now()
    let report: ValidationReport
    do { report = try TraceValidator.validate(fd: fd) } catch { fail("validation error: \(error)") }
    let seconds = now() - start
    let megabytes = Double(report.bytes) / 1e6
    print("validated \(path): \(report.bytes) bytes, \(report.packets) packets, \(report.slices) slices on "
          + "\(report.sliceTracks) tracks; \(report.wrongDurationSlices) shown with a wrong duration, "
          + "\(report.misplacedEndEvents) misplaced_end_event, \(report.problemCount) problems, max depth "
          + "\(report.maxDepth), \(report.outOfOrderEvents) out of order")
    bench("\(name)_seconds", seconds, "s", decimals: 3)
    bench("\(name)_mb_per_s", megabytes / seconds, "MB/s", decimals: 1)
    bench("\(name)_slices_per_s", Double(report.slices) / seconds, "slices/s")
    bench("\(name)_vs_read_ratio", seconds / max(readSeconds, 1e-9), "x", decimals: 1)
    bench("\(name)_peak_rss_mb", peakRSSMegabytes(), "MB", decimals: 1)
}

let arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String, _ fallback: Int) -> Int {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return fallback }
    guard let value = Int(arguments[i + 1]), value >= 1 else { fail("\(name) must be a positive integer") }
    return value
}
switch arguments.first {
case "generator-memory":
    GeneratorBench.run(toFile: nil, threadsScale: 1)
    // Same run: the async phase on one thread and on two (lane placement on a worker),
    // interleaved, best of 3 each.
    var one: [Double] = [], two: [Double] = []
    for _ in 0..<3 {
        one.append(GeneratorBench.run(toFile: nil, threadsScale: 1, twoThreads: false, quiet: true).asyncSpansPerSecond)
        two.append(GeneratorBench.run(toFile: nil, threadsScale: 1, quiet: true).asyncSpansPerSecond)
    }
    bench("generator_memory_async_one_thread_spans_per_s", one.max() ?? 0, "spans/s")
    bench("generator_memory_async_two_threads_over_one_ratio", (two.max() ?? 0) / (one.max() ?? 1), "x", decimals: 3)
case "generator-args-flows":
    // Same run: lanes with span args and flows (the default) and without.
    let on = GeneratorBench.run(toFile: nil, threadsScale: 1, label: "args_flows_on")
    let off = GeneratorBench.run(toFile: nil, threadsScale: 1, options: AsyncOptions(spanArgs: false, flows: false),
                                 label: "args_flows_off")
    bench("generator_args_flows_async_rate_on_over_off", on.asyncSpansPerSecond / off.asyncSpansPerSecond, "x",
          decimals: 3)
    bench("generator_args_flows_thread_rate_on_over_off", on.threadSpansPerSecond / off.threadSpansPerSecond, "x",
          decimals: 3)
    bench("generator_args_flows_extra_bytes_per_async_span", on.asyncBytesPerSpan - off.asyncBytesPerSpan, "bytes/span",
          decimals: 1)
case "generator-digests":
    GeneratorDigests.run()
case "generator-file":
    let path = "/tmp/pmm-bench-generator-\(getpid()).perfetto"
    GeneratorBench.run(toFile: path, threadsScale: option("--threads-scale", 1))
    unlink(path)
case "memory":
    runMemory()
case "file":
    var scale = 1
    var path = "/tmp/pmm-bench-\(getpid()).perfetto"
    var keep = false
    var i = 1
    while i < arguments.count {
        switch arguments[i] {
        case "--scale" where i + 1 < arguments.count: scale = Int(arguments[i + 1]) ?? 0; i += 2
        case "--out" where i + 1 < arguments.count: path = arguments[i + 1]; i += 2
        case "--keep": keep = true; i += 1
        default: fail("unknown argument \(arguments[i])")
        }
    }
    guard scale >= 1 else { fail("--scale must be a positive integer") }
    runFile(scale: scale, path: path)
    if !keep { unlink(path) }
case "validate":
    guard arguments.count >= 2 else { fail("usage: pmm-bench validate TRACE [--name NAME]") }
    var name = "validate"
    if let i = arguments.firstIndex(of: "--name"), i + 1 < arguments.count { name = arguments[i + 1] }
    runValidate(path: arguments[1], name: name)
default:
    fail("usage: pmm-bench memory | file [--scale N] [--out PATH] [--keep] | generator-memory | "
         + "generator-file [--threads-scale N] | generator-args-flows | generator-digests | validate TRACE [--name NAME]")
}
