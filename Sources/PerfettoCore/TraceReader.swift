#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A protobuf message's bytes are not well formed (bad varint, a length past the end,
/// an unsupported wire type).
struct MalformedProto: Error {}

/// One field of a protobuf message: number, wire type, and its varint value (wire types
/// 0, 1, 5) or its bytes (wire type 2).
struct ProtoField {
    var number: UInt64 = 0
    var wireType: UInt8 = 0
    var value: UInt64 = 0
    var bytes = UnsafeRawBufferPointer(start: nil, count: 0)
}

/// Reads the fields of one protobuf message, bounds-checked, without copying.
struct ProtoReader {
    private let base: UnsafeRawPointer?
    private let end: Int
    private var pos = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        base = bytes.baseAddress
        end = bytes.count
    }

    var isAtEnd: Bool { pos >= end }

    @inline(__always)
    private mutating func varint() throws(MalformedProto) -> UInt64 {
        guard let base else { throw MalformedProto() }
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < end else { throw MalformedProto() }
            let b = base.load(fromByteOffset: pos, as: UInt8.self)
            pos += 1
            if shift == 63 && b > 1 { throw MalformedProto() }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw MalformedProto() }
        }
    }

    @inline(__always)
    private mutating func fixed(_ size: Int) throws(MalformedProto) -> UInt64 {
        guard let base, end - pos >= size else { throw MalformedProto() }
        var v: UInt64 = 0
        for i in 0..<size { v |= UInt64(base.load(fromByteOffset: pos + i, as: UInt8.self)) << (8 * UInt64(i)) }
        pos += size
        return v
    }

    /// The next field, or nil at the end of the message.
    @inline(__always)
    mutating func next() throws(MalformedProto) -> ProtoField? {
        guard pos < end else { return nil }
        let tag = try varint()
        var f = ProtoField()
        f.number = tag >> 3
        f.wireType = UInt8(tag & 7)
        guard f.number != 0 else { throw MalformedProto() }
        switch f.wireType {
        case 0: f.value = try varint()
        case 1: f.value = try fixed(8)
        case 5: f.value = try fixed(4)
        case 2:
            let length = try varint()
            guard let base, length <= UInt64(end - pos) else { throw MalformedProto() }
            f.bytes = UnsafeRawBufferPointer(start: base + pos, count: Int(length))
            pos += Int(length)
        default: throw MalformedProto()  // groups (3, 4) and invalid types
        }
        return f
    }

    /// The values of a repeated integer field: one value, or a packed run (wire type 2).
    static func forEachRepeated(_ f: ProtoField, fixed64: Bool,
                                _ body: (UInt64) -> Void) throws(MalformedProto) {
        guard f.wireType == 2 else { body(f.value); return }
        var r = ProtoReader(f.bytes)
        while !r.isAtEnd { body(fixed64 ? try r.fixed(8) : try r.varint()) }
    }
}

/// Cuts a byte stream, fed in pieces of any size, into the records of a Perfetto
/// `Trace`: each must be field 1 (`packet`), length-delimited. Whole packets inside a
/// piece are handed over in place; a packet split across pieces is assembled in a carry
/// buffer (at most `maxPacketSize` bytes; larger packets, split or not, are skipped unread). The carry
/// grows with the bytes that arrive, not with the length a header claims, and running
/// out of memory for it is an error, not the end of the process.
struct TraceFramer {
    /// Packets larger than this are skipped, not buffered.
    static let maxPacketSize = 64 << 20
    /// The carry keeps at most this much storage between packets, and reserves at most
    /// this much for a claimed length before the bytes arrive.
    static let carryKeptCapacity = 1 << 20

    /// Bytes fed so far.
    private(set) var offset: Int64 = 0
    /// The first framing error (a record that is not `Trace.packet`): input after it is ignored.
    private(set) var framingErrorOffset: Int64? = nil
    private(set) var framingErrorMessage = ""

    /// malloc storage (ByteBuffer): a failed growth throws `outOfMemory`.
    private let carry = ByteBuffer()
    /// Offset of the record the carry buffer holds (header and, once known, its payload).
    private var carryStart: Int64 = 0
    /// Payload length of the carried record, once its header is complete.
    private var carryPayload: Int = -1
    /// Bytes of an oversized packet still to skip.
    private var skipRemaining: Int64 = 0
    private var skipStart: Int64 = 0
    private var skipLength: Int64 = 0

    enum Header {
        case incomplete
        case invalid(String)
        case packet(headerSize: Int, length: UInt64)
    }

    /// Parses a record header (tag 0x0A, then a varint length) at the start of `bytes`.
    static func header(_ bytes: UnsafeRawBufferPointer) -> Header {
        guard bytes.count > 0 else { return .incomplete }
        let tag = bytes[0]
        guard tag == 0x0A else {
            return .invalid("record is not a Trace.packet field (tag byte 0x\(hex(tag)), expected 0x0a)")
        }
        var length: UInt64 = 0
        var shift: UInt64 = 0
        var i = 1
        while true {
            guard i < bytes.count else { return i > 10 ? .invalid("packet length varint is too long") : .incomplete }
            let b = bytes[i]
            if shift == 63 && b > 1 { return .invalid("packet length varint overflows") }
            length |= UInt64(b & 0x7F) << shift
            i += 1
            if b < 0x80 { return .packet(headerSize: i, length: length) }
            shift += 7
            if shift > 63 { return .invalid("packet length varint is too long") }
        }
    }

