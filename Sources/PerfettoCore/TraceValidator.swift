#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks a Perfetto trace the way Perfetto's trace processor reads it, streaming: feed
/// it the trace in pieces of any size (`feed`), then `finish()` for the report. Memory is
/// bounded by the open slices, the tracks, the interned entries, the open flows and a
/// reordering window of each track's last `SliceTrackModel.window` begins (at most
/// `heldEventLimit` events in all), not by the trace's size.
///
/// What is checked, and what of Perfetto is modelled:
/// - **Framing**: every record is a whole `Trace.packet` (field 1, length-delimited); a
///   trace cut inside a packet is `truncated`; any other record is a `framing` error and
///   ends reading. Each packet must decode as protobuf (`malformed_packet`, skipped).
/// - **Sequences** (per `trusted_packet_sequence_id`): a packet with
///   SEQ_NEEDS_INCREMENTAL_STATE before the sequence ever set
///   SEQ_INCREMENTAL_STATE_CLEARED is dropped, as Perfetto drops it
///   (`sequence_not_cleared`); a packet using interned ids or interned data must set
///   SEQ_NEEDS_INCREMENTAL_STATE; interned ids (event categories, names, debug annotation
///   names and string values, source locations) must be defined before use in the current
///   incremental state and never redefined with another value. A clear starts a new state.
///   TrackEventDefaults.track_uuid is honoured.
/// - **Tracks**: every event's track uuid (0 is Perfetto's default track) and every
///   parent_uuid must be described somewhere in the trace; a thread's pid must equal its
///   parent process track's; a uuid described twice must be described the same way;
///   TYPE_COUNTER events need a counter track described before them, slices must not be
///   on counter tracks.
/// - **Slices**, as `SliceTracker` rebuilds them (Perfetto's
///   src/trace_processor/importers/common/slice_tracker.cc): events ordered by timestamp,
///   file order for ties; one stack per track uuid; a slice end closes the topmost open
///   slice with a matching name and category (a missing name or category matches any:
///   `MatchingIncompleteSliceIndex`), popped only when it is on top; before each begin
///   and end, closed slices that ended at or before the event are popped, and a closed
///   slice buried under open ones that the event passes cuts them all off at its end
///   (`misplaced_end_event`); a begin at depth >= 512 is never pushed nor closed; an end
///   matching nothing is ignored (`unmatched_end`).
///   Instants (TYPE_INSTANT) are zero-duration slices: Perfetto pops them before
///   anything else can be pushed, so they change no other slice and are only counted.
///   Counters are not slices. (Perfetto >= 48 may merge same-named sibling tracks, but a
///   merged track passes to another uuid only when idle, so per-uuid stacks give the same
///   slices.)
/// - **Wrong durations**: the trace's own pairing of each end with a begin is taken in
///   file order (the latest unpaired begin on the track it can end, with the rule above);
///   a slice is shown with a wrong duration when the end Perfetto gives it (or its lack
///   of one) differs from that.
/// - **Flows**: a flow id (flow_ids, terminating_flow_ids, and their old forms) seen on
///   a single event connects nothing (`flow_unconnected`).
///
/// Timestamps are taken as absolute nanoseconds of the default clock (clock snapshots
/// and timestamp_clock_id are not interpreted). Not thread-safe.
public final class TraceValidator {
    public static let maxExamplesPerKind = 5

    private var framer = TraceFramer()
    private let state = ValidationState()
    private var sequences: [UInt64: SequenceState] = [:]
    private var lastSequenceId: UInt64 = .max
    private var lastSequence: SequenceState?
    private var tracks: [UInt64: TrackInfo] = [:]
    /// Track uuids used by events before (or without) being described, with the first use.
    private var referencedTracks: [UInt64: Int64] = [:]
    private var models: [UInt64: SliceTrackModel] = [:]
    private var lastModelUUID: UInt64 = 0
    private var lastModel: SliceTrackModel?
    /// The last described track an event used (descriptors never change once seen).
    private var lastTrackUUID: UInt64 = 0
    private var lastTrackIsCounter: Bool?
    /// Open flows: id -> number of events carrying it.
    private var flows: [UInt64: Int32] = [:]
    private var flowOffsets: [UInt64: Int64] = [:]
    private var nextSlice: Int64 = 0
    private var eventSeq: Int64 = 0
    private var latestTimestamp: Int64 = 0
    private var finished = false
    /// The error a feed threw (the framer ran out of memory): the input after it was not
    /// read, so later feeds are refused.
    private var failure: PerfettoError?
    /// Events the slice models hold back for reordering, and the limit over which they
    /// stop lagging (see `SliceTrackModel`).
    private var heldEvents = 0
    private let heldEventLimit: Int
    private var lagging = true

