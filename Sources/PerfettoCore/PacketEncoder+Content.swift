/// Packets beyond micromegas' own: track events with debug annotations, flows, inline
/// names and counter values, and the descriptors of counter and merge-keyed tracks.
/// Same discipline as `PacketEncoder`: exact sizes first, one reservation, one pass.
extension PacketEncoder {
    /// Up to three values held inline (no allocation): a packet's debug annotations or
    /// the annotation names it interns.
    struct Few<T> {
        private var a: T?, b: T?, c: T?
        private(set) var count = 0

        init() {}

        /// Adds `value`; a fourth value is ignored (callers add at most three).
        @inline(__always)
        mutating func append(_ value: T) {
            switch count {
            case 0: a = value
            case 1: b = value
            case 2: c = value
            default: return
            }
            count += 1
        }

        @inline(__always)
        subscript(_ i: Int) -> T? {
            switch i {
            case 0: return a
            case 1: return b
            case 2: return c
            default: return nil
            }
        }
    }

    /// A debug annotation with an interned name and an int or string value.
    struct DebugArg {
        var nameIid: UInt64
        /// nil: the value is `int`.
        var string: UnsafeRawBufferPointer?
        var int: Int64 = 0

        /// Size of the DebugAnnotation message body.
        @inline(__always)
        var bodySize: Int {
            let value: Int
            if let string { value = Wire.delimitedSize(tagSize: 1, length: string.count) }
            else { value = 1 + Wire.varintSize(UInt64(bitPattern: int)) }
            return 1 + Wire.varintSize(nameIid) + value
        }
    }

    /// An interned debug annotation name a packet introduces.
    struct NewArgName {
        var iid: UInt64
        var name: UnsafeRawBufferPointer

        var bodySize: Int { 1 + Wire.varintSize(iid) + Wire.delimitedSize(tagSize: 1, length: name.count) }
    }

    /// A TrackEvent with the optional parts micromegas never writes. Zero iids and
    /// flow ids mean "absent".
    struct RichEvent {
        var type: UInt8
        var timestamp: UInt64
        var track: UInt64
        var category: UInt64 = 0
        var nameIid: UInt64 = 0
        /// TrackEvent.name, for a name that is not interned.
        var inlineName: UnsafeRawBufferPointer?
        var location: UInt64 = 0
        var args = Few<DebugArg>()
        /// Flow ids starting at this event (TrackEvent.flow_ids).
        var flowIds: UnsafeBufferPointer<UInt64>?
        var terminatingFlowId: UInt64 = 0

        init(type: UInt8, timestamp: UInt64, track: UInt64) {
            self.type = type
            self.timestamp = timestamp
            self.track = track
        }
    }