    static func hex(_ b: UInt8) -> String {
        let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }

    /// What the framer tells its consumer.
    enum Event {
        /// A whole packet (the TracePacket's bytes) starting at `offset` (its record's tag).
        case packet(offset: Int64, bytes: UnsafeRawBufferPointer)
        /// A packet too large to buffer was skipped.
        case skipped(offset: Int64, length: Int64)
    }

    /// Feeds the next piece of the stream; `body` receives each complete packet in order.
    mutating func feed(_ piece: UnsafeRawBufferPointer,
                       _ body: (Event) throws(PerfettoError) -> Void) throws(PerfettoError) {
        guard framingErrorOffset == nil else { offset += Int64(piece.count); return }
        var p = 0
        let n = piece.count
        defer { offset += Int64(n) }
        while p < n {
            if skipRemaining > 0 {
                let k = Int(Swift.min(skipRemaining, Int64(n - p)))
                skipRemaining -= Int64(k)
                p += k
                if skipRemaining == 0 { try body(.skipped(offset: skipStart, length: skipLength)) }
                continue
            }
            if carryPayload >= 0 {
                // Completing a packet split across pieces.
                let k = Swift.min(carryPayload - carry.count, n - p)
                try carry.append(UnsafeRawBufferPointer(rebasing: piece[p..<(p + k)]))
                p += k
                if carry.count == carryPayload { try emitCarry(body) }
                continue
            }
            if carry.count > 0 {
                // Completing a record header split across pieces (at most 11 bytes).
                try carry.append(UnsafeRawBufferPointer(rebasing: piece[p..<(p + 1)]))
                p += 1
                switch Self.header(carry.bytes) {
                case .incomplete: continue
                case .invalid(let why): fail(carryStart, why); return
                case .packet(let headerSize, let length):
                    carry.removeAll()
                    try startPayload(carryStart, headerSize: headerSize, length: length, body)
                    continue
                }
            }
            // At a record boundary inside the piece.
            let recordStart = offset + Int64(p)
            let rest = UnsafeRawBufferPointer(rebasing: piece[p..<n])
            switch Self.header(rest) {
            case .incomplete:
                carry.removeAll()
                try carry.append(rest)
                carryStart = recordStart
                p = n
            case .invalid(let why):
                fail(recordStart, why)
                return
            case .packet(let headerSize, let length):
                // A packet over the limit is skipped even when the piece holds it whole:
                // the report must not depend on how the trace is cut.
                if length <= UInt64(Self.maxPacketSize) && length <= UInt64(rest.count - headerSize) {
                    let total = headerSize + Int(length)
                    try body(.packet(offset: recordStart,
                                     bytes: UnsafeRawBufferPointer(rebasing: rest[headerSize..<total])))
                    p += total
                } else {
                    p += headerSize
                    try startPayload(recordStart, headerSize: headerSize, length: length, body)
                }
            }
        }
    }

    /// A record whose payload continues past the current position: carried or skipped.
    private mutating func startPayload(_ start: Int64, headerSize: Int, length: UInt64,
                                       _ body: (Event) throws(PerfettoError) -> Void) throws(PerfettoError) {
        if length > UInt64(Self.maxPacketSize) {
            skipStart = start
            // A length varint can claim up to 2^64 - 1 bytes: saturate, never overflow.
            let (total, overflow) = Int64(headerSize).addingReportingOverflow(Int64(clamping: length))
            skipLength = overflow ? Int64.max : total
            skipRemaining = Int64(clamping: length)
            return
        }
        carryStart = start
        carryPayload = Int(length)
        carry.removeAll()
        _ = try carry.reserve(Swift.min(carryPayload, Self.carryKeptCapacity))
        if carryPayload == 0 { try emitCarry(body) }
    }

    private mutating func emitCarry(_ body: (Event) throws(PerfettoError) -> Void) throws(PerfettoError) {
        carryPayload = -1
        defer { emptyCarry() }
        try body(.packet(offset: carryStart, bytes: carry.bytes))
    }

    /// Empties the carry, giving back storage a large packet left.
    private func emptyCarry() {
        carry.removeAll()
        if carry.capacity > Self.carryKeptCapacity { free(carry.take().storage) }
    }

    private mutating func fail(_ at: Int64, _ why: String) {
        framingErrorOffset = at
        framingErrorMessage = why
        emptyCarry()
        carryPayload = -1
    }

    /// At the end of input: the offset and description of a record cut short, if any.
    func unfinished() -> (offset: Int64, message: String)? {
        guard framingErrorOffset == nil else { return nil }
        if skipRemaining > 0 {
            return (skipStart, "trace ends inside a \(skipLength)-byte packet (\(skipRemaining) bytes missing)")
        }
        if carryPayload >= 0 {
            return (carryStart, "trace ends inside a packet: \(carry.count) of \(carryPayload) payload bytes present")
        }
        if carry.count > 0 {
            return (carryStart, "trace ends inside a packet header (\(carry.count) bytes)")
        }
        return nil
    }
}
