#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPerfettoMM
import PerfettoCore

// The pmm_writer_* functions of perfetto_mm.h: each checks its C arguments, calls
// the core writer and translates errors to status codes.

/// What a `pmm_writer*` points to.
final class WriterHandle {
    let writer: TraceWriter
    init(_ writer: TraceWriter) { self.writer = writer }
}

public typealias WriteFn = @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<UInt8>?, Int) -> Int32

/// Runs `body` on the writer behind `handle`, turning errors into status codes.
@inline(__always)
private func withWriter(_ handle: OpaquePointer?, _ body: (TraceWriter) throws(PerfettoError) -> Void) -> Int32 {
    guard let handle else { return fail(.invalidArgument("writer is NULL")) }
    let writer = Unmanaged<WriterHandle>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue().writer
    do {
        try body(writer)
        return PMM_OK
    } catch {
        return fail(error)
    }
}

/// Creates a writer and stores its handle in `out`.
private func create(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ processId: UnsafePointer<CChar>?,
                    _ processIdLength: Int, _ sink: () throws(PerfettoError) -> TraceSink) -> Int32 {
    guard let out else { return fail(.invalidArgument("out is NULL")) }
    out.pointee = nil
    do {
        let writer = try TraceWriter(processId: try cBytes(processId, processIdLength, "process_id"), sink: try sink())
        out.pointee = OpaquePointer(Unmanaged.passRetained(WriterHandle(writer)).toOpaque())
        return PMM_OK
    } catch {
        return fail(error)
    }
}

/// A size_t argument as a positive Int, or `defaultValue` for 0.
private func size(_ value: Int, orDefault defaultValue: Int, _ name: String) throws(PerfettoError) -> Int {
    guard value >= 0 else { throw .invalidArgument("\(name) \(cSize(value)) is too large") }
    return value == 0 ? defaultValue : value
}

@_cdecl("pmm_writer_new_buffer")
public func pmm_writer_new_buffer(_ processId: UnsafePointer<CChar>?, _ processIdLength: Int,
                                  _ initialCapacity: Int, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    create(out, processId, processIdLength) { () throws(PerfettoError) in
        .memory(initialCapacity: try size(initialCapacity, orDefault: 0, "initial_capacity"))
    }
}

