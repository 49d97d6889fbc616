/// Protobuf wire-format primitives, written straight into reserved buffer space.
///
/// The message encoders compute every nested length up front (no back-patching, no
/// scratch buffers), reserve the packet's exact size once, then write through a cursor.
public enum Wire {
    /// Bytes taken by `value` as a canonical varint.
    @inline(__always)
    public static func varintSize(_ value: UInt64) -> Int {
        // 1 + floor(bit width / 7), with 0 taking one byte.
        let bits = 64 - (value | 1).leadingZeroBitCount
        return (bits + 6) / 7
    }

    /// Bytes taken by an int32 field value: negative values are sign-extended to 64 bits.
    @inline(__always)
    public static func int32Size(_ value: Int32) -> Int {
        varintSize(UInt64(bitPattern: Int64(value)))
    }

    /// Bytes taken by a length-delimited field body of `length` bytes, with its tag of `tagSize` bytes.
    @inline(__always)
    public static func delimitedSize(tagSize: Int, length: Int) -> Int {
        tagSize + varintSize(UInt64(length)) + length
    }
}

/// A write position inside space reserved in a `ByteBuffer`.
@usableFromInline
struct WireCursor {
    @usableFromInline var p: UnsafeMutablePointer<UInt8>

    @inline(__always) @usableFromInline
    init(_ p: UnsafeMutablePointer<UInt8>) { self.p = p }

    @inline(__always) @usableFromInline
    mutating func byte(_ b: UInt8) {
        p.pointee = b
        p += 1
    }

    @inline(__always) @usableFromInline
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            p.pointee = UInt8(truncatingIfNeeded: v) | 0x80
            p += 1
            v >>= 7
        }
        p.pointee = UInt8(truncatingIfNeeded: v)
        p += 1
    }

    @inline(__always) @usableFromInline
    mutating func int32(_ value: Int32) {
        varint(UInt64(bitPattern: Int64(value)))
    }

    /// `varint(value)` with one 8-byte store for its first eight 7-bit groups: the
    /// reserved space must extend at least 10 bytes past `p` (it may write up to 7 bytes
    /// past the varint, which the following fields overwrite).
    @inline(__always) @usableFromInline
    mutating func wideVarint(_ value: UInt64) {
        // The low 56 bits spread to one 7-bit group per byte, in three halving steps.
        var x = value & 0x00FF_FFFF_FFFF_FFFF
        x = (x & 0x0FFF_FFFF) | ((x & 0x00FF_FFFF_F000_0000) << 4)
        x = (x & 0x0000_3FFF_0000_3FFF) | ((x & 0x0FFF_C000_0FFF_C000) << 2)
        x = (x & 0x007F_007F_007F_007F) | ((x & 0x3F80_3F80_3F80_3F80) << 1)
        let size = Wire.varintSize(value)
        if size <= 8 {
            let continuation: UInt64 = 0x8080_8080_8080_8080 & ((1 << UInt64(8 * (size - 1))) &- 1)
            UnsafeMutableRawPointer(p).storeBytes(of: (x | continuation).littleEndian, as: UInt64.self)
            p += size
        } else {
            UnsafeMutableRawPointer(p).storeBytes(of: (x | 0x8080_8080_8080_8080).littleEndian, as: UInt64.self)
            p += 8
            varint(value >> 56)
        }
    }

    /// A precomputed field: 16 bytes stored (the reserved space must extend 16 bytes past
    /// `p`), `field.count` of them kept.
    @inline(__always)
    mutating func field(_ field: PacketEncoder.PackedField) {
        let raw = UnsafeMutableRawPointer(p)
        raw.storeBytes(of: field.low.littleEndian, as: UInt64.self)
        raw.storeBytes(of: field.high.littleEndian, toByteOffset: 8, as: UInt64.self)
        p += field.count
    }

    /// A fixed64 value, little-endian.
    @inline(__always) @usableFromInline
    mutating func fixed64(_ value: UInt64) {
        UnsafeMutableRawPointer(p).storeBytes(of: value.littleEndian, as: UInt64.self)
        p += 8
    }

    @inline(__always) @usableFromInline
    mutating func bytes(_ source: UnsafeRawBufferPointer) {
        guard let base = source.baseAddress else { return }
        UnsafeMutableRawPointer(p).copyMemory(from: base, byteCount: source.count)
        p += source.count
    }

    /// A length-delimited field: tag byte(s), length, then the bytes.
    @inline(__always) @usableFromInline
    mutating func delimited(tag: UInt64, _ source: UnsafeRawBufferPointer) {
        varint(tag)
        varint(UInt64(source.count))
        bytes(source)
    }
}
