import CPerfettoMM
import Testing
@testable import PerfettoCore

/// The header's constants are the core's, and the C validation gives the Swift report.
struct ValidatorCABITests {
    @Test func constantsMatchTheCore() {
        let header: [(Int32, ValidationProblemKind)] = [
            (PMM_PROBLEM_TRUNCATED, .truncated), (PMM_PROBLEM_FRAMING, .framing),
            (PMM_PROBLEM_MALFORMED_PACKET, .malformedPacket), (PMM_PROBLEM_PACKET_TOO_LARGE, .packetTooLarge),
            (PMM_PROBLEM_SEQUENCE_NOT_CLEARED, .sequenceNotCleared),
            (PMM_PROBLEM_NEEDS_INCREMENTAL_STATE_MISSING, .needsIncrementalStateMissing),
            (PMM_PROBLEM_INTERNED_ID_UNDEFINED, .internedIdUndefined),
            (PMM_PROBLEM_INTERNED_ID_REDEFINED, .internedIdRedefined),
            (PMM_PROBLEM_TRACK_UNDESCRIBED, .trackUndescribed), (PMM_PROBLEM_PARENT_UNDESCRIBED, .parentUndescribed),
            (PMM_PROBLEM_THREAD_PID_MISMATCH, .threadPidMismatch), (PMM_PROBLEM_TRACK_REDESCRIBED, .trackRedescribed),
            (PMM_PROBLEM_EVENT_WITHOUT_TIMESTAMP, .eventWithoutTimestamp),
            (PMM_PROBLEM_EVENT_WITHOUT_TYPE, .eventWithoutType),
            (PMM_PROBLEM_COUNTER_ON_NON_COUNTER_TRACK, .counterOnNonCounterTrack),
            (PMM_PROBLEM_SLICE_ON_COUNTER_TRACK, .sliceOnCounterTrack),
            (PMM_PROBLEM_MISPLACED_END_EVENT, .misplacedEndEvent), (PMM_PROBLEM_UNMATCHED_END, .unmatchedEnd),
            (PMM_PROBLEM_DEPTH_LIMIT, .depthLimit), (PMM_PROBLEM_WRONG_DURATION, .wrongDuration),
            (PMM_PROBLEM_FLOW_UNCONNECTED, .flowUnconnected),
        ]
        #expect(header.count == ValidationProblemKind.allCases.count)
        for (value, kind) in header {
            #expect(value == kind.rawValue)
            #expect(pmm_problem_name(value).map { String(cString: $0) } == kind.name)
        }
        #expect(Int(PMM_PROBLEM_KIND_COUNT) == ValidationProblemKind.countSlots)
        #expect(Int(PMM_VALIDATION_EXAMPLES_PER_KIND) == TraceValidator.maxExamplesPerKind)
        #expect(MemoryLayout.size(ofValue: pmm_validation_stats().problems) / 8 == ValidationProblemKind.countSlots)
    }

    @Test(arguments: ["basic", "many_threads", "large"])
    func cReportEqualsSwift(name: String) throws {
        let bytes = try Fixtures.golden(name)
        let swift = validatedReport(bytes)
        var stats = pmm_validation_stats()
        var handle: OpaquePointer?
        #expect(bytes.withUnsafeBufferPointer { pmm_validate_buffer($0.baseAddress, $0.count, &stats, &handle) } == PMM_OK)
        let report = try #require(handle)
        defer { pmm_validator_free(report) }
        let counts = withUnsafeBytes(of: stats.problems) { Array($0.bindMemory(to: UInt64.self)) }
        #expect(counts.map { Int($0) } == swift.problemCounts)
        #expect(Int(stats.wrong_duration_slices) == swift.wrongDurationSlices)
        #expect(Int(stats.slices) == swift.slices && Int(stats.packets) == swift.packets)
        var count = 0
        #expect(pmm_validator_example_count(report, &count) == PMM_OK)
        #expect(count == swift.examples.count)
        for (i, expected) in swift.examples.enumerated() {
            var e = pmm_validation_example()
            #expect(pmm_validator_get_example(report, i, &e) == PMM_OK)
            #expect(e.kind == expected.kind.rawValue && Int64(e.packet_offset) == expected.packetOffset)
            #expect(String(cString: e.message) == expected.message)
        }
    }
}
