#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One interning table (event names, categories or source locations): maps a key
/// (UTF-8 bytes plus a 32-bit extra, the line for source locations) to its interned id.
///
/// Ids start at 1 in order of first use, as micromegas assigns them. Open addressing
/// with linear probing over a power-of-two slot array; key bytes live in one arena, so
/// a lookup costs one hash and, on a hit, one memcmp.
public final class InternTable {
    @usableFromInline
    struct Slot {
        @usableFromInline var hash: UInt64 = 0
        @usableFromInline var offset: Int = 0
        @usableFromInline var length: Int = 0
        @usableFromInline var extra: UInt32 = 0
        /// 0 marks an empty slot.
        @usableFromInline var iid: UInt64 = 0
    }

    @exclusivity(unchecked) @usableFromInline var slots: UnsafeMutablePointer<Slot>
    @exclusivity(unchecked) @usableFromInline var mask: Int
    @usableFromInline let arena = ByteBuffer()
    /// Entries interned so far; the next id is `count + 1`.
    @exclusivity(unchecked) public private(set) var count: Int = 0
    /// Arena offset and length of each entry's key, by id - 1.
    @exclusivity(unchecked) @usableFromInline var keyRanges: [(offset: Int, length: Int)] = []
    /// wyhash's two constants, each mixed with a secret of this table (HashSeed): the keys
    /// are outside data (names, targets, files), which then cannot be chosen to collide,
    /// e.g. by a key word equal to the constant, which zeroes its multiply.
    @usableFromInline let k0: UInt64, k1: UInt64

    public init() {
        let capacity = 1024
        // Slots live on malloc (freed with free()): growth reports out of memory instead of
        // trapping. The first 40 KiB are taken when a writer or generator is created, before
        // any data; if even that fails, there is nothing to report it with.
        let bytes = capacity * MemoryLayout<Slot>.stride
        let raw = malloc(bytes) ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16)
        slots = raw.bindMemory(to: Slot.self, capacity: capacity)
        slots.initialize(repeating: Slot(), count: capacity)
        mask = capacity - 1
        let secret = HashSeed.make(UnsafeRawPointer(raw))
        k0 = 0xA076_1D64_78BD_642F ^ secret
        k1 = 0xE703_7ED1_A0B4_28DB ^ (secret &* 0x9E37_79B9_7F4A_7C15 | 1)
    }

    deinit { free(slots) }

    /// The hash of a key in this table: wyhash's mixing (two 64x64->128 multiplies for keys
    /// up to 16 bytes, one more per further 16) with this table's secrets. Not part of any
    /// output (ids go by first use), so any good hash would do; hits are confirmed with memcmp.
    @inline(__always)
    public func hash(_ key: UnsafeRawBufferPointer, extra: UInt32) -> UInt64 {
        let s0 = k0, s1 = k1
        var seed = UInt64(extra) ^ s0
        let n = key.count
        var a: UInt64 = 0, b: UInt64 = 0
        if let p = key.baseAddress, n > 0 {
            if n <= 16 {
                if n >= 4 {
                    let middle = (n >> 3) << 2
                    a = UInt64(Self.load32(p)) << 32 | UInt64(Self.load32(p + middle))
                    b = UInt64(Self.load32(p + n - 4)) << 32 | UInt64(Self.load32(p + n - 4 - middle))
                } else {
                    a = UInt64(p.load(as: UInt8.self)) << 16 | UInt64(p.load(fromByteOffset: n >> 1, as: UInt8.self)) << 8
                        | UInt64(p.load(fromByteOffset: n - 1, as: UInt8.self))
                }
            } else {
                var offset = 0
                while n - offset > 16 {
                    seed = Self.mix(Self.load64(p + offset) ^ s1, Self.load64(p + offset + 8) ^ seed)
                    offset += 16
                }
                a = Self.load64(p + n - 16)
                b = Self.load64(p + n - 8)
            }
        }
        return Self.mix(0xE703_7ED1_A0B4_28DB ^ UInt64(n), Self.mix(a ^ s1, b ^ seed))
    }

    @inline(__always) static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    @inline(__always) static func load64(_ p: UnsafeRawPointer) -> UInt64 {
        p.loadUnaligned(as: UInt64.self)
    }

    @inline(__always) static func load32(_ p: UnsafeRawPointer) -> UInt32 {
        p.loadUnaligned(as: UInt32.self)
    }

    /// The id of `key` if interned, else 0.
    @inline(__always)
    public func lookup(_ key: UnsafeRawBufferPointer, extra: UInt32, hash: UInt64) -> UInt64 {
        var index = Int(truncatingIfNeeded: hash) & mask
        while true {
            let slot = slots[index]
            if slot.iid == 0 { return 0 }
            if slot.hash == hash, slot.extra == extra, slot.length == key.count,
               keyEquals(slot, key) {
                return slot.iid
            }
            index = (index + 1) & mask
        }
    }

    /// Interns a key known to be absent and returns its new id.
    public func insert(_ key: UnsafeRawBufferPointer, extra: UInt32, hash: UInt64) throws(PerfettoError) -> UInt64 {
        if (count + 1) * 2 > mask + 1 { try rehash() }
        let offset = arena.count
        try arena.append(key)
        count += 1
        keyRanges.append((offset, key.count))
        let iid = UInt64(count)
        var index = Int(truncatingIfNeeded: hash) & mask
        while slots[index].iid != 0 { index = (index + 1) & mask }
        slots[index] = Slot(hash: hash, offset: offset, length: key.count, extra: extra, iid: iid)
        return iid
    }

    /// The key bytes of entry `iid` (1...count); valid until the next insert.
    @inline(__always)
    public func key(_ iid: UInt64) -> UnsafeRawBufferPointer {
        let range = keyRanges[Int(iid) - 1]
        return UnsafeRawBufferPointer(start: arena.storage.map { UnsafeRawPointer($0 + range.offset) }, count: range.length)
    }

    @inline(__always) @usableFromInline
    func keyEquals(_ slot: Slot, _ key: UnsafeRawBufferPointer) -> Bool {
        guard slot.length > 0 else { return true }
        guard let stored = arena.storage, let probe = key.baseAddress else { return false }
        return memcmp(stored + slot.offset, probe, slot.length) == 0
    }

    func rehash() throws(PerfettoError) {
        let oldCapacity = mask + 1
        let (newCapacity, overflow) = oldCapacity.multipliedReportingOverflow(by: 2)
        guard !overflow else { throw .outOfMemory }
        // malloc, not allocate(capacity:): running out of memory is an error, not a trap.
        let (bytes, tooLarge) = newCapacity.multipliedReportingOverflow(by: MemoryLayout<Slot>.stride)
        guard !tooLarge, let raw = malloc(bytes) else { throw .outOfMemory }
        let grown = raw.bindMemory(to: Slot.self, capacity: newCapacity)
        grown.initialize(repeating: Slot(), count: newCapacity)
        let newMask = newCapacity - 1
        for i in 0..<oldCapacity where slots[i].iid != 0 {
            var index = Int(truncatingIfNeeded: slots[i].hash) & newMask
            while grown[index].iid != 0 { index = (index + 1) & newMask }
            grown[index] = slots[i]
        }
        free(slots)
        slots = grown
        mask = newMask
    }
}
