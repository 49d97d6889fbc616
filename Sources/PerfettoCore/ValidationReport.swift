/// What a `TraceValidator` can find wrong in a trace. The raw values are the C ABI's
/// `PMM_PROBLEM_*` constants.
public enum ValidationProblemKind: Int32, CaseIterable, Sendable {
    /// The trace ends inside a packet (cut mid-packet or mid-header).
    case truncated = 1
    /// A record that is not a `Trace.packet` field; nothing after it can be read.
    case framing = 2
    /// A packet whose bytes are not a well-formed protobuf message (skipped).
    case malformedPacket = 3
    /// A packet larger than the validator buffers (64 MiB): skipped unread.
    case packetTooLarge = 4
    /// A packet needing incremental state on a sequence that never cleared it
    /// (SEQ_INCREMENTAL_STATE_CLEARED): Perfetto drops such packets.
    case sequenceNotCleared = 5
    /// A packet using interned ids or carrying interned data without SEQ_NEEDS_INCREMENTAL_STATE.
    case needsIncrementalStateMissing = 6
    /// An interned id used before it is defined in the sequence's current incremental state.
    case internedIdUndefined = 7
    /// An interned id defined again with another value in the same incremental state.
    case internedIdRedefined = 8
    /// An event on a track uuid that no TrackDescriptor describes.
    case trackUndescribed = 9
    /// A TrackDescriptor whose parent_uuid no TrackDescriptor describes.
    case parentUndescribed = 10
    /// A thread track whose pid differs from its parent process track's pid.
    case threadPidMismatch = 11
    /// A track uuid described twice with different contents.
    case trackRedescribed = 12
    /// A TrackEvent packet without a timestamp.
    case eventWithoutTimestamp = 13
    /// A TrackEvent without a type (and without a legacy phase): Perfetto rejects it.
    case eventWithoutType = 14
    /// A TYPE_COUNTER event on a track not described (before it) as a counter track.
    case counterOnNonCounterTrack = 15
    /// A slice or instant event on a counter track.
    case sliceOnCounterTrack = 16
    /// Perfetto's `misplaced_end_event`: an event passed the end of a closed slice still
    /// buried under open ones, which are cut off at that end.
    case misplacedEndEvent = 17
    /// A slice end that closes no open slice (Perfetto ignores it).
    case unmatchedEnd = 18
    /// A slice begun at depth 512 or deeper: Perfetto never closes it.
    case depthLimit = 19
    /// A slice Perfetto shows with another duration than the trace's own begin/end pairing.
    case wrongDuration = 20
    /// A flow id that appears on only one event (Perfetto draws no arrow).
    case flowUnconnected = 21

    /// The name used in reports (snake case, as Perfetto names its stats).
    public var name: String {
        switch self {
        case .truncated: return "truncated"
        case .framing: return "framing"
        case .malformedPacket: return "malformed_packet"
        case .packetTooLarge: return "packet_too_large"
        case .sequenceNotCleared: return "sequence_not_cleared"
        case .needsIncrementalStateMissing: return "needs_incremental_state_missing"
        case .internedIdUndefined: return "interned_id_undefined"
        case .internedIdRedefined: return "interned_id_redefined"
        case .trackUndescribed: return "track_undescribed"
        case .parentUndescribed: return "parent_undescribed"
        case .threadPidMismatch: return "thread_pid_mismatch"
        case .trackRedescribed: return "track_redescribed"
        case .eventWithoutTimestamp: return "event_without_timestamp"
        case .eventWithoutType: return "event_without_type"
        case .counterOnNonCounterTrack: return "counter_on_non_counter_track"
        case .sliceOnCounterTrack: return "slice_on_counter_track"
        case .misplacedEndEvent: return "misplaced_end_event"
        case .unmatchedEnd: return "unmatched_end"
        case .depthLimit: return "depth_limit"
        case .wrongDuration: return "wrong_duration"
        case .flowUnconnected: return "flow_unconnected"
        }
    }

    /// One more than the largest raw value (the size of a per-kind count array).
    public static let countSlots = 22
}

/// One example of a problem: where it is and what it is.
public struct ValidationExample: Sendable, Equatable {
    public var kind: ValidationProblemKind
    /// Byte offset in the trace of the packet's record (its `Trace.packet` tag).
    public var packetOffset: Int64
    public var message: String
}

/// What a validation found. Counts are exact; `examples` holds the first
/// `TraceValidator.maxExamplesPerKind` of each kind, in the order they were found.
public struct ValidationReport: Sendable {
    /// Problems of each kind, indexed by raw value (index 0 unused).
    public var problemCounts = [Int](repeating: 0, count: ValidationProblemKind.countSlots)
    public var examples: [ValidationExample] = []

    /// False when the input is empty or its first record is not a `Trace.packet`.
    public var isTrace = true
    public var bytes: Int64 = 0
    public var packets = 0
    public var trackDescriptors = 0
    public var trackEvents = 0
    /// Slice begins (TYPE_SLICE_BEGIN).
    public var slices = 0
    /// Slice ends (TYPE_SLICE_END).
    public var sliceEnds = 0
    /// Instants (TYPE_INSTANT): zero-duration slices.
    public var instants = 0
    /// Counter values (TYPE_COUNTER): not slices.
    public var counters = 0
    /// Distinct flow ids seen.
    public var flows = 0
    /// Debug annotations seen on events.
    public var debugAnnotations = 0
    /// Tracks that carry slices.
    public var sliceTracks = 0
    /// Slices still open at the end of the trace (Perfetto shows them as not ended).
    public var openAtEnd = 0
    /// The deepest slice stack on any track (1 = one open slice).
    public var maxDepth = 0
    /// Events replayed out of timestamp order because they arrived behind the
    /// validator's reordering window (a slice begin more than `SliceTrackModel.window`
    /// begins late on its track): nesting results for such tracks are approximate. A
    /// limit of the streaming validator, not a problem of the trace.
    public var outOfOrderEvents = 0

    public init() {}

    public func count(_ kind: ValidationProblemKind) -> Int { problemCounts[Int(kind.rawValue)] }

    /// Problems of every kind.
    public var problemCount: Int { problemCounts.reduce(0, +) }

    public var isClean: Bool { isTrace && problemCount == 0 }

    /// Slices Perfetto would show with a wrong duration.
    public var wrongDurationSlices: Int { count(.wrongDuration) }

    /// Perfetto's `misplaced_end_event` stat for this trace.
    public var misplacedEndEvents: Int { count(.misplacedEndEvent) }
}
