/// An open-addressing map from 64-bit keys to non-zero 64-bit values ((file, line) to
/// source-location iid, a metric to its counter track). Value 0 means "absent". Keys hold
/// outside data (a line is any uint32), so they are hashed with a secret (`HashSeed`).
struct IdMap {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    private let seed: UInt64
    private(set) var count = 0

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: 0, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
        seed = keys.withUnsafeBufferPointer { HashSeed.make(UnsafeRawPointer($0.baseAddress)) }
    }

    /// The home slot of `key`: the key mixed with the secret, then murmur3's finalizer
    /// (every key bit reaches every slot bit, so keys cannot be chosen to share one).
    @inline(__always)
    private static func slot(_ key: UInt64, _ mask: Int, _ seed: UInt64) -> Int {
        var h = key ^ seed
        h = (h ^ (h >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        h = (h ^ (h >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return Int(truncatingIfNeeded: h ^ (h >> 33)) & mask
    }

    /// The value of `key`, or 0.
    @inline(__always)
    func get(_ key: UInt64) -> UInt64 {
        var i = Self.slot(key, mask, seed)
        while true {
            let v = values[i]
            if v == 0 || keys[i] == key { return v }
            i = (i + 1) & mask
        }
    }

    /// Sets `key` to `value` (non-zero).
    mutating func set(_ key: UInt64, _ value: UInt64) {
        if (count + 1) * 2 > mask + 1 { grow() }
        var i = Self.slot(key, mask, seed)
        while values[i] != 0 && keys[i] != key { i = (i + 1) & mask }
        if values[i] == 0 { count += 1 }
        keys[i] = key
        values[i] = value
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        let size = (mask + 1) * 2
        keys = [UInt64](repeating: 0, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
        count = 0
        for i in 0..<oldKeys.count where oldValues[i] != 0 { set(oldKeys[i], oldValues[i]) }
    }
}
