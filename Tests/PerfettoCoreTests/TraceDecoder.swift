import Foundation

/// A minimal Perfetto trace decoder for tests: parses the wire format independently of
/// the writer, resolves interned ids like trace processor does, and fails loudly on
/// anything malformed (truncated fields, iids used before they are defined...).
struct TraceDecoder {
    struct DecodeError: Error, CustomStringConvertible { var description: String }

    struct Descriptor: Equatable {
        var uuid: UInt64 = 0
        var name: String?
        var parent: UInt64?
        var pid: Int32?
        var tid: Int32?
        var processName: String?
        var threadName: String?
        /// CounterDescriptor.unit when the track is a counter track (0 when unset).
        var counterUnit: UInt64?
        var siblingMergeBehavior: UInt64?
        var siblingMergeKey: String?
    }

    /// A debug annotation's value.
    enum ArgValue: Equatable {
        case int(Int64)
        case string(String)
    }

    /// A track event with its interned ids resolved.
    struct Event: Equatable {
        var type: UInt64
        var track: UInt64
        var timestamp: UInt64
        var name: String
        var category: String
        var filename: String
        var line: UInt32
        /// Debug annotations by (interned) name, in packet order.
        var args: [String: ArgValue] = [:]
        var argOrder: [String] = []
        var counterValue: Double?
        var flowIds: [UInt64] = []
        var terminatingFlowIds: [UInt64] = []
        /// Whether the name was written inline (TrackEvent.name) rather than interned.
        var inlineName = false
    }

    struct Packet {
        var timestamp: UInt64?
        var trustedSequenceId: UInt64?
        var sequenceFlags: UInt64?
        var firstPacketOnSequence = false
        var descriptor: Descriptor?
        var event: Event?
    }

    struct Reader {
        let bytes: [UInt8]
        var i: Int
        let end: Int

        init(_ bytes: [UInt8], _ range: Range<Int>) {
            self.bytes = bytes
            i = range.lowerBound
            end = range.upperBound
        }

        var atEnd: Bool { i >= end }

