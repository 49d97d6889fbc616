/// xxHash64 (Yann Collet's XXH64), used for track uuids as micromegas computes them
/// and as the interner's hash.
public enum XXH64 {
    @usableFromInline static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    @usableFromInline static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    @usableFromInline static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    @usableFromInline static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    @usableFromInline static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    /// The hash of `bytes` with `seed`.
    @inlinable
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return avalanche(seed &+ prime5) }
        return hash(base, count: bytes.count, seed: seed)
    }

    /// The hash of the UTF-8 bytes of `string` with `seed`.
    public static func hash(_ string: String, seed: UInt64 = 0) -> UInt64 {
        var copy = string
        return copy.withUTF8 { hash(UnsafeRawBufferPointer($0), seed: seed) }
    }

    @inlinable
    static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        var acc = acc &+ input &* prime2
        acc = (acc << 31) | (acc >> 33)
        return acc &* prime1
    }

    @inlinable
    static func mergeRound(_ acc: UInt64, _ val: UInt64) -> UInt64 {
        let acc = acc ^ round(0, val)
        return acc &* prime1 &+ prime4
    }

    @inlinable
    public static func hash(_ p: UnsafeRawPointer, count: Int, seed: UInt64) -> UInt64 {
        var offset = 0
        var h: UInt64
        if count >= 32 {
            var v1 = seed &+ prime1 &+ prime2
            var v2 = seed &+ prime2
            var v3 = seed
            var v4 = seed &- prime1
            let limit = count - 32
            while offset <= limit {
                v1 = round(v1, p.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian)
                v2 = round(v2, p.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self).littleEndian)
                v3 = round(v3, p.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self).littleEndian)
                v4 = round(v4, p.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self).littleEndian)
                offset += 32
            }
            h = ((v1 << 1) | (v1 >> 63)) &+ ((v2 << 7) | (v2 >> 57))
                &+ ((v3 << 12) | (v3 >> 52)) &+ ((v4 << 18) | (v4 >> 46))
            h = mergeRound(h, v1)
            h = mergeRound(h, v2)
            h = mergeRound(h, v3)
            h = mergeRound(h, v4)
        } else {
            h = seed &+ prime5
        }
        return finalize(h, tail: p + offset, count: count - offset, total: UInt64(truncatingIfNeeded: count))
    }

    /// The hash of the 8 little-endian bytes of `value` with `seed`: `hash(_:count:seed:)`
    /// of those bytes, without the loops (flow ids hash one span id each).
    @inlinable
    public static func hash(_ value: UInt64, seed: UInt64) -> UInt64 {
        var h = seed &+ prime5 &+ 8
        h ^= round(0, value)
        h = ((h << 27) | (h >> 37)) &* prime1 &+ prime4
        return avalanche(h)
    }

    @inlinable
    static func finalize(_ hIn: UInt64, tail p: UnsafeRawPointer, count: Int, total: UInt64) -> UInt64 {
        var h = hIn &+ total
        var offset = 0
        while offset + 8 <= count {
            let k = round(0, p.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian)
            h ^= k
            h = ((h << 27) | (h >> 37)) &* prime1 &+ prime4
            offset += 8
        }
        if offset + 4 <= count {
            h ^= UInt64(p.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian) &* prime1
            h = ((h << 23) | (h >> 41)) &* prime2 &+ prime3
            offset += 4
        }
        while offset < count {
            h ^= UInt64(p.load(fromByteOffset: offset, as: UInt8.self)) &* prime5
            h = ((h << 11) | (h >> 53)) &* prime1
            offset += 1
        }
        return avalanche(h)
    }

    @inlinable
    static func avalanche(_ hIn: UInt64) -> UInt64 {
        var h = hIn
        h ^= h >> 33
        h = h &* prime2
        h ^= h >> 29
        h = h &* prime3
        h ^= h >> 32
        return h
    }
}
