import ArrowTestSupport
import CArrowABI
import CPerfettoMM
import Foundation
import Testing
@testable import PerfettoCore

/// A whole generation through the C declarations of perfetto_mm.h gives the bytes of
/// the Swift API, into a buffer and as chunks.
struct CGeneratorTests {
    func cStream(_ stream: UnsafeMutablePointer<CArrowABI.ArrowArrayStream>) -> UnsafeMutablePointer<CPerfettoMM.ArrowArrayStream> {
        UnsafeMutableRawPointer(stream).assumingMemoryBound(to: CPerfettoMM.ArrowArrayStream.self)
    }

    @Test(arguments: [PMM_LAYOUT_LANES, PMM_LAYOUT_MICROMEGAS])
    func cGenerationEqualsSwift(layout: Int32) throws {
        let scenario = try Fixtures.scenario("many_threads")
        let events = asyncEvents(scenario.asyncSpans)
        let threads = scenario.threads.map { ThreadInfo(streamId: $0.streamId, threadId: $0.threadId, name: $0.threadName) }
        let (swiftWriter, swiftStats) = try generate(
            processId: scenario.processId, exe: scenario.exe,
            threads: zip(threads, scenario.threads).map { ($0, threadSpanBatches($1.spans, batchSize: 50)) },
            asyncBatches: asyncEventBatches(events, batchSize: 64), spanTypes: .both, range: 0...Int64.max,
            layout: layout == PMM_LAYOUT_LANES ? .lanes : .micromegas)
        let expected = try swiftWriter.takeBytes()

        for chunkSize in [0, 1000] {
            final class Box { var bytes: [UInt8] = []; var calls = 0 }
            let box = Box()
            var w: OpaquePointer?
            try CABIReplay.c(scenario.processId) { id, length in
                if chunkSize == 0 {
                    try CABIReplay.check(pmm_writer_new_buffer(id, length, 0, &w))
                } else {
                    try CABIReplay.check(pmm_writer_new_callback(id, length, chunkSize, { ctx, data, length in
                        let box = Unmanaged<Box>.fromOpaque(ctx!).takeUnretainedValue()
                        box.bytes += UnsafeBufferPointer(start: data, count: length)
                        box.calls += 1
                        return 0
                    }, Unmanaged.passUnretained(box).toOpaque(), &w))
                }
            }
            let writer = try #require(w)
            defer { pmm_writer_free(writer) }

            // The C strings must outlive pmm_generator_new: keep them in arrays.
            let ids = threads.map { Array($0.streamId.utf8CString) }
            let names = threads.map { Array($0.name.utf8CString) }
            let exe = Array(scenario.exe.utf8CString)
            var g: OpaquePointer?
            try ids.withUnsafeBufferPointer { _ in
                var cThreads: [pmm_thread] = []
                for i in threads.indices {
                    cThreads.append(pmm_thread(stream_id: ids[i].withUnsafeBufferPointer { $0.baseAddress }, stream_id_len: ids[i].count - 1,
                                               thread_id: threads[i].threadId,
                                               thread_name: names[i].withUnsafeBufferPointer { $0.baseAddress },
                                               thread_name_len: names[i].count - 1))
                }
                try cThreads.withUnsafeBufferPointer { threadBuffer in
                    try exe.withUnsafeBufferPointer { exeBuffer in
                        var options = pmm_generator_options(
                            exe: exeBuffer.baseAddress, exe_len: exe.count - 1, threads: threadBuffer.baseAddress,
                            thread_count: threads.count, span_types: PMM_SPANS_BOTH, async_layout: layout,
                            range_begin_ns: 0, range_end_ns: Int64.max, flags: 0)
                        try CABIReplay.check(pmm_generator_new(writer, &options, &g))
                    }
                }
            }
            let generator = try #require(g)
            defer { pmm_generator_free(generator) }
            let tracker = ArrowTestStream.Tracker()
            for (thread, spans) in zip(threads, scenario.threads.map(\.spans)) {
                let stream = ArrowTestStream.make(threadSpanBatches(spans, batchSize: 50), schema: threadSpanSchema, tracker: tracker)
                defer { ArrowTestStream.deallocate(stream) }
                try CABIReplay.c(thread.streamId) {
                    try CABIReplay.check(pmm_generator_add_thread_spans(generator, $0, $1, cStream(stream)))
                }
                var progress = pmm_generator_stats()
                try CABIReplay.check(pmm_generator_get_stats(generator, &progress))
            }
            let stream = ArrowTestStream.make(asyncEventBatches(events, batchSize: 64), tracker: tracker)
            defer { ArrowTestStream.deallocate(stream) }
            try CABIReplay.check(pmm_generator_add_async_events(generator, cStream(stream)))
            var stats = pmm_generator_stats()
            try CABIReplay.check(pmm_generator_finish(generator, &stats))
            #expect(tracker.live == 0)
            #expect(stats.thread_spans == UInt64(swiftStats.threadSpans))
            #expect(stats.async_spans == UInt64(swiftStats.asyncSpans))
            #expect(stats.async_tracks == UInt64(swiftStats.asyncTracks))
            #expect(stats.async_complete == UInt64(scenario.asyncSpans.count))
            if chunkSize == 0 {
                var data: UnsafeMutablePointer<UInt8>?
                var length = 0
                try CABIReplay.check(pmm_writer_take_buffer(writer, &data, &length))
                defer { pmm_buffer_free(data) }
                #expect(Array(UnsafeBufferPointer(start: data, count: length)) == expected)
            } else {
                #expect(box.bytes == expected)
                #expect(box.calls > 10)
            }
        }
        if layout == PMM_LAYOUT_MICROMEGAS { #expect(expected == (try Fixtures.golden("many_threads"))) }
    }
}
