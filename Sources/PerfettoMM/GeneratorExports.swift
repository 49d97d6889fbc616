import CArrowABI
import CPerfettoMM
import PerfettoCore

// The pmm_generator_* functions of perfetto_mm.h: argument checks and translation to
// the core's TraceGenerator.

/// What a `pmm_generator*` points to.
final class GeneratorHandle {
    let generator: TraceGenerator
    init(_ generator: TraceGenerator) { self.generator = generator }
}

/// The header's Arrow stream as the core's (the same C definition, from the spec).
private func coreStream(_ stream: UnsafeMutablePointer<CPerfettoMM.ArrowArrayStream>?)
    -> UnsafeMutablePointer<CArrowABI.ArrowArrayStream>? {
    stream.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: CArrowABI.ArrowArrayStream.self) }
}

/// Releases a stream the library took ownership of but could not hand to the core.
private func releaseStream(_ stream: UnsafeMutablePointer<CPerfettoMM.ArrowArrayStream>?) {
    guard let stream, let release = stream.pointee.release else { return }
    release(stream)
}

@inline(__always)
private func withGenerator(_ handle: OpaquePointer?, _ body: (TraceGenerator) throws(PerfettoError) -> Void) -> Int32 {
    guard let handle else { return fail(.invalidArgument("generator is NULL")) }
    let generator = Unmanaged<GeneratorHandle>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue().generator
    do {
        try body(generator)
        return PMM_OK
    } catch {
        return fail(error)
    }
}

private func cString(_ pointer: UnsafePointer<CChar>?, _ length: Int, _ name: String) throws(PerfettoError) -> String {
    let bytes = try cBytes(pointer, length, name)
    guard UTF8Validation.isValid(bytes) else { throw .invalidUTF8(name) }
    return String(decoding: bytes, as: UTF8.self)
}

@_cdecl("pmm_generator_new")
public func pmm_generator_new(_ writerHandle: OpaquePointer?, _ options: UnsafePointer<pmm_generator_options>?,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let out else { return fail(.invalidArgument("out is NULL")) }
    out.pointee = nil
    guard let writerHandle else { return fail(.invalidArgument("writer is NULL")) }
    guard let options = options?.pointee else { return fail(.invalidArgument("options is NULL")) }
    let writer = Unmanaged<WriterHandle>.fromOpaque(UnsafeRawPointer(writerHandle)).takeUnretainedValue().writer
    do throws(PerfettoError) {
        let spanTypes: SpanTypes
        switch options.span_types {
        case PMM_SPANS_THREAD: spanTypes = .thread
        case PMM_SPANS_ASYNC: spanTypes = .async
        case PMM_SPANS_BOTH: spanTypes = .both
        default: throw .invalidArgument("span_types must be PMM_SPANS_THREAD, _ASYNC or _BOTH, got \(options.span_types)")
        }
        let layout: AsyncLayout
        switch options.async_layout {
        case PMM_LAYOUT_LANES: layout = .lanes
        case PMM_LAYOUT_MICROMEGAS: layout = .micromegas
        case PMM_LAYOUT_THREAD_LANES: layout = .threadLanes
        default:
            throw .invalidArgument("async_layout must be PMM_LAYOUT_LANES, _MICROMEGAS or _THREAD_LANES, got \(options.async_layout)")
        }
        let known = UInt32(PMM_FLAG_NO_SPAN_ARGS | PMM_FLAG_NO_FLOWS)
        guard options.flags & ~known == 0 else {
            throw .invalidArgument("flags has unknown bits \(options.flags & ~known) (PMM_FLAG_* only)")
        }
        let asyncOptions = AsyncOptions(spanArgs: options.flags & UInt32(PMM_FLAG_NO_SPAN_ARGS) == 0,
                                        flows: options.flags & UInt32(PMM_FLAG_NO_FLOWS) == 0)
        guard options.thread_count == 0 || options.threads != nil else {
            throw .invalidArgument("threads is NULL with thread_count \(cSize(options.thread_count))")
        }
        try cArray(UnsafeRawPointer(options.threads), options.thread_count, width: MemoryLayout<pmm_thread>.stride,
                   "thread_count")
        var threads: [ThreadInfo] = []
        for i in 0..<options.thread_count {
            let t = options.threads[i]
            threads.append(ThreadInfo(streamId: try cString(t.stream_id, t.stream_id_len, "threads[\(i)].stream_id"),
                                      threadId: t.thread_id,
                                      name: try cString(t.thread_name, t.thread_name_len, "threads[\(i)].thread_name")))
        }
        let generator = try TraceGenerator(
            writer: writer, exe: try cString(options.exe, options.exe_len, "exe"), threads: threads,
            spanTypes: spanTypes, rangeBegin: options.range_begin_ns, rangeEnd: options.range_end_ns, layout: layout,
            options: asyncOptions)
        out.pointee = OpaquePointer(Unmanaged.passRetained(GeneratorHandle(generator)).toOpaque())
        return PMM_OK
    } catch {
        return fail(error)
    }
}

