/// Encodes the TracePackets micromegas writes, each framed as a `Trace.packet` field,
/// in prost's field order (docs/byte-format.md).
///
/// Every function computes the packet's exact size, reserves it once in the buffer and
/// writes it through a cursor: no scratch buffer, no allocation once the buffer is warm.
enum PacketEncoder {
    // Tags (field number << 3 | wire type), as single bytes where they fit.
    static let tracePacketTag: UInt8 = 0x0A        // Trace.packet = 1, bytes
    static let timestampTag: UInt8 = 0x40          // TracePacket.timestamp = 8, varint
    static let trustedSequenceIdTag: UInt8 = 0x50  // TracePacket.trusted_packet_sequence_id = 10
    static let trackEventTag: UInt8 = 0x5A         // TracePacket.track_event = 11, bytes
    static let internedDataTag: UInt8 = 0x62       // TracePacket.interned_data = 12, bytes
    static let sequenceFlagsTag: UInt8 = 0x68      // TracePacket.sequence_flags = 13
    static let trackDescriptorTag: (UInt8, UInt8) = (0xE2, 0x03)  // TracePacket.track_descriptor = 60
    static let firstPacketTag: (UInt8, UInt8) = (0xB8, 0x05)      // TracePacket.first_packet_on_sequence = 87

    /// The sequence fields every packet ends with.
    struct Sequence {
        /// 3 (incremental state cleared | needs incremental state) on the first packet, else 2.
        var flags: UInt8
        var isFirst: Bool

        /// trusted_packet_sequence_id and sequence_flags (2 bytes each), plus the first-packet flag.
        var size: Int { 4 + (isFirst ? 3 : 0) }
    }

    /// What a track descriptor describes.
    enum TrackKind {
        case process(pid: Int32, name: UnsafeRawBufferPointer)
        case thread(pid: Int32, tid: Int32, name: UnsafeRawBufferPointer, parent: UInt64)
        /// A named track under a parent: the async track and its lanes.
        case named(name: UnsafeRawBufferPointer, parent: UInt64)
    }

    /// A TracePacket holding one TrackDescriptor.
    static func writeDescriptor(uuid: UInt64, kind: TrackKind, sequence: Sequence,
                                into buffer: ByteBuffer) throws(PerfettoError) {
        var descriptorSize = 1 + Wire.varintSize(uuid)
        var innerSize = 0
        switch kind {
        case .process(let pid, let name):
            innerSize = 1 + Wire.int32Size(pid) + Wire.delimitedSize(tagSize: 1, length: name.count)
            descriptorSize += Wire.delimitedSize(tagSize: 1, length: innerSize)
        case .thread(let pid, let tid, let name, let parent):
            innerSize = 1 + Wire.int32Size(pid) + 1 + Wire.int32Size(tid)
                + Wire.delimitedSize(tagSize: 1, length: name.count)
            descriptorSize += Wire.delimitedSize(tagSize: 1, length: innerSize) + 1 + Wire.varintSize(parent)
        case .named(let name, let parent):
            descriptorSize += Wire.delimitedSize(tagSize: 1, length: name.count) + 1 + Wire.varintSize(parent)
        }
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
        switch kind {
        case .process(let pid, let name):
            w.byte(0x1A)  // TrackDescriptor.process = 3
            w.varint(UInt64(innerSize))
            w.byte(0x08)  // ProcessDescriptor.pid = 1
            w.int32(pid)
            w.delimited(tag: 0x32, name)  // ProcessDescriptor.process_name = 6
        case .thread(let pid, let tid, let name, let parent):
            w.byte(0x22)  // TrackDescriptor.thread = 4
            w.varint(UInt64(innerSize))
            w.byte(0x08)  // ThreadDescriptor.pid = 1
            w.int32(pid)
            w.byte(0x10)  // ThreadDescriptor.tid = 2
            w.int32(tid)
            w.delimited(tag: 0x2A, name)  // ThreadDescriptor.thread_name = 5
            w.byte(0x28)  // TrackDescriptor.parent_uuid = 5
            w.varint(parent)
        case .named(let name, let parent):
            w.delimited(tag: 0x12, name)  // TrackDescriptor.name = 2
            w.byte(0x28)  // TrackDescriptor.parent_uuid = 5
            w.varint(parent)
        }
        writeSequence(sequence, &w)
        assert(w.p - start == total, "descriptor size mismatch")
        buffer.commit(total)
    }