    /// A TracePacket holding `event`, with the interned entries it introduces.
    static func writeRichEvent(_ e: RichEvent, ids: EventIds, new: NewEntries, newArgNames: Few<NewArgName>,
                               sequence: Sequence, into buffer: ByteBuffer) throws(PerfettoError) {
        var eventSize = 2 + 1 + Wire.varintSize(e.track)  // type, track_uuid
        if e.category != 0 { eventSize += 1 + Wire.varintSize(e.category) }
        if e.nameIid != 0 { eventSize += 1 + Wire.varintSize(e.nameIid) }
        if let name = e.inlineName { eventSize += Wire.delimitedSize(tagSize: 2, length: name.count) }
        if e.location != 0 { eventSize += 2 + Wire.varintSize(e.location) }
        for i in 0..<e.args.count {
            if let arg = e.args[i] { eventSize += Wire.delimitedSize(tagSize: 1, length: arg.bodySize) }
        }
        let flowCount = e.flowIds?.count ?? 0
        let (flowBytes, overflow) = flowCount.multipliedReportingOverflow(by: 10)
        guard !overflow, flowBytes < Int.max / 2 else { throw .outOfMemory }
        eventSize += flowBytes
        if e.terminatingFlowId != 0 { eventSize += 10 }

        var categorySize = 0, nameSize = 0, locationSize = 0, internedSize = 0
        if new.hasCategory {
            categorySize = 1 + Wire.varintSize(ids.category) + Wire.delimitedSize(tagSize: 1, length: new.category.count)
            internedSize += Wire.delimitedSize(tagSize: 1, length: categorySize)
        }
        if new.hasName {
            nameSize = 1 + Wire.varintSize(ids.name) + Wire.delimitedSize(tagSize: 1, length: new.name.count)
            internedSize += Wire.delimitedSize(tagSize: 1, length: nameSize)
        }
        for i in 0..<newArgNames.count {
            if let n = newArgNames[i] { internedSize += Wire.delimitedSize(tagSize: 1, length: n.bodySize) }
        }
        if new.hasLocation {
            locationSize = 1 + Wire.varintSize(ids.location) + Wire.delimitedSize(tagSize: 1, length: new.file.count)
                + 1 + Wire.varintSize(UInt64(ids.line))
            internedSize += Wire.delimitedSize(tagSize: 1, length: locationSize)
        }
        var packetSize = Wire.delimitedSize(tagSize: 1, length: eventSize) + 1 + Wire.varintSize(e.timestamp)
            + sequence.size
        if internedSize > 0 { packetSize += Wire.delimitedSize(tagSize: 1, length: internedSize) }
        let total = Wire.delimitedSize(tagSize: 1, length: packetSize)

        let start = try buffer.reserve(total)
        var w = WireCursor(start)
        w.byte(tracePacketTag)
        w.varint(UInt64(packetSize))
        w.byte(trackEventTag)
        w.varint(UInt64(eventSize))
        if e.category != 0 {
            w.byte(0x18)  // TrackEvent.category_iids = 3
            w.varint(e.category)
        }
        for i in 0..<e.args.count {
            guard let arg = e.args[i] else { continue }
            w.byte(0x22)  // TrackEvent.debug_annotations = 4
            w.varint(UInt64(arg.bodySize))
            w.byte(0x08)  // DebugAnnotation.name_iid = 1
            w.varint(arg.nameIid)
            if let string = arg.string {
                w.delimited(tag: 0x32, string)  // DebugAnnotation.string_value = 6
            } else {
                w.byte(0x20)  // DebugAnnotation.int_value = 4
                w.varint(UInt64(bitPattern: arg.int))
            }
        }
        w.byte(0x48)  // TrackEvent.type = 9
        w.byte(e.type)
        if e.nameIid != 0 {
            w.byte(0x50)  // TrackEvent.name_iid = 10
            w.varint(e.nameIid)
        }
        w.byte(0x58)  // TrackEvent.track_uuid = 11
        w.varint(e.track)
        if let name = e.inlineName {
            w.delimited(tag: 186, name)  // TrackEvent.name = 23 (tag 23 << 3 | 2, two varint bytes)
        }
        if e.location != 0 {
            w.byte(0x90)  // TrackEvent.source_location_iid = 34
            w.byte(0x02)
            w.varint(e.location)
        }
        if let flows = e.flowIds {
            for id in flows {
                w.byte(0xF9)  // TrackEvent.flow_ids = 47, fixed64
                w.byte(0x02)
                w.fixed64(id)
            }
        }
        if e.terminatingFlowId != 0 {
            w.byte(0x81)  // TrackEvent.terminating_flow_ids = 48, fixed64
            w.byte(0x03)
            w.fixed64(e.terminatingFlowId)
        }
        w.byte(timestampTag)
        w.varint(e.timestamp)
        w.byte(trustedSequenceIdTag)
        w.byte(1)
        if internedSize > 0 {
            w.byte(internedDataTag)
            w.varint(UInt64(internedSize))
            if new.hasCategory {
                w.byte(0x0A)  // InternedData.event_categories = 1
                w.varint(UInt64(categorySize))
                w.byte(0x08)  // EventCategory.iid = 1
                w.varint(ids.category)
                w.delimited(tag: 0x12, new.category)  // EventCategory.name = 2
            }
            if new.hasName {
                w.byte(0x12)  // InternedData.event_names = 2
                w.varint(UInt64(nameSize))
                w.byte(0x08)  // EventName.iid = 1
                w.varint(ids.name)
                w.delimited(tag: 0x12, new.name)  // EventName.name = 2
            }
            for i in 0..<newArgNames.count {
                guard let n = newArgNames[i] else { continue }
                w.byte(0x1A)  // InternedData.debug_annotation_names = 3
                w.varint(UInt64(n.bodySize))
                w.byte(0x08)  // DebugAnnotationName.iid = 1
                w.varint(n.iid)
                w.delimited(tag: 0x12, n.name)  // DebugAnnotationName.name = 2
            }
            if new.hasLocation {
                w.byte(0x22)  // InternedData.source_locations = 4
                w.varint(UInt64(locationSize))
                w.byte(0x08)  // SourceLocation.iid = 1
                w.varint(ids.location)
                w.delimited(tag: 0x12, new.file)  // SourceLocation.file_name = 2
                w.byte(0x20)  // SourceLocation.line_number = 4
                w.varint(UInt64(ids.line))
            }
        }
        w.byte(sequenceFlagsTag)
        w.byte(sequence.flags)
        if sequence.isFirst {
            w.byte(firstPacketTag.0)
            w.byte(firstPacketTag.1)
            w.byte(1)
        }
        assert(w.p - start == total, "rich event size mismatch")
        buffer.commit(total)
    }