@_cdecl("pmm_writer_new_callback")
public func pmm_writer_new_callback(_ processId: UnsafePointer<CChar>?, _ processIdLength: Int, _ chunkSize: Int,
                                    _ writeFn: WriteFn?, _ context: UnsafeMutableRawPointer?,
                                    _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    create(out, processId, processIdLength) { () throws(PerfettoError) in
        guard let writeFn else { throw .invalidArgument("write_fn is NULL") }
        let chunkSize = try size(chunkSize, orDefault: 64 << 10, "chunk_size")
        return .chunks(chunkSize: chunkSize) { (_, bytes) throws(PerfettoError) in
            let status = writeFn(context, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
            if status != 0 { throw .sinkFailed(status: status) }
        }
    }
}

@_cdecl("pmm_writer_new_fd")
public func pmm_writer_new_fd(_ processId: UnsafePointer<CChar>?, _ processIdLength: Int, _ fd: Int32,
                              _ chunkSize: Int, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    create(out, processId, processIdLength) { () throws(PerfettoError) in
        .fileDescriptor(fd, bufferSize: try size(chunkSize, orDefault: TraceSink.defaultBufferSize, "chunk_size"))
    }
}

@_cdecl("pmm_writer_free")
public func pmm_writer_free(_ handle: OpaquePointer?) {
    guard let handle else { return }
    Unmanaged<WriterHandle>.fromOpaque(UnsafeRawPointer(handle)).release()
}

@_cdecl("pmm_writer_emit_process_descriptor")
public func pmm_writer_emit_process_descriptor(_ handle: OpaquePointer?, _ exe: UnsafePointer<CChar>?,
                                               _ exeLength: Int) -> Int32 {
    withWriter(handle) { (w) throws(PerfettoError) in
        try w.emitProcessDescriptor(exe: try cBytes(exe, exeLength, "exe"))
    }
}

@_cdecl("pmm_writer_emit_thread_descriptor")
public func pmm_writer_emit_thread_descriptor(_ handle: OpaquePointer?, _ streamId: UnsafePointer<CChar>?,
                                              _ streamIdLength: Int, _ threadId: Int32,
                                              _ threadName: UnsafePointer<CChar>?, _ threadNameLength: Int) -> Int32 {
    withWriter(handle) { (w) throws(PerfettoError) in
        try w.emitThreadDescriptor(streamId: try cBytes(streamId, streamIdLength, "stream_id"), threadId: threadId,
                                   threadName: try cBytes(threadName, threadNameLength, "thread_name"))
    }
}

@_cdecl("pmm_writer_set_current_thread")
public func pmm_writer_set_current_thread(_ handle: OpaquePointer?, _ streamId: UnsafePointer<CChar>?,
                                          _ streamIdLength: Int) -> Int32 {
    withWriter(handle) { (w) throws(PerfettoError) in
        try w.setCurrentThread(streamId: try cBytes(streamId, streamIdLength, "stream_id"))
    }
}

@_cdecl("pmm_writer_emit_async_track_descriptor")
public func pmm_writer_emit_async_track_descriptor(_ handle: OpaquePointer?) -> Int32 {
    withWriter(handle) { (w) throws(PerfettoError) in try w.emitAsyncTrackDescriptor() }
}

/// The three strings of a span or async event, checked as C arguments.
private struct SpanStrings {
    let name, target, filename: UnsafeRawBufferPointer

    init(_ name: UnsafePointer<CChar>?, _ nameLength: Int, _ target: UnsafePointer<CChar>?, _ targetLength: Int,
         _ filename: UnsafePointer<CChar>?, _ filenameLength: Int) throws(PerfettoError) {
        self.name = try cBytes(name, nameLength, "name")
        self.target = try cBytes(target, targetLength, "target")
        self.filename = try cBytes(filename, filenameLength, "filename")
    }
}

@_cdecl("pmm_writer_emit_span")
public func pmm_writer_emit_span(_ handle: OpaquePointer?, _ begin: UInt64, _ end: UInt64,
                                 _ name: UnsafePointer<CChar>?, _ nameLength: Int,
                                 _ target: UnsafePointer<CChar>?, _ targetLength: Int,
                                 _ filename: UnsafePointer<CChar>?, _ filenameLength: Int,
                                 _ line: UInt32) -> Int32 {
    withWriter(handle) { (w) throws(PerfettoError) in
        let s = try SpanStrings(name, nameLength, target, targetLength, filename, filenameLength)
        try w.emitSpan(begin: begin, end: end, name: s.name, target: s.target, filename: s.filename, line: line)
    }
}

/// pmm_writer_emit_async_span_begin (`isBegin`) and _end: the same arguments, one packet.
private func emitAsyncEvent(_ handle: OpaquePointer?, isBegin: Bool, _ timestamp: UInt64,
                            _ name: UnsafePointer<CChar>?, _ nameLength: Int,
                            _ target: UnsafePointer<CChar>?, _ targetLength: Int,
                            _ filename: UnsafePointer<CChar>?, _ filenameLength: Int, _ line: UInt32) -> Int32 {
    withWriter(handle) { (w) throws(PerfettoError) in
        let s = try SpanStrings(name, nameLength, target, targetLength, filename, filenameLength)
        if isBegin {
            try w.emitAsyncSpanBegin(timestamp: timestamp, name: s.name, target: s.target, filename: s.filename, line: line)
        } else {
            try w.emitAsyncSpanEnd(timestamp: timestamp, name: s.name, target: s.target, filename: s.filename, line: line)
        }
    }
}

@_cdecl("pmm_writer_emit_async_span_begin")
public func pmm_writer_emit_async_span_begin(_ handle: OpaquePointer?, _ timestamp: UInt64,
                                             _ name: UnsafePointer<CChar>?, _ nameLength: Int,
                                             _ target: UnsafePointer<CChar>?, _ targetLength: Int,
                                             _ filename: UnsafePointer<CChar>?, _ filenameLength: Int,
                                             _ line: UInt32) -> Int32 {
    emitAsyncEvent(handle, isBegin: true, timestamp, name, nameLength, target, targetLength, filename, filenameLength,
                   line)
}

@_cdecl("pmm_writer_emit_async_span_end")
public func pmm_writer_emit_async_span_end(_ handle: OpaquePointer?, _ timestamp: UInt64,
                                           _ name: UnsafePointer<CChar>?, _ nameLength: Int,
                                           _ target: UnsafePointer<CChar>?, _ targetLength: Int,
                                           _ filename: UnsafePointer<CChar>?, _ filenameLength: Int,
                                           _ line: UInt32) -> Int32 {
    emitAsyncEvent(handle, isBegin: false, timestamp, name, nameLength, target, targetLength, filename, filenameLength,
                   line)
}

@_cdecl("pmm_writer_flush")
public func pmm_writer_flush(_ handle: OpaquePointer?) -> Int32 {
    withWriter(handle) { (w) throws(PerfettoError) in try w.flush() }
}

@_cdecl("pmm_writer_take_buffer")
public func pmm_writer_take_buffer(_ handle: OpaquePointer?, _ data: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                                   _ length: UnsafeMutablePointer<Int>?) -> Int32 {
    withWriter(handle) { (w) throws(PerfettoError) in
        guard let data, let length else { throw .invalidArgument("data or len is NULL") }
        let taken = try w.takeBuffer()
        data.pointee = taken.storage
        length.pointee = taken.count
    }
}

@_cdecl("pmm_buffer_free")
public func pmm_buffer_free(_ data: UnsafeMutablePointer<UInt8>?) {
    free(data)
}
