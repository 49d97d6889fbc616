import PerfettoCore
import CPerfettoMM
import ScenarioSupport

/// Replays a scenario's calls through the exported C functions (as a C caller would).
enum CABIReplay {
    struct Failure: Error, CustomStringConvertible {
        var status: Int32
        var message: String
        var description: String { "status \(status): \(message)" }
    }

    static func check(_ status: Int32) throws {
        if status != 0 { throw Failure(status: status, message: String(cString: pmm_last_error())) }
    }

    /// Calls `body` with a C string (pointer + byte length) of `s`.
    static func c<R>(_ s: String, _ body: (UnsafePointer<CChar>?, Int) throws -> R) rethrows -> R {
        let utf8 = Array(s.utf8CString)
        return try utf8.withUnsafeBufferPointer { try body($0.baseAddress, utf8.count - 1) }
    }

    static func write(_ scenario: Scenario, to w: OpaquePointer) throws {
        try c(scenario.exe) { try check(pmm_writer_emit_process_descriptor(w, $0, $1)) }
        for t in scenario.threads {
            try c(t.streamId) { id, idLength in
                try c(t.threadName) { try check(pmm_writer_emit_thread_descriptor(w, id, idLength, t.threadId, $0, $1)) }
            }
        }
        if scenario.spanTypes.includesAsync { try check(pmm_writer_emit_async_track_descriptor(w)) }
        func span(_ s: Scenario.Span, _ call: (UnsafePointer<CChar>?, Int, UnsafePointer<CChar>?, Int,
                                                UnsafePointer<CChar>?, Int) -> Int32) throws {
            try c(s.name) { n, nl in try c(s.target) { t, tl in try c(s.filename) { f, fl in
                try check(call(n, nl, t, tl, f, fl))
            } } }
        }
        if scenario.spanTypes.includesThread {
            for t in scenario.threads {
                try c(t.streamId) { try check(pmm_writer_set_current_thread(w, $0, $1)) }
                for s in t.spans {
                    try span(s) { pmm_writer_emit_span(w, s.begin, s.end, $0, $1, $2, $3, $4, $5, s.line) }
                }
            }
        }
        if scenario.spanTypes.includesAsync {
            for s in scenario.asyncSpans {
                try span(s) { pmm_writer_emit_async_span_begin(w, s.begin, $0, $1, $2, $3, $4, $5, s.line) }
                try span(s) { pmm_writer_emit_async_span_end(w, s.end, $0, $1, $2, $3, $4, $5, s.line) }
            }
        }
        try check(pmm_writer_flush(w))
    }

    /// The scenario written by a C buffer writer.
    static func buffer(_ scenario: Scenario) throws -> [UInt8] {
        var w: OpaquePointer?
        try c(scenario.processId) { try check(pmm_writer_new_buffer($0, $1, 0, &w)) }
        guard let w else { throw Failure(status: -1, message: "no writer") }
        defer { pmm_writer_free(w) }
        try write(scenario, to: w)
        var data: UnsafeMutablePointer<UInt8>?
        var length = 0
        try check(pmm_writer_take_buffer(w, &data, &length))
        defer { pmm_buffer_free(data) }
        return data.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []
    }

    /// The scenario written by a C callback writer: the chunks it received.
    static func chunks(_ scenario: Scenario, chunkSize: Int) throws -> [[UInt8]] {
        final class Box { var chunks: [[UInt8]] = [] }
        let box = Box()
        var w: OpaquePointer?
        let context = Unmanaged.passUnretained(box).toOpaque()
        try c(scenario.processId) {
            try check(pmm_writer_new_callback($0, $1, chunkSize, { ctx, data, length in
                guard let ctx else { return 1 }
                Unmanaged<Box>.fromOpaque(ctx).takeUnretainedValue().chunks
                    .append(Array(UnsafeBufferPointer(start: data, count: length)))
                return 0
            }, context, &w))
        }
        guard let w else { throw Failure(status: -1, message: "no writer") }
        defer { pmm_writer_free(w) }
        try write(scenario, to: w)
        return box.chunks
    }
}