    /// A TracePacket holding one counter value (TYPE_COUNTER, double_counter_value).
    @inline(__always)
    static func writeCounter(timestamp: UInt64, track: UInt64, value: Double, sequence: Sequence,
                             into buffer: ByteBuffer) throws(PerfettoError) {
        let eventSize = 2 + 1 + Wire.varintSize(track) + 2 + 8
        let packetSize = 1 + 1 + eventSize + 1 + Wire.varintSize(timestamp) + sequence.size
        let total = 1 + Wire.varintSize(UInt64(packetSize)) + packetSize
        let start = try buffer.reserve(total)
        var w = WireCursor(start)
        w.byte(tracePacketTag)
        w.varint(UInt64(packetSize))
        w.byte(trackEventTag)
        w.byte(UInt8(eventSize))  // < 128
        w.byte(0x48)  // TrackEvent.type = 9
        w.byte(4)     // TYPE_COUNTER
        w.byte(0x58)  // TrackEvent.track_uuid = 11
        w.varint(track)
        w.byte(0xE1)  // TrackEvent.double_counter_value = 44, fixed64
        w.byte(0x02)
        w.fixed64(value.bitPattern)
        w.byte(timestampTag)
        w.varint(timestamp)
        writeSequence(sequence, &w)
        assert(w.p - start == total, "counter size mismatch")
        buffer.commit(total)
    }

    /// What a descriptor of `writeTrackDescriptor` adds to a named track.
    struct TrackExtras {
        /// Writes `counter { unit }` (with no unit when `.unspecified`).
        var counter: CounterUnit?
        /// sibling_merge_behavior = BY_SIBLING_MERGE_KEY (3) and this sibling_merge_key.
        var mergeKey: UnsafeRawBufferPointer?
        init(counter: CounterUnit? = nil, mergeKey: UnsafeRawBufferPointer? = nil) {
            self.counter = counter
            self.mergeKey = mergeKey
        }
    }

    /// A TracePacket holding a TrackDescriptor of a named track under `parent` with `extras`.
    static func writeTrackDescriptor(uuid: UInt64, name: UnsafeRawBufferPointer, parent: UInt64, extras: TrackExtras,
                                     sequence: Sequence, into buffer: ByteBuffer) throws(PerfettoError) {
        var descriptorSize = 1 + Wire.varintSize(uuid) + Wire.delimitedSize(tagSize: 1, length: name.count)
            + 1 + Wire.varintSize(parent)
        var counterSize = 0
        if let unit = extras.counter {
            counterSize = unit == .unspecified ? 0 : 2
            descriptorSize += Wire.delimitedSize(tagSize: 1, length: counterSize)
        }
        if let key = extras.mergeKey { descriptorSize += 2 + Wire.delimitedSize(tagSize: 2, length: key.count) }
        let packetSize = Wire.delimitedSize(tagSize: 2, length: descriptorSize) + sequence.size
        let total = Wire.delimitedSize(tagSize: 1, length: packetSize)

        let start = try buffer.reserve(total)
        var w = WireCursor(start)
        w.byte(tracePacketTag)
        w.varint(UInt64(packetSize))
        w.byte(trackDescriptorTag.0)
        w.byte(trackDescriptorTag.1)
        w.varint(UInt64(descriptorSize))
        w.byte(0x08)  // TrackDescriptor.uuid = 1
        w.varint(uuid)
        w.delimited(tag: 0x12, name)  // TrackDescriptor.name = 2
        w.byte(0x28)  // TrackDescriptor.parent_uuid = 5
        w.varint(parent)
        if let unit = extras.counter {
            w.byte(0x42)  // TrackDescriptor.counter = 8
            w.varint(UInt64(counterSize))
            if unit != .unspecified {
                w.byte(0x18)  // CounterDescriptor.unit = 3
                w.byte(unit.rawValue)
            }
        }
        if let key = extras.mergeKey {
            w.byte(0x78)  // TrackDescriptor.sibling_merge_behavior = 15
            w.byte(3)     // SIBLING_MERGE_BEHAVIOR_BY_SIBLING_MERGE_KEY
            w.delimited(tag: 130, key)  // TrackDescriptor.sibling_merge_key = 16 (tag 16 << 3 | 2)
        }
        writeSequence(sequence, &w)
        assert(w.p - start == total, "track descriptor size mismatch")
        buffer.commit(total)
    }
}