    /// Interned entries a packet introduces; an empty buffer pointer with `has* == false` means none.
    struct NewEntries {
        var hasCategory = false
        var category = UnsafeRawBufferPointer(start: nil, count: 0)
        var hasName = false
        var name = UnsafeRawBufferPointer(start: nil, count: 0)
        var hasLocation = false
        var file = UnsafeRawBufferPointer(start: nil, count: 0)

        var isEmpty: Bool { !hasCategory && !hasName && !hasLocation }
    }

    /// The interned ids a track event refers to.
    struct EventIds {
        var category: UInt64
        var name: UInt64
        var location: UInt64
        var line: UInt32
    }

    /// A TracePacket holding one TrackEvent (slice begin = 1, slice end = 2).
    @inline(__always)
    static func writeEvent(type: UInt8, timestamp: UInt64, trackUUID: UInt64, ids: EventIds,
                           new: NewEntries, sequence: Sequence,
                           into buffer: ByteBuffer) throws(PerfettoError) {
        let eventSize = 1 + Wire.varintSize(ids.category) + 2 + 1 + Wire.varintSize(ids.name)
            + 1 + Wire.varintSize(trackUUID) + 2 + Wire.varintSize(ids.location)
        var categorySize = 0, nameSize = 0, locationSize = 0, internedSize = 0
        if !new.isEmpty {
            if new.hasCategory {
                categorySize = 1 + Wire.varintSize(ids.category) + Wire.delimitedSize(tagSize: 1, length: new.category.count)
                internedSize += Wire.delimitedSize(tagSize: 1, length: categorySize)
            }
            if new.hasName {
                nameSize = 1 + Wire.varintSize(ids.name) + Wire.delimitedSize(tagSize: 1, length: new.name.count)
                internedSize += Wire.delimitedSize(tagSize: 1, length: nameSize)
            }
            if new.hasLocation {
                locationSize = 1 + Wire.varintSize(ids.location) + Wire.delimitedSize(tagSize: 1, length: new.file.count)
                    + 1 + Wire.varintSize(UInt64(ids.line))
                internedSize += Wire.delimitedSize(tagSize: 1, length: locationSize)
            }
        }
        var packetSize = 1 + Wire.varintSize(UInt64(eventSize)) + eventSize
            + 1 + Wire.varintSize(timestamp) + sequence.size
        if internedSize > 0 { packetSize += Wire.delimitedSize(tagSize: 1, length: internedSize) }
        let total = Wire.delimitedSize(tagSize: 1, length: packetSize)

        let start = try buffer.reserve(total)
        var w = WireCursor(start)
        w.byte(tracePacketTag)
        w.varint(UInt64(packetSize))
        w.byte(trackEventTag)
        w.varint(UInt64(eventSize))
        w.byte(0x18)  // TrackEvent.category_iids = 3
        w.varint(ids.category)
        w.byte(0x48)  // TrackEvent.type = 9
        w.byte(type)
        w.byte(0x50)  // TrackEvent.name_iid = 10
        w.varint(ids.name)
        w.byte(0x58)  // TrackEvent.track_uuid = 11
        w.varint(trackUUID)
        w.byte(0x90)  // TrackEvent.source_location_iid = 34
        w.byte(0x02)
        w.varint(ids.location)
        w.byte(timestampTag)
        w.varint(timestamp)
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
        writeFirstPacketFlag(sequence, &w)
        assert(w.p - start == total, "event size mismatch")
        buffer.commit(total)
    }

    /// A packet's sequence fields: sequence id, flags, first-packet marker (the tail of
    /// descriptors, counters and lane slices).
    @inline(__always)
    static func writeSequence(_ sequence: Sequence, _ w: inout WireCursor) {
        w.byte(trustedSequenceIdTag)
        w.byte(1)
        w.byte(sequenceFlagsTag)
        w.byte(sequence.flags)
        writeFirstPacketFlag(sequence, &w)
    }

    @inline(__always)
    private static func writeFirstPacketFlag(_ sequence: Sequence, _ w: inout WireCursor) {
        if sequence.isFirst {
            w.byte(firstPacketTag.0)
            w.byte(firstPacketTag.1)
            w.byte(1)
        }
    }
}