@_cdecl("pmm_generator_add_thread_spans")
public func pmm_generator_add_thread_spans(_ handle: OpaquePointer?, _ streamId: UnsafePointer<CChar>?,
                                           _ streamIdLength: Int,
                                           _ stream: UnsafeMutablePointer<CPerfettoMM.ArrowArrayStream>?) -> Int32 {
    guard handle != nil else {
        releaseStream(stream)
        return fail(.invalidArgument("generator is NULL"))
    }
    return withGenerator(handle) { (g) throws(PerfettoError) in
        let id: UnsafeRawBufferPointer
        do throws(PerfettoError) {
            id = try cBytes(streamId, streamIdLength, "stream_id")
        } catch {
            releaseStream(stream)
            throw error
        }
        try g.addThreadSpans(streamId: id, stream: coreStream(stream))
    }
}

@_cdecl("pmm_generator_add_async_events")
public func pmm_generator_add_async_events(_ handle: OpaquePointer?,
                                           _ stream: UnsafeMutablePointer<CPerfettoMM.ArrowArrayStream>?) -> Int32 {
    guard handle != nil else {
        releaseStream(stream)
        return fail(.invalidArgument("generator is NULL"))
    }
    return withGenerator(handle) { (g) throws(PerfettoError) in try g.addAsyncEvents(stream: coreStream(stream)) }
}

@_cdecl("pmm_generator_add_log_entries")
public func pmm_generator_add_log_entries(_ handle: OpaquePointer?,
                                          _ stream: UnsafeMutablePointer<CPerfettoMM.ArrowArrayStream>?) -> Int32 {
    guard handle != nil else {
        releaseStream(stream)
        return fail(.invalidArgument("generator is NULL"))
    }
    return withGenerator(handle) { (g) throws(PerfettoError) in try g.addLogEntries(stream: coreStream(stream)) }
}

@_cdecl("pmm_generator_add_measures")
public func pmm_generator_add_measures(_ handle: OpaquePointer?,
                                       _ stream: UnsafeMutablePointer<CPerfettoMM.ArrowArrayStream>?) -> Int32 {
    guard handle != nil else {
        releaseStream(stream)
        return fail(.invalidArgument("generator is NULL"))
    }
    return withGenerator(handle) { (g) throws(PerfettoError) in try g.addMeasures(stream: coreStream(stream)) }
}

private func fill(_ out: UnsafeMutablePointer<pmm_generator_stats>, _ s: GenerationStats) {
    out.pointee = pmm_generator_stats(
        thread_spans: UInt64(s.threadSpans), thread_spans_outside_range: UInt64(s.threadSpansOutsideRange),
        async_spans: UInt64(s.asyncSpans), async_tracks: UInt64(s.asyncTracks),
        async_events: UInt64(s.matcher.events), async_events_outside_range: UInt64(s.matcher.eventsOutsideRange),
        async_complete: UInt64(s.matcher.complete), async_open_at_end: UInt64(s.matcher.openAtEnd),
        async_begun_before_range: UInt64(s.matcher.begunBeforeRange), async_duplicates: UInt64(s.matcher.duplicates),
        async_dropped: UInt64(s.matcher.dropped),
        log_entries: UInt64(s.logEntries), log_entries_outside_range: UInt64(s.logEntriesOutsideRange),
        measures: UInt64(s.measures), measures_outside_range: UInt64(s.measuresOutsideRange),
        counter_tracks: UInt64(s.counterTracks))
}

@_cdecl("pmm_generator_get_stats")
public func pmm_generator_get_stats(_ handle: OpaquePointer?, _ stats: UnsafeMutablePointer<pmm_generator_stats>?) -> Int32 {
    withGenerator(handle) { (g) throws(PerfettoError) in
        guard let stats else { throw .invalidArgument("stats is NULL") }
        fill(stats, try g.currentStats())
    }
}

@_cdecl("pmm_generator_finish")
public func pmm_generator_finish(_ handle: OpaquePointer?, _ stats: UnsafeMutablePointer<pmm_generator_stats>?) -> Int32 {
    withGenerator(handle) { (g) throws(PerfettoError) in
        let result = try g.finish()
        if let stats { fill(stats, result) }
    }
}

@_cdecl("pmm_generator_free")
public func pmm_generator_free(_ handle: OpaquePointer?) {
    guard let handle else { return }
    Unmanaged<GeneratorHandle>.fromOpaque(UnsafeRawPointer(handle)).release()
}