extension PacketEncoder {
    /// Writes one TracePacket holding a TrackEvent without computing any size first:
    /// `event` writes the TrackEvent's fields and `tail` the packet's own after it; both
    /// together must fit in `bound` - 8 bytes. They are written 4 bytes in (room for the
    /// packet and event tags and one-byte lengths); when a length needs more bytes, the
    /// fields move up behind the longer header. The bytes are those of computing the
    /// sizes first. `bound` counts every field at its largest, so `wideVarint` (10 bytes
    /// of room) can write any of them.
    /// Returns the header's size (4, or more when the fields moved up).
    @inline(__always) @discardableResult
    static func writeUnsizedEvent(bound: Int, into buffer: ByteBuffer, event: (inout WireCursor) -> Void,
                                  tail: (inout WireCursor) -> Void) throws(PerfettoError) -> Int {
        let start = try buffer.reserve(bound)
        var w = WireCursor(start + 4)
        event(&w)
        let eventSize = w.p - (start + 4)
        tail(&w)
        let bodySize = w.p - (start + 4)
        let packetSize = 2 + bodySize
        if eventSize < 128 && packetSize < 128 {
            start[0] = tracePacketTag
            start[1] = UInt8(truncatingIfNeeded: packetSize)
            start[2] = trackEventTag
            start[3] = UInt8(truncatingIfNeeded: eventSize)
            buffer.commit(4 + bodySize)
            return 4
        }
        let eventHeader = 1 + Wire.varintSize(UInt64(eventSize))
        let longPacketSize = eventHeader + bodySize
        let header = 1 + Wire.varintSize(UInt64(longPacketSize)) + eventHeader
        UnsafeMutableRawPointer(start + header).copyMemory(from: start + 4, byteCount: bodySize)  // memmove
        var h = WireCursor(start)
        h.byte(tracePacketTag)
        h.varint(UInt64(longPacketSize))
        h.byte(trackEventTag)
        h.varint(UInt64(eventSize))
        assert(h.p == start + header, "unsized event header mismatch")
        buffer.commit(header + bodySize)
        return header
    }

    /// The packet fields after a TrackEvent: timestamp and the sequence fields.
    @inline(__always)
    static func writeEventTail(timestamp: UInt64, sequence: Sequence, _ w: inout WireCursor) {
        w.byte(timestampTag)
        w.wideVarint(timestamp)
        writeSequence(sequence, &w)
    }

    /// An async lane slice's begin packet when it introduces no interned entry: exactly
    /// `writeRichEvent`'s bytes for an event of type 1 with a category, a name and a
    /// source location (all non-zero), optional `span_id` / `parent_span_id` int args
    /// (`args`: their name iids and values), flows starting here and the one ending here
    /// (0: none), without the general event's optional parts.
    @inline(__always)
    static func writeLaneBegin(timestamp: UInt64, track: UInt64, ids: EventIds,
                               args: (UInt64, Int64, UInt64, Int64)?, flowIds: UnsafeBufferPointer<UInt64>?,
                               terminatingFlowId: UInt64, sequence: Sequence,
                               into buffer: ByteBuffer) throws(PerfettoError) -> LaneEndFields {
        // Header 8, category 11, args 2 x 24, type 2, name 11, track 11, location 12,
        // flows 10 each, terminating flow 10, tail 18 (fewer than 2^31 flows: no overflow).
        let bound = 131 + 10 * (flowIds?.count ?? 0)
        var categoryEnd = 0, nameStart = 0, locationEnd = 0
        let before = buffer.count
        let header = try writeUnsizedEvent(bound: bound, into: buffer, event: { w in
            let fields = w.p
            w.byte(0x18)  // TrackEvent.category_iids = 3
            w.varint(ids.category)
            categoryEnd = w.p - fields
            if let args { writeSpanArgs(args, &w) }
            w.byte(0x48)  // TrackEvent.type = 9
            w.byte(1)     // TYPE_SLICE_BEGIN
            nameStart = w.p - fields
            writeLaneNameTrackLocation(ids: ids, track: track, &w)
            locationEnd = w.p - fields
            writeFlowIds(flowIds, terminating: terminatingFlowId, &w)
        }, tail: { w in writeEventTail(timestamp: timestamp, sequence: sequence, &w) })
        return LaneEndFields(packetEnd: buffer.count, length: buffer.count - before,
                             category: header ..< header + categoryEnd, rest: header + nameStart ..< header + locationEnd)
    }