    /// A validator. `heldEventLimit` bounds the events held back to reorder late begins
    /// (48 bytes each); over it, begins are expected in timestamp order.
    public init(heldEventLimit: Int = 1 << 19) {
        self.heldEventLimit = Swift.max(heldEventLimit, 0)
    }

    /// Validates the next `bytes` of the trace. Trace problems are recorded, never thrown;
    /// running out of memory is thrown, and refuses every later feed.
    public func feed(_ bytes: UnsafeRawBufferPointer) throws(PerfettoError) {
        guard !finished else { throw .callOrder("feed after finish") }
        if let failure { throw .callOrder("the validator failed on an earlier error: \(failure)") }
        do { try feedFramer(bytes) } catch {
            failure = error
            throw error
        }
    }

    private func feedFramer(_ bytes: UnsafeRawBufferPointer) throws(PerfettoError) {
        try framer.feed(bytes) { (event) throws(PerfettoError) in
            switch event {
            case .packet(let offset, let packet):
                handlePacket(offset, packet)
            case .skipped(let offset, let length):
                state.report.packets += 1
                state.problem(.packetTooLarge, offset, "\(length)-byte packet skipped unread (over 64 MiB)")
            }
        }
    }

    /// Validates the next `bytes` of the trace.
    public func feed(_ bytes: [UInt8]) throws(PerfettoError) {
        var failure: PerfettoError?
        bytes.withUnsafeBytes { (b) in
            do throws(PerfettoError) { try feed(b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Ends the input and returns the report. Later calls return the same report.
    public func finish() -> ValidationReport {
        if finished { return state.report }
        finished = true
        state.report.bytes = framer.offset
        if let at = framer.framingErrorOffset {
            state.problem(.framing, at, framer.framingErrorMessage + "; the rest of the trace is unreadable")
            if at == 0 { state.report.isTrace = false }
        } else if let (at, why) = framer.unfinished() {
            state.problem(.truncated, at, why)
        }
        if framer.offset == 0 { state.report.isTrace = false }
        for uuid in models.keys.sorted() { models[uuid]?.finish(state) }
        checkTracks()
        for (id, count) in flows.sorted(by: { (flowOffsets[$0.key] ?? 0) < (flowOffsets[$1.key] ?? 0) }) where count == 1 {
            state.problem(.flowUnconnected, flowOffsets[id] ?? 0, "flow id \(id) appears on one event only")
        }
        state.report.sliceTracks = models.count
        models.removeAll()
        return state.report
    }

    /// Validates everything readable from `fd` (to end of file), in 1 MiB reads.
    public func feed(fd: Int32) throws(PerfettoError) {
        guard fd >= 0 else { throw .invalidArgument("file descriptor must be >= 0, got \(fd)") }
        let size = 1 << 20
        guard let buffer = malloc(size) else { throw .outOfMemory }
        defer { free(buffer) }
        while true {
            let n = read(fd, buffer, size)
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                throw .io(errno: code, "read from file descriptor \(fd) failed: \(String(cString: strerror(code)))")
            }
            if n == 0 { return }
            try feed(UnsafeRawBufferPointer(start: buffer, count: n))
        }
    }

    /// Validates the trace readable from `fd` (to end of file).
    public static func validate(fd: Int32) throws(PerfettoError) -> ValidationReport {
        let validator = TraceValidator()
        try validator.feed(fd: fd)
        return validator.finish()
    }

    /// Validates a whole trace in memory (throws only when out of memory).
    public static func validate(_ bytes: UnsafeRawBufferPointer) throws(PerfettoError) -> ValidationReport {
        let validator = TraceValidator()
        try validator.feed(bytes)
        return validator.finish()
    }

    // MARK: - Packets

    private struct PacketFields {
        var timestamp: UInt64?
        var sequenceId: UInt64 = 0
        var flags: UInt64 = 0
        var cleared = false
        var trackEvent: UnsafeRawBufferPointer?
        var internedData: UnsafeRawBufferPointer?
        var defaults: UnsafeRawBufferPointer?
        var descriptor: UnsafeRawBufferPointer?
    }

    private static let flagCleared: UInt64 = 1
    private static let flagNeedsState: UInt64 = 2

    private func handlePacket(_ offset: Int64, _ bytes: UnsafeRawBufferPointer) {
        state.report.packets += 1
        var p = PacketFields()
        do throws(MalformedProto) {
            var r = ProtoReader(bytes)
            while let f = try r.next() {
                switch (f.number, f.wireType) {
                case (8, 0): p.timestamp = f.value
                case (10, 0): p.sequenceId = f.value
                case (11, 2): p.trackEvent = f.bytes
                case (12, 2): p.internedData = f.bytes
                case (13, 0): p.flags = f.value
                case (41, 0): p.cleared = f.value != 0  // incremental_state_cleared (deprecated)
                case (59, 2): p.defaults = f.bytes
                case (60, 2): p.descriptor = f.bytes
                default: break
                }
            }
            if p.flags & Self.flagCleared != 0 { p.cleared = true }
            let seq = sequence(p.sequenceId, offset)
            if p.cleared { seq.clear() }
            let needs = p.flags & Self.flagNeedsState != 0
            if needs && !seq.valid {
                if !seq.reportedNotCleared {
                    seq.reportedNotCleared = true
                    state.problem(.sequenceNotCleared, offset,
                                  "sequence \(p.sequenceId) needs incremental state that was never cleared "
                                  + "(first packet at offset \(seq.firstOffset) lacks SEQ_INCREMENTAL_STATE_CLEARED); "
                                  + "Perfetto drops its packets until a clear")
                } else {
                    state.problemCountOnly(.sequenceNotCleared)
                }
                return
            }
            var usesState = false
            if let interned = p.internedData {
                usesState = true
                try readInternedData(interned, seq, offset)
            }
            if let defaults = p.defaults { try readDefaults(defaults, seq) }
            if let descriptor = p.descriptor { try readDescriptor(descriptor, offset) }
            if let event = p.trackEvent {
                if try readEvent(event, timestamp: p.timestamp, seq, offset) { usesState = true }
            }
            if usesState && !needs {
                state.problem(.needsIncrementalStateMissing, offset,
                              "packet uses interned data without SEQ_NEEDS_INCREMENTAL_STATE")
            }
        } catch {
            state.problem(.malformedPacket, offset, "packet of \(bytes.count) bytes is not a valid TracePacket")
        }
    }

    private func sequence(_ id: UInt64, _ offset: Int64) -> SequenceState {
        if id == lastSequenceId, let s = lastSequence { return s }
        let s: SequenceState
        if let existing = sequences[id] {
            s = existing
        } else {
            s = SequenceState(firstOffset: offset)
            sequences[id] = s
        }
        lastSequenceId = id
        lastSequence = s
        return s
    }

    // MARK: - Interned data

    private func readInternedData(_ bytes: UnsafeRawBufferPointer, _ seq: SequenceState,
                                  _ offset: Int64) throws(MalformedProto) {
        var r = ProtoReader(bytes)
        while let f = try r.next() {
            guard f.wireType == 2 else { continue }
            let table: InternKind
            switch f.number {
            case 1: table = .category
            case 2: table = .name
            case 3: table = .debugName
            case 4: table = .location
            case 29: table = .debugString
            default: continue
            }
            // Entry: iid = 1; the value is every other field (a name/str is field 2).
            var er = ProtoReader(f.bytes)
            var iid: UInt64 = 0
            var hash: UInt64 = 0x9E37_79B9_7F4A_7C15
            var text = UnsafeRawBufferPointer(start: nil, count: 0)
            while let e = try er.next() {
                if e.number == 1 && e.wireType == 0 { iid = e.value; continue }
                hash = (hash ^ (e.number << 3 | UInt64(e.wireType))) &* 0x100_0000_01B3
                if e.wireType == 2 {
                    hash = XXH64.hash(e.bytes, seed: hash)
                    if e.number == 2 { text = e.bytes }
                } else {
                    hash = (hash ^ e.value) &* 0x100_0000_01B3
                }
            }
            let stringId = (table == .category || table == .name) ? state.intern(text) : 0
            if let previous = seq.tables[table.rawValue].define(iid, hash: hash, string: stringId) {
                _ = previous
                state.problem(.internedIdRedefined, offset,
                              "\(table.label) iid \(iid) redefined with another value on sequence")
            }
        }
    }

    private func readDefaults(_ bytes: UnsafeRawBufferPointer, _ seq: SequenceState) throws(MalformedProto) {
        var r = ProtoReader(bytes)
        while let f = try r.next() {
            guard f.number == 11 && f.wireType == 2 else { continue }  // track_event_defaults
            var d = ProtoReader(f.bytes)
            while let g = try d.next() {
                if g.number == 11 && g.wireType == 0 { seq.defaultTrack = g.value }  // track_uuid
            }
        }
    }

    // MARK: - Track descriptors

    private func readDescriptor(_ bytes: UnsafeRawBufferPointer, _ offset: Int64) throws(MalformedProto) {
        state.report.trackDescriptors += 1
        var info = TrackInfo(offset: offset)
        var uuid: UInt64 = 0
        var r = ProtoReader(bytes)
        while let f = try r.next() {
            switch (f.number, f.wireType) {
            case (1, 0): uuid = f.value
            case (5, 0): info.parent = f.value
            case (3, 2):
                info.kind = .process
                info.pid = try Self.pid(f.bytes)
            case (4, 2):
                info.kind = .thread
                info.pid = try Self.pid(f.bytes)
            case (8, 2): info.isCounter = true
            default: break
            }
        }
        info.hash = XXH64.hash(bytes)
        if let existing = tracks[uuid] {
            if existing.hash != info.hash {
                state.problem(.trackRedescribed, offset,
                              "track \(uuid) described again differently (first at offset \(existing.offset))")
            }
            return
        }
        tracks[uuid] = info
    }

    /// Field 1 (pid) of a ProcessDescriptor or ThreadDescriptor.
    private static func pid(_ bytes: UnsafeRawBufferPointer) throws(MalformedProto) -> Int64? {
        var pid: Int64?
        var r = ProtoReader(bytes)
        while let g = try r.next() {
            if g.number == 1 && g.wireType == 0 { pid = Int64(Int32(truncatingIfNeeded: g.value)) }
        }
        return pid
    }

    private func checkTracks() {
        for (uuid, first) in referencedTracks.sorted(by: { $0.value < $1.value }) where tracks[uuid] == nil {
            state.problem(.trackUndescribed, first, "events on track \(uuid), which no TrackDescriptor describes")
        }
        for (uuid, info) in tracks.sorted(by: { $0.value.offset < $1.value.offset }) {
            guard info.parent != 0 else { continue }
            guard let parent = tracks[info.parent] else {
                state.problem(.parentUndescribed, info.offset,
                              "track \(uuid) has parent_uuid \(info.parent), which no TrackDescriptor describes")
                continue
            }
            if info.kind == .thread, parent.kind == .process, let pid = info.pid, let ppid = parent.pid, pid != ppid {
                state.problem(.threadPidMismatch, info.offset,
                              "thread track \(uuid) has pid \(pid), its process track \(info.parent) has pid \(ppid)")
            }
        }
    }

    // MARK: - Track events

    /// Reads one TrackEvent; returns whether it used interned ids.
    private func readEvent(_ bytes: UnsafeRawBufferPointer, timestamp: UInt64?, _ seq: SequenceState,
                           _ offset: Int64) throws(MalformedProto) -> Bool {
        state.report.trackEvents += 1
        var type: UInt64 = 0
        var track: UInt64? = nil
        var nameIid: UInt64 = 0
        var inlineName: UnsafeRawBufferPointer? = nil
        var categoryIid: UInt64 = 0
        var categoryIidCount = 0
        var inlineCategory = UnsafeRawBufferPointer(start: nil, count: 0)
        var inlineCategoryCount = 0
        var locationIid: UInt64 = 0
        var hasCounterValue = false
        var hasLegacyEvent = false
        var usedIids = false
        var r = ProtoReader(bytes)
        while let f = try r.next() {
            switch (f.number, f.wireType) {
            case (9, 0): type = f.value
            case (11, 0): track = f.value
            case (10, 0): nameIid = f.value; usedIids = true
            case (23, 2): inlineName = f.bytes
            case (3, _):
                usedIids = true
                try ProtoReader.forEachRepeated(f, fixed64: false) { categoryIid = $0; categoryIidCount += 1 }
            case (22, 2): inlineCategory = f.bytes; inlineCategoryCount += 1
            case (34, 0): locationIid = f.value; usedIids = true
            case (30, 0), (44, 1): hasCounterValue = true
            case (6, 2): hasLegacyEvent = true
            case (4, 2):
                state.report.debugAnnotations += 1
                if try readDebugAnnotation(f.bytes, seq, offset, depth: 0) { usedIids = true }
            case (47, _), (48, _):
                try ProtoReader.forEachRepeated(f, fixed64: f.wireType != 0) { flow($0, terminating: f.number == 48, offset) }
            case (36, _), (42, _):
                try ProtoReader.forEachRepeated(f, fixed64: f.wireType == 1) { flow($0, terminating: f.number == 42, offset) }
            default: break
            }
        }

        // Interned references. Only slice begins and ends use the name and category (to pair
        // them); an inline one is kept only for those, so that inline names of instants and
        // counters (the log messages past the generator's interning cap) cost no memory.
        let isSlice = type == 1 || type == 2
        var name: Int32 = 0
        if nameIid != 0 {
            if let entry = lookup(seq, .name, nameIid, offset) { name = entry }
        } else if isSlice, let inlineName {
            name = state.intern(inlineName)
        }
        var category: Int32 = 0
        if categoryIidCount == 1 && inlineCategoryCount == 0 {
            category = lookup(seq, .category, categoryIid, offset)
                ?? (isSlice ? state.intern("unknown(\(categoryIid))") : 0)
        } else if categoryIidCount == 0 && inlineCategoryCount == 1 {
            category = isSlice ? state.intern(inlineCategory) : 0
        } else if categoryIidCount + inlineCategoryCount > 1 {
            category = try joinedCategories(bytes, seq, offset)
        }
        if locationIid != 0 { _ = lookup(seq, .location, locationIid, offset) }

        let trackUUID = track ?? seq.defaultTrack ?? 0
        let isCounterTrack: Bool
        if trackUUID == lastTrackUUID, let cached = lastTrackIsCounter {
            isCounterTrack = cached
        } else if let info = tracks[trackUUID] {
            isCounterTrack = info.isCounter
            lastTrackUUID = trackUUID
            lastTrackIsCounter = isCounterTrack
        } else {
            isCounterTrack = false
            if trackUUID != 0 && referencedTracks[trackUUID] == nil { referencedTracks[trackUUID] = offset }
        }
        let ts: Int64
        if let timestamp {
            ts = Int64(truncatingIfNeeded: timestamp)
            latestTimestamp = ts
        } else {
            state.problem(.eventWithoutTimestamp, offset, "TrackEvent packet without a timestamp")
            ts = latestTimestamp
        }
        switch type {
        case 1, 2:
            if isCounterTrack {
                state.problem(.sliceOnCounterTrack, offset, "slice event on counter track \(trackUUID)")
            }
            eventSeq += 1
            let m = model(trackUUID)
            let heldBefore = m.held
            defer {
                heldEvents += m.held - heldBefore
                if lagging && heldEvents > heldEventLimit { stopLagging() }
            }
            if type == 1 {
                state.report.slices += 1
                let id = nextSlice
                nextSlice += 1
                m.arriveBegin(.init(ts: ts, seq: eventSeq, isEnd: false, name: name, category: category, slice: id,
                                    offset: offset), state)
            } else {
                state.report.sliceEnds += 1
                m.arriveEnd(.init(ts: ts, seq: eventSeq, isEnd: true, name: name, category: category, slice: -1,
                                  offset: offset), state)
            }
        case 3:
            state.report.instants += 1
            if isCounterTrack {
                state.problem(.sliceOnCounterTrack, offset, "instant event on counter track \(trackUUID)")
            }
        case 4:
            state.report.counters += 1
            if !isCounterTrack {
                state.problem(.counterOnNonCounterTrack, offset,
                              "TYPE_COUNTER event on track \(trackUUID), not described as a counter track before it")
            } else if !hasCounterValue {
                state.problem(.counterOnNonCounterTrack, offset, "TYPE_COUNTER event without a value")
            }
        default:
            if !hasLegacyEvent {
                state.problem(.eventWithoutType, offset, "TrackEvent of type \(type) (Perfetto rejects it)")
            }
        }
        return usedIids
    }

    /// Perfetto's category for several categories: their names joined with commas
    /// (interned ones first, unknown iids left out).
    private func joinedCategories(_ bytes: UnsafeRawBufferPointer, _ seq: SequenceState,
                                  _ offset: Int64) throws(MalformedProto) -> Int32 {
        var iids: [UInt64] = []
        var inline: [String] = []
        var r = ProtoReader(bytes)
        while let f = try r.next() {
            if f.number == 3 { try ProtoReader.forEachRepeated(f, fixed64: false) { iids.append($0) } }
            if f.number == 22 && f.wireType == 2 { inline.append(String(decoding: f.bytes, as: UTF8.self)) }
        }
        var joined: [String] = []
        for iid in iids { if let c = lookup(seq, .category, iid, offset) { joined.append(state.string(c)) } }
        joined += inline
        return joined.isEmpty ? 0 : state.intern(joined.joined(separator: ","))
    }

    /// Checks a DebugAnnotation's interned ids (name_iid, string_value_iid), nested ones too.
    private func readDebugAnnotation(_ bytes: UnsafeRawBufferPointer, _ seq: SequenceState, _ offset: Int64,
                                     depth: Int) throws(MalformedProto) -> Bool {
        guard depth < 32 else { return false }
        var used = false
        var r = ProtoReader(bytes)
        while let f = try r.next() {
            switch (f.number, f.wireType) {
            case (1, 0): used = true; _ = lookup(seq, .debugName, f.value, offset)
            case (17, 0): used = true; _ = lookup(seq, .debugString, f.value, offset)
            case (11, 2), (12, 2):  // dict_entries, array_values
                if try readDebugAnnotation(f.bytes, seq, offset, depth: depth + 1) { used = true }
            default: break
            }
        }
        return used
    }

    private func lookup(_ seq: SequenceState, _ kind: InternKind, _ iid: UInt64, _ offset: Int64) -> Int32? {
        if let s = seq.tables[kind.rawValue].get(iid) { return s }
        state.problem(.internedIdUndefined, offset,
                      "\(kind.label) iid \(iid) used before it is defined on this sequence")
        return nil
    }

    private func flow(_ id: UInt64, terminating: Bool, _ offset: Int64) {
        if let count = flows[id] {
            if terminating {
                flows[id] = nil
                flowOffsets[id] = nil
            } else {
                flows[id] = count == .max ? count : count + 1
            }
        } else if !terminating {
            state.report.flows += 1
            flows[id] = 1
            flowOffsets[id] = offset
        } else {
            // Terminating a flow that is not active: Perfetto ignores it.
            state.report.flows += 1
            state.problem(.flowUnconnected, offset, "terminating flow id \(id) was never begun")
        }
    }

    /// Too many events held: every track releases events as soon as a begin passes them.
    private func stopLagging() {
        lagging = false
        heldEvents = 0
        for m in models.values {
            m.stopLagging(state)
            heldEvents += m.held
        }
    }

    private func model(_ uuid: UInt64) -> SliceTrackModel {
        if uuid == lastModelUUID, let m = lastModel { return m }
        let m: SliceTrackModel
        if let existing = models[uuid] {
            m = existing
        } else {
            m = SliceTrackModel(uuid: uuid, lagging: lagging)
            models[uuid] = m
        }
        lastModelUUID = uuid
        lastModel = m
        return m
    }
}

/// The report being built, and the strings (names, categories) events refer to.
final class ValidationState {
    var report = ValidationReport()
    private var examplesPerKind = [Int](repeating: 0, count: ValidationProblemKind.countSlots)
    private var stringIds: [UInt64: Int32] = [:]
    /// Index 0 is the null string (no name).
    private var strings: [String] = [""]

    func problem(_ kind: ValidationProblemKind, _ offset: Int64, _ message: @autoclosure () -> String) {
        let k = Int(kind.rawValue)
        report.problemCounts[k] += 1
        if examplesPerKind[k] < TraceValidator.maxExamplesPerKind {
            examplesPerKind[k] += 1
            report.examples.append(ValidationExample(kind: kind, packetOffset: offset, message: message()))
        }
    }

    func problemCountOnly(_ kind: ValidationProblemKind) { report.problemCounts[Int(kind.rawValue)] += 1 }

    /// A string's id (> 0), by content.
    func intern(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        let h = XXH64.hash(bytes, seed: 0x5EED)
        if let id = stringIds[h] { return id }
        let id = Int32(truncatingIfNeeded: strings.count)
        strings.append(String(decoding: bytes, as: UTF8.self))
        stringIds[h] = id
        return id
    }

    func intern(_ string: String) -> Int32 {
        var s = string
        return s.withUTF8 { intern(UnsafeRawBufferPointer($0)) }
    }

    func string(_ id: Int32) -> String {
        id > 0 && Int(id) < strings.count ? strings[Int(id)] : "(no name)"
    }
}

enum InternKind: Int {
    case category = 0, name, debugName, location, debugString

    var label: String {
        switch self {
        case .category: return "event category"
        case .name: return "event name"
        case .debugName: return "debug annotation name"
        case .location: return "source location"
        case .debugString: return "debug annotation string"
        }
    }
}

/// One interned table of a sequence: iid -> (value hash, string id).
struct InternTable64 {
    private var dense: [UInt64] = []  // value hash | 1 (0 = undefined), for iid < denseLimit
    private var denseStrings: [Int32] = []
    private var sparse: [UInt64: (UInt64, Int32)] = [:]
    private static let denseLimit: UInt64 = 1 << 16

    /// Defines `iid`; returns the previous hash when it was defined with another value.
    mutating func define(_ iid: UInt64, hash: UInt64, string: Int32) -> UInt64? {
        let h = hash | 1
        if iid < Self.denseLimit {
            let i = Int(iid)
            if i >= dense.count {
                let n = Swift.max(i + 1, dense.count * 2)
                dense.append(contentsOf: repeatElement(0, count: n - dense.count))
                denseStrings.append(contentsOf: repeatElement(0, count: n - denseStrings.count))
            }
            let old = dense[i]
            if old != 0 && old != h { return old }
            dense[i] = h
            denseStrings[i] = string
            return nil
        }
        if let (old, _) = sparse[iid], old != h { return old }
        sparse[iid] = (h, string)
        return nil
    }

    @inline(__always)
    func get(_ iid: UInt64) -> Int32? {
        if iid < Self.denseLimit {
            let i = Int(iid)
            return i < dense.count && dense[i] != 0 ? denseStrings[i] : nil
        }
        return sparse[iid]?.1
    }
}

final class SequenceState {
    let firstOffset: Int64
    /// Whether incremental state was cleared at least once.
    var valid = false
    var reportedNotCleared = false
    var tables = [InternTable64](repeating: InternTable64(), count: 5)
    var defaultTrack: UInt64?

    init(firstOffset: Int64) { self.firstOffset = firstOffset }

    func clear() {
        valid = true
        for i in tables.indices { tables[i] = InternTable64() }
        defaultTrack = nil
    }
}

struct TrackInfo {
    enum Kind { case plain, process, thread }
    var kind = Kind.plain
    var pid: Int64?
    var parent: UInt64 = 0
    var isCounter = false
    var hash: UInt64 = 0
    var offset: Int64

    init(offset: Int64) { self.offset = offset }
}
