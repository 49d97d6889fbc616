#if canImport(Glibc)
import Glibc
#endif
import BenchReference
import PerfettoCore

/// The C reference encoders of bench/reference, timed in the same run as the Swift code
/// they are compared with: the workload generated up front into stable memory, a
/// pre-sized and pre-touched output buffer, and the bytes checked against the writer's
/// sha256 (docs/benchmarks.md).
enum Reference {
    struct Timing {
        var seconds: Double
        var threadSeconds: Double
    }

    /// Memory that lives until `free()`: every buffer the C workload points into.
    final class Arena {
        private var blocks: [UnsafeMutableRawPointer] = []

        func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: Swift.max(values.count, 1))
            p.initialize(from: values, count: values.count)
            blocks.append(UnsafeMutableRawPointer(p))
            return p
        }

        func string(_ bytes: [UInt8]) -> bench_str {
            bench_str(ptr: UnsafePointer(copy(bytes)), len: bytes.count)
        }

        deinit { for b in blocks { b.deallocate() } }
    }

    /// Encodes the writer workload with `mode` (BENCH_INTERN_PER_CALL or BENCH_PRE_RESOLVED).
    static func run(mode: Int32) -> Timing {
        var workload = BenchWorkload(scale: 1)
        let arena = Arena()
        func span(_ s: BenchWorkload.Span) -> bench_span {
            bench_span(begin: s.begin, end: s.end, name: s.name, target: s.target, location: s.location)
        }
        var threadSpans: [UnsafePointer<bench_span>?] = []
        var counts: [Int] = []
        for k in 0..<BenchWorkload.threadCount {
            var all: [bench_span] = []
            workload.threadSpans(k, batchSize: 1 << 20) { all += $0.map(span) }
            threadSpans.append(UnsafePointer(arena.copy(all)))
            counts.append(all.count)
        }
        var asyncSpans: [bench_span] = []
        workload.asyncSpans(batchSize: 1 << 20) { asyncSpans += $0.map(span) }
        let processUUID = XXH64.hash(BenchWorkload.processId)
        var w = bench_workload()
        w.process_uuid = processUUID
        w.async_uuid = XXH64.hash("async_track", seed: processUUID)
        w.exe = arena.string(Array(BenchWorkload.exe.utf8))
        w.thread_count = BenchWorkload.threadCount
        w.thread_uuids = UnsafePointer(arena.copy((0..<w.thread_count).map { XXH64.hash(BenchWorkload.streamId($0)) }))
        w.thread_ids = UnsafePointer(arena.copy((0..<w.thread_count).map { Int32(1000 + $0) }))
        w.thread_names = UnsafePointer(arena.copy((0..<w.thread_count).map { arena.string(Array("bench-thread-\($0)".utf8)) }))
        w.names = UnsafePointer(arena.copy(workload.names.map(arena.string)))
        w.targets = UnsafePointer(arena.copy(workload.targets.map(arena.string)))
        w.files = UnsafePointer(arena.copy(workload.files.map(arena.string)))
        w.name_count = workload.names.count
        w.target_count = workload.targets.count
        w.file_count = workload.files.count
        w.location_count = workload.locations.count
        w.location_file = UnsafePointer(arena.copy(workload.locations.map { UInt32($0.file) }))
        w.location_line = UnsafePointer(arena.copy(workload.locations.map(\.line)))
        w.thread_span_counts = UnsafePointer(arena.copy(counts))
        w.thread_spans = UnsafePointer(arena.copy(threadSpans))
        w.async_count = asyncSpans.count
        w.async_spans = UnsafePointer(arena.copy(asyncSpans))
        asyncSpans = []

        let capacity = 160 << 20
        guard let out = malloc(capacity) else { fail("out of memory") }
        defer { free(out) }
        memset(out, 0, capacity)
        var timing = Timing(seconds: 0, threadSeconds: 0)
        let start = now()
        let size = bench_reference_encode(&w, mode, out.assumingMemoryBound(to: UInt8.self), capacity,
                                          &timing.threadSeconds)
        timing.seconds = now() - start
        guard size > 0 else { fail("reference encoder: output buffer too small") }
        var sha = SHA256()
        sha.update(UnsafeRawBufferPointer(start: out, count: size))
        let digest = sha.hexDigest()
        guard digest == expectedSHA256, size == expectedBytes else {
            fail("reference encoder (mode \(mode)) output mismatch: \(size) bytes, sha256 \(digest)")
        }
        withExtendedLifetime(arena) {}
        return timing
    }
}
