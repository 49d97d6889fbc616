#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPerfettoMM
import PerfettoCore

// The pmm_validator_* and pmm_validate_* functions of perfetto_mm.h: argument checks and
// translation to the core's TraceValidator.

/// What a `pmm_validator*` points to: the validator, then its report and the examples'
/// messages as C strings with their lengths: every byte of the message (a NUL inside it,
/// from a name in the trace, is kept: the length says where it ends), then a NUL.
final class ValidatorHandle {
    let validator = TraceValidator()
    var report: ValidationReport?
    var messages: [(pointer: UnsafeMutablePointer<CChar>, count: Int)?] = []

    func finish() -> ValidationReport {
        if let report { return report }
        let r = validator.finish()
        report = r
        messages = r.examples.map { mallocCString($0.message, escapingNUL: false) }
        return r
    }

    deinit { for m in messages { free(m?.pointer) } }
}

private func handle(_ pointer: OpaquePointer?) -> ValidatorHandle? {
    pointer.map { Unmanaged<ValidatorHandle>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

private func fill(_ out: UnsafeMutablePointer<pmm_validation_stats>, _ r: ValidationReport) {
    var s = pmm_validation_stats()
    s.is_trace = r.isTrace ? 1 : 0
    s.problems_total = UInt64(r.problemCount)
    s.wrong_duration_slices = UInt64(r.wrongDurationSlices)
    s.misplaced_end_events = UInt64(r.misplacedEndEvents)
    s.bytes = UInt64(r.bytes)
    s.packets = UInt64(r.packets)
    s.track_descriptors = UInt64(r.trackDescriptors)
    s.track_events = UInt64(r.trackEvents)
    s.slices = UInt64(r.slices)
    s.slice_ends = UInt64(r.sliceEnds)
    s.instants = UInt64(r.instants)
    s.counters = UInt64(r.counters)
    s.flows = UInt64(r.flows)
    s.debug_annotations = UInt64(r.debugAnnotations)
    s.slice_tracks = UInt64(r.sliceTracks)
    s.open_at_end = UInt64(r.openAtEnd)
    s.max_depth = UInt64(r.maxDepth)
    s.out_of_order_events = UInt64(r.outOfOrderEvents)
    withUnsafeMutableBytes(of: &s.problems) { raw in
        let counts = raw.bindMemory(to: UInt64.self)
        for i in 0..<min(counts.count, r.problemCounts.count) { counts[i] = UInt64(r.problemCounts[i]) }
    }
    out.pointee = s
}

/// Hands a finished validator to the caller (`out`) or frees it.
private func deliver(_ h: ValidatorHandle, _ stats: UnsafeMutablePointer<pmm_validation_stats>?,
                     _ out: UnsafeMutablePointer<OpaquePointer?>?) {
    let report = h.finish()
    if let stats { fill(stats, report) }
    if let out { out.pointee = OpaquePointer(Unmanaged.passRetained(h).toOpaque()) }
}

@_cdecl("pmm_validator_new")
public func pmm_validator_new(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let out else { return fail(.invalidArgument("out is NULL")) }
    out.pointee = OpaquePointer(Unmanaged.passRetained(ValidatorHandle()).toOpaque())
    return PMM_OK
}

@_cdecl("pmm_validator_feed")
public func pmm_validator_feed(_ pointer: OpaquePointer?, _ data: UnsafePointer<UInt8>?, _ length: Int) -> Int32 {
    guard let h = handle(pointer) else { return fail(.invalidArgument("validator is NULL")) }
    do throws(PerfettoError) {
        let bytes = try cBytes(UnsafeRawPointer(data).map { $0.assumingMemoryBound(to: CChar.self) }, length, "data")
        guard h.report == nil else { throw .callOrder("pmm_validator_feed after pmm_validator_finish") }
        try h.validator.feed(bytes)
        return PMM_OK
    } catch {
        return fail(error)
    }
}

@_cdecl("pmm_validator_finish")
public func pmm_validator_finish(_ pointer: OpaquePointer?, _ stats: UnsafeMutablePointer<pmm_validation_stats>?) -> Int32 {
    guard let h = handle(pointer) else { return fail(.invalidArgument("validator is NULL")) }
    let report = h.finish()
    if let stats { fill(stats, report) }
    return PMM_OK
}

@_cdecl("pmm_validator_example_count")
public func pmm_validator_example_count(_ pointer: OpaquePointer?, _ count: UnsafeMutablePointer<Int>?) -> Int32 {
    guard let h = handle(pointer) else { return fail(.invalidArgument("validator is NULL")) }
    guard let count else { return fail(.invalidArgument("count is NULL")) }
    count.pointee = h.report?.examples.count ?? 0
    return PMM_OK
}

@_cdecl("pmm_validator_get_example")
public func pmm_validator_get_example(_ pointer: OpaquePointer?, _ index: Int,
                                      _ example: UnsafeMutablePointer<pmm_validation_example>?) -> Int32 {
    guard let h = handle(pointer) else { return fail(.invalidArgument("validator is NULL")) }
    guard let example else { return fail(.invalidArgument("example is NULL")) }
    guard let report = h.report else {
        return fail(.callOrder("pmm_validator_get_example before pmm_validator_finish"))
    }
    guard index >= 0, index < report.examples.count else {
        return fail(.invalidArgument("example index \(cSize(index)) out of range (\(report.examples.count) examples)"))
    }
    let e = report.examples[index]
    guard let message = h.messages[index] else { return fail(.outOfMemory) }
    example.pointee = pmm_validation_example(kind: e.kind.rawValue, packet_offset: UInt64(e.packetOffset),
                                             message: UnsafePointer(message.pointer), message_len: message.count)
    return PMM_OK
}

@_cdecl("pmm_validator_free")
public func pmm_validator_free(_ pointer: OpaquePointer?) {
    guard let pointer else { return }
    Unmanaged<ValidatorHandle>.fromOpaque(UnsafeRawPointer(pointer)).release()
}

@_cdecl("pmm_validate_buffer")
public func pmm_validate_buffer(_ data: UnsafePointer<UInt8>?, _ length: Int,
                                _ stats: UnsafeMutablePointer<pmm_validation_stats>?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    out?.pointee = nil
    do throws(PerfettoError) {
        let bytes = try cBytes(UnsafeRawPointer(data).map { $0.assumingMemoryBound(to: CChar.self) }, length, "data")
        let h = ValidatorHandle()
        try h.validator.feed(bytes)
        deliver(h, stats, out)
        return PMM_OK
    } catch {
        return fail(error)
    }
}

@_cdecl("pmm_validate_fd")
public func pmm_validate_fd(_ fd: Int32, _ stats: UnsafeMutablePointer<pmm_validation_stats>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    out?.pointee = nil
    guard fd >= 0 else { return fail(.invalidArgument("file descriptor must be >= 0, got \(fd)")) }
    let h = ValidatorHandle()
    do throws(PerfettoError) {
        try h.validator.feed(fd: fd)
        deliver(h, stats, out)
        return PMM_OK
    } catch {
        return fail(error)
    }
}

private let problemNames: [StaticString] = [
    "", "truncated", "framing", "malformed_packet", "packet_too_large", "sequence_not_cleared",
    "needs_incremental_state_missing", "interned_id_undefined", "interned_id_redefined", "track_undescribed",
    "parent_undescribed", "thread_pid_mismatch", "track_redescribed", "event_without_timestamp",
    "event_without_type", "counter_on_non_counter_track", "slice_on_counter_track", "misplaced_end_event",
    "unmatched_end", "depth_limit", "wrong_duration", "flow_unconnected",
]

@_cdecl("pmm_problem_name")
public func pmm_problem_name(_ kind: Int32) -> UnsafePointer<CChar>? {
    guard kind > 0, Int(kind) < problemNames.count else { return nil }
    return UnsafeRawPointer(problemNames[Int(kind)].utf8Start).assumingMemoryBound(to: CChar.self)
}