    /// A lane begin's span args (`args`: two name iids and their values) as two
    /// `TrackEvent.debug_annotations`, each body at most 22 bytes: a one-byte length,
    /// filled in once the body is written.
    @inline(__always)
    static func writeSpanArgs(_ args: (UInt64, Int64, UInt64, Int64), _ w: inout WireCursor) {
        writeIntArg(name: args.0, value: args.1, &w)
        writeIntArg(name: args.2, value: args.3, &w)
    }

    @inline(__always)
    private static func writeIntArg(name: UInt64, value: Int64, _ w: inout WireCursor) {
        w.byte(0x22)  // TrackEvent.debug_annotations = 4
        let length = w.p
        w.p += 1
        w.byte(0x08)  // DebugAnnotation.name_iid = 1
        w.varint(name)
        w.byte(0x20)  // DebugAnnotation.int_value = 4
        w.varint(UInt64(bitPattern: value))
        length.pointee = UInt8(truncatingIfNeeded: gap(length, w.p) &- 1)
    }

    /// The flows starting at a lane begin (`TrackEvent.flow_ids`) and the one ending there
    /// (`terminating_flow_ids`; 0: none), as fixed64 fields.
    @inline(__always)
    static func writeFlowIds(_ flowIds: UnsafeBufferPointer<UInt64>?, terminating: UInt64, _ w: inout WireCursor) {
        if let flows = flowIds {
            for id in flows {
                w.byte(0xF9)  // TrackEvent.flow_ids = 47, fixed64
                w.byte(0x02)
                w.fixed64(id)
            }
        }
        if terminating != 0 {
            w.byte(0x81)  // TrackEvent.terminating_flow_ids = 48, fixed64
            w.byte(0x03)
            w.fixed64(terminating)
        }
    }

    /// Room `writeLaneSlice` reserves: both packets at their largest (`writeLaneBegin`'s 131
    /// bytes and 10 per flow, `writeLaneEnd`'s 73) and 40 bytes of whole-word reads and
    /// writes past them.
    @inline(__always)
    static func laneSliceBound(flowCount: Int) -> Int { 244 &+ 10 &* flowCount }