        mutating func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard i < end else { throw DecodeError(description: "truncated varint at \(i)") }
                let b = bytes[i]
                i += 1
                guard shift < 64 else { throw DecodeError(description: "varint too long at \(i)") }
                result |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return result }
                shift += 7
            }
        }

        /// The next field: number, wire type, and its varint value or byte range.
        mutating func field() throws -> (number: UInt64, value: UInt64, range: Range<Int>) {
            let tag = try varint()
            switch tag & 7 {
            case 0: return (tag >> 3, try varint(), i..<i)
            case 1:
                guard end - i >= 8 else { throw DecodeError(description: "truncated fixed64 at \(i)") }
                var v: UInt64 = 0
                for k in 0..<8 { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
                i += 8
                return (tag >> 3, v, (i - 8)..<i)
            case 2:
                let length = Int(try varint())
                guard length <= end - i else { throw DecodeError(description: "field length \(length) past end at \(i)") }
                defer { i += length }
                return (tag >> 3, 0, i..<(i + length))
            default: throw DecodeError(description: "unexpected wire type \(tag & 7) at \(i)")
            }
        }
    }

    /// Interning state of the sequence.
    private var names: [UInt64: String] = [:]
    private var categories: [UInt64: String] = [:]
    private var locations: [UInt64: (String, UInt32)] = [:]
    private var argNames: [UInt64: String] = [:]

    init() {}

    static func string(_ bytes: [UInt8], _ range: Range<Int>) throws -> String {
        guard let s = String(validating: bytes[range], as: UTF8.self) else {
            throw DecodeError(description: "invalid UTF-8 at \(range)")
        }
        return s
    }

    /// Decodes a whole Trace (or a chunk, which must parse alone).
    mutating func decode(_ bytes: [UInt8]) throws -> [Packet] {
        var reader = Reader(bytes, 0..<bytes.count)
        var packets: [Packet] = []
        while !reader.atEnd {
            let f = try reader.field()
            guard f.number == 1 else { throw DecodeError(description: "Trace field \(f.number), expected packet") }
            packets.append(try decodePacket(bytes, f.range))
        }
        return packets
    }

    private mutating func decodePacket(_ bytes: [UInt8], _ range: Range<Int>) throws -> Packet {
        var packet = Packet()
        var r = Reader(bytes, range)
        var eventRange: Range<Int>?
        var timestamp: UInt64 = 0
        while !r.atEnd {
            let f = try r.field()
            switch f.number {
            case 8: packet.timestamp = f.value; timestamp = f.value
            case 10: packet.trustedSequenceId = f.value
            case 13: packet.sequenceFlags = f.value
            case 87: packet.firstPacketOnSequence = f.value != 0
            case 60: packet.descriptor = try decodeDescriptor(bytes, f.range)
            case 11: eventRange = f.range
            case 12: try decodeInterned(bytes, f.range)
            default: throw DecodeError(description: "unexpected TracePacket field \(f.number)")
            }
        }
        // Interned data of a packet applies to its own event, whatever the field order.
        if let eventRange { packet.event = try decodeEvent(bytes, eventRange, timestamp: timestamp) }
        return packet
    }

    private func decodeDescriptor(_ bytes: [UInt8], _ range: Range<Int>) throws -> Descriptor {
        var d = Descriptor()
        var r = Reader(bytes, range)
        while !r.atEnd {
            let f = try r.field()
            switch f.number {
            case 1: d.uuid = f.value
            case 2: d.name = try Self.string(bytes, f.range)
            case 5: d.parent = f.value
            case 15: d.siblingMergeBehavior = f.value
            case 16: d.siblingMergeKey = try Self.string(bytes, f.range)
            case 8:
                d.counterUnit = 0
                var inner = Reader(bytes, f.range)
                while !inner.atEnd {
                    let g = try inner.field()
                    guard g.number == 3 else { throw DecodeError(description: "unexpected CounterDescriptor field \(g.number)") }
                    d.counterUnit = g.value
                }
            case 3, 4:
                var inner = Reader(bytes, f.range)
                while !inner.atEnd {
                    let g = try inner.field()
                    switch (f.number, g.number) {
                    case (_, 1): d.pid = Int32(truncatingIfNeeded: g.value)
                    case (4, 2): d.tid = Int32(truncatingIfNeeded: g.value)
                    case (3, 6): d.processName = try Self.string(bytes, g.range)
                    case (4, 5): d.threadName = try Self.string(bytes, g.range)
                    default: throw DecodeError(description: "unexpected descriptor field \(f.number).\(g.number)")
                    }
                }
            default: throw DecodeError(description: "unexpected TrackDescriptor field \(f.number)")
            }
        }
        return d
    }

    private mutating func decodeInterned(_ bytes: [UInt8], _ range: Range<Int>) throws {
        var r = Reader(bytes, range)
        while !r.atEnd {
            let f = try r.field()
            var inner = Reader(bytes, f.range)
            var iid: UInt64 = 0, name = "", line: UInt32 = 0
            while !inner.atEnd {
                let g = try inner.field()
                switch g.number {
                case 1: iid = g.value
                case 2: name = try Self.string(bytes, g.range)
                case 4: line = UInt32(g.value)
                default: throw DecodeError(description: "unexpected interned field \(g.number)")
                }
            }
            switch f.number {
            case 1:
                guard categories[iid] == nil else { throw DecodeError(description: "category iid \(iid) defined twice") }
                categories[iid] = name
            case 2:
                guard names[iid] == nil else { throw DecodeError(description: "name iid \(iid) defined twice") }
                names[iid] = name
            case 3:
                guard argNames[iid] == nil else { throw DecodeError(description: "annotation name iid \(iid) defined twice") }
                guard iid == UInt64(argNames.count) + 1 else {
                    throw DecodeError(description: "annotation name iid \(iid) out of sequence")
                }
                argNames[iid] = name
            case 4:
                guard locations[iid] == nil else { throw DecodeError(description: "location iid \(iid) defined twice") }
                locations[iid] = (name, line)
            default: throw DecodeError(description: "unexpected InternedData field \(f.number)")
            }
        }
    }

    private func decodeEvent(_ bytes: [UInt8], _ range: Range<Int>, timestamp: UInt64) throws -> Event {
        var r = Reader(bytes, range)
        var type: UInt64 = 0, track: UInt64 = 0, category: UInt64 = 0, name: UInt64 = 0, location: UInt64 = 0
        var inlineName: String?
        var event = Event(type: 0, track: 0, timestamp: timestamp, name: "", category: "", filename: "", line: 0)
        while !r.atEnd {
            let f = try r.field()
            switch f.number {
            case 3: category = f.value
            case 9: type = f.value
            case 10: name = f.value
            case 11: track = f.value
            case 34: location = f.value
            case 23: inlineName = try Self.string(bytes, f.range)
            case 44: event.counterValue = Double(bitPattern: f.value)
            case 47: event.flowIds.append(f.value)
            case 48: event.terminatingFlowIds.append(f.value)
            case 4:
                var inner = Reader(bytes, f.range)
                var argName: String?, value: ArgValue?
                while !inner.atEnd {
                    let g = try inner.field()
                    switch g.number {
                    case 1:
                        guard let n = argNames[g.value] else {
                            throw DecodeError(description: "annotation name iid \(g.value) used before definition")
                        }
                        argName = n
                    case 4: value = .int(Int64(bitPattern: g.value))
                    case 6: value = .string(try Self.string(bytes, g.range))
                    default: throw DecodeError(description: "unexpected DebugAnnotation field \(g.number)")
                    }
                }
                guard let argName, let value else { throw DecodeError(description: "incomplete debug annotation") }
                guard event.args[argName] == nil else { throw DecodeError(description: "annotation \(argName) twice") }
                event.args[argName] = value
                event.argOrder.append(argName)
            default: throw DecodeError(description: "unexpected TrackEvent field \(f.number)")
            }
        }
        event.type = type
        event.track = track
        if type == 4 {
            guard event.counterValue != nil else { throw DecodeError(description: "counter event without a value") }
            return event
        }
        if let inlineName {
            guard name == 0 else { throw DecodeError(description: "both name and name_iid") }
            event.name = inlineName
            event.inlineName = true
        } else {
            guard let n = names[name] else { throw DecodeError(description: "name iid \(name) used before definition") }
            event.name = n
        }
        guard let c = categories[category] else { throw DecodeError(description: "category iid \(category) undefined") }
        event.category = c
        if type == 3 {
            guard location == 0 else { throw DecodeError(description: "instant with a source location") }
            return event
        }
        guard let l = locations[location] else { throw DecodeError(description: "location iid \(location) undefined") }
        event.filename = l.0
        event.line = l.1
        return event
    }
}