    /// A lane slice's begin packet and, right after it, its end packet, neither the first of
    /// the sequence (flags 2) and neither introducing an interned entry: exactly
    /// `writeLaneBegin` then `writeLaneEnd`'s bytes, in one reservation. The end's fields are
    /// copied from the begin packet. `flowIds` holds fewer than 2^31 ids (the caller checks
    /// the bound: no overflow).
    /// `track` is the slice's `TrackEvent.track_uuid` field (`trackField`). Not inlined: in
    /// its caller it made the whole slice path larger (13 M more instructions).
    static func writeLaneSlice(begin: UInt64, end: UInt64, track: PackedField, ids: EventIds,
                               args: (UInt64, Int64, UInt64, Int64)?, flowIds: UnsafeBufferPointer<UInt64>?,
                               terminatingFlowId: UInt64, into buffer: ByteBuffer) throws(PerfettoError) {
        let start = try buffer.reserve(laneSliceBound(flowCount: flowIds?.count ?? 0))
        let sequence = Sequence(flags: 2, isFirst: false)
        // The begin packet's fields, 4 bytes in (as `writeUnsizedEvent`).
        let fields = start + 4
        var w = WireCursor(fields)
        w.byte(0x18)  // TrackEvent.category_iids = 3
        w.varint(ids.category)
        let categoryEnd = w.p
        if let args { writeSpanArgs(args, &w) }
        w.byte(0x48)  // TrackEvent.type = 9
        w.byte(1)     // TYPE_SLICE_BEGIN
        let rest = w.p
        w.byte(0x50)  // TrackEvent.name_iid = 10
        w.varint(ids.name)
        w.field(track)
        w.byte(0x90)  // TrackEvent.source_location_iid = 34
        w.byte(0x02)
        w.varint(ids.location)
        let restEnd = w.p
        writeFlowIds(flowIds, terminating: terminatingFlowId, &w)
        let eventSize = gap(fields, w.p)
        writeEventTail(timestamp: begin, sequence: sequence, &w)
        let bodySize = gap(fields, w.p)
        // The header: one-byte lengths, or longer ones with the fields moved up behind them.
        var header = 4
        if eventSize < 128 && bodySize &+ 2 < 128 {
            start[0] = tracePacketTag
            start[1] = UInt8(truncatingIfNeeded: bodySize &+ 2)
            start[2] = trackEventTag
            start[3] = UInt8(truncatingIfNeeded: eventSize)
        } else {
            let eventHeader = 1 &+ Wire.varintSize(UInt64(eventSize))
            let longPacketSize = eventHeader &+ bodySize
            header = 1 &+ Wire.varintSize(UInt64(longPacketSize)) &+ eventHeader
            UnsafeMutableRawPointer(start + header).copyMemory(from: fields, byteCount: bodySize)  // memmove
            var h = WireCursor(start)
            h.byte(tracePacketTag)
            h.varint(UInt64(longPacketSize))
            h.byte(trackEventTag)
            h.varint(UInt64(eventSize))
        }
        let moved = header &- 4
        let beginLength = header &+ bodySize
        // The end packet, its fields copied from the begin's (their words read stay in the reservation).
        let endStart = start + beginLength
        let endFields = endStart + 4
        var e = WireCursor(endFields)
        copyLaneEndFields(category: UnsafeRawPointer(fields + moved), categoryCount: gap(fields, categoryEnd),
                          rest: UnsafeRawPointer(rest + moved), restCount: gap(rest, restEnd), &e)
        let endEventSize = gap(endFields, e.p)
        writeEventTail(timestamp: end, sequence: sequence, &e)
        let endBodySize = gap(endFields, e.p)
        endStart[0] = tracePacketTag
        endStart[1] = UInt8(truncatingIfNeeded: endBodySize &+ 2)
        endStart[2] = trackEventTag
        endStart[3] = UInt8(truncatingIfNeeded: endEventSize)
        buffer.commit(beginLength &+ 4 &+ endBodySize)
    }

    /// A lane end packet's event fields at `w`, copied from its begin packet: the category
    /// (`categoryCount` <= 11 bytes at `category`, moved as 16), TYPE_SLICE_END, then the name,
    /// track and location (`restCount` <= 34 bytes at `rest`, moved as 40). Every word is read
    /// before any is written, so the words read may reach into the bytes written; `w` needs 40
    /// bytes of room past its fields (what is stored past a field is overwritten or never committed).
    @inline(__always)
    static func copyLaneEndFields(category: UnsafeRawPointer, categoryCount: Int, rest: UnsafeRawPointer,
                                  restCount: Int, _ w: inout WireCursor) {
        let c0 = category.loadUnaligned(as: UInt64.self), c1 = category.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let r0 = rest.loadUnaligned(as: UInt64.self), r1 = rest.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let r2 = rest.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        let r3 = rest.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
        let r4 = rest.loadUnaligned(fromByteOffset: 32, as: UInt64.self)
        let out = UnsafeMutableRawPointer(w.p)
        out.storeBytes(of: c0, as: UInt64.self)
        out.storeBytes(of: c1, toByteOffset: 8, as: UInt64.self)
        w.p += categoryCount
        w.byte(0x48)  // TrackEvent.type = 9
        w.byte(2)     // TYPE_SLICE_END
        let restOut = UnsafeMutableRawPointer(w.p)
        restOut.storeBytes(of: r0, as: UInt64.self)
        restOut.storeBytes(of: r1, toByteOffset: 8, as: UInt64.self)
        restOut.storeBytes(of: r2, toByteOffset: 16, as: UInt64.self)
        restOut.storeBytes(of: r3, toByteOffset: 24, as: UInt64.self)
        restOut.storeBytes(of: r4, toByteOffset: 32, as: UInt64.self)
        w.p += restCount
    }

    /// A field's bytes (its tag and a varint: at most 11), as two little-endian words and
    /// their count: written with two stores.
    struct PackedField {
        var low: UInt64
        var high: UInt64
        var count: Int
    }

    /// The `TrackEvent.track_uuid` field of `track` (the same bytes as
    /// `writeLaneNameTrackLocation` writes for it), computed once per lane.
    static func trackField(_ track: UInt64) -> PackedField {
        var words: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for 11 bytes and wideVarint's 8-byte stores
        var count = 0
        withUnsafeMutableBytes(of: &words) { raw in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
            var w = WireCursor(base)
            w.byte(0x58)  // TrackEvent.track_uuid = 11
            w.varint(track)
            count = w.p - base
        }
        return PackedField(low: UInt64(littleEndian: words.0), high: UInt64(littleEndian: words.1), count: count)
    }

    /// The bytes from `a` to `b` (b >= a, both in one reservation), without overflow checks.
    @inline(__always)
    private static func gap(_ a: UnsafeMutablePointer<UInt8>, _ b: UnsafeMutablePointer<UInt8>) -> Int {
        Int(bitPattern: b) &- Int(bitPattern: a)
    }

    /// Where a lane begin packet holds the fields its end packet repeats (offsets from the
    /// packet's start): the category, and the name, track and source location.
    struct LaneEndFields {
        /// The buffer's byte count right after the begin packet, and the packet's length.
        var packetEnd: Int
        var length: Int
        var category: Range<Int>
        var rest: Range<Int>
    }

    /// A lane slice's name, track and source location fields (the same bytes in its begin and
    /// its end packet).
    @inline(__always)
    static func writeLaneNameTrackLocation(ids: EventIds, track: UInt64, _ w: inout WireCursor) {
        w.byte(0x50)  // TrackEvent.name_iid = 10
        w.varint(ids.name)
        w.byte(0x58)  // TrackEvent.track_uuid = 11
        w.wideVarint(track)
        w.byte(0x90)  // TrackEvent.source_location_iid = 34
        w.byte(0x02)
        w.varint(ids.location)
    }

    /// The end packet of the lane slice whose begin packet `fields` describes, written right
    /// after it (`buffer.count == fields.packetEnd`): its event fields are copied from the
    /// begin packet (they are the same bytes), so exactly `writeLaneEnd`'s bytes.
    @inline(__always)
    static func writeLaneEnd(after fields: LaneEndFields, timestamp: UInt64, sequence: Sequence,
                             into buffer: ByteBuffer) throws(PerfettoError) {
        // Header 4, category <= 11, type 2, the rest <= 34, tail <= 18: one-byte lengths.
        let start = try buffer.reserve(73)
        // The begin packet ends where this one starts (reserving may have moved both).
        let begin = UnsafeRawPointer(start - fields.length)
        // The words copied stay in the begin packet and this packet's reservation.
        var w = WireCursor(start + 4)
        copyLaneEndFields(category: begin + fields.category.lowerBound, categoryCount: fields.category.count,
                          rest: begin + fields.rest.lowerBound, restCount: fields.rest.count, &w)
        let eventSize = w.p - (start + 4)
        writeEventTail(timestamp: timestamp, sequence: sequence, &w)
        let bodySize = w.p - (start + 4)
        start[0] = tracePacketTag
        start[1] = UInt8(truncatingIfNeeded: 2 + bodySize)
        start[2] = trackEventTag
        start[3] = UInt8(truncatingIfNeeded: eventSize)
        buffer.commit(4 + bodySize)
    }

    /// A slice's end packet (type 2) with no interned entries: exactly `writeEvent`'s bytes.
    @inline(__always)
    static func writeLaneEnd(timestamp: UInt64, track: UInt64, ids: EventIds, sequence: Sequence,
                             into buffer: ByteBuffer) throws(PerfettoError) {
        // Header 8, category 11, type 2, name 11, track 11, location 12, tail 18.
        try writeUnsizedEvent(bound: 73, into: buffer, event: { w in
            w.byte(0x18)  // TrackEvent.category_iids = 3
            w.varint(ids.category)
            w.byte(0x48)  // TrackEvent.type = 9
            w.byte(2)     // TYPE_SLICE_END
            writeLaneNameTrackLocation(ids: ids, track: track, &w)
        }, tail: { w in writeEventTail(timestamp: timestamp, sequence: sequence, &w) })
    }
}
