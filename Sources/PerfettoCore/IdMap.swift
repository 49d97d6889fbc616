/// An open-addressing map from 64-bit keys to non-zero 64-bit values (span id to span
/// index, (file, line) to source-location iid). Value 0 means "absent".
struct IdMap {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: 0, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        // Fibonacci hashing: the high bits of key * 2^64/phi.
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// The value of `key`, or 0.
    @inline(__always)
    func get(_ key: UInt64) -> UInt64 {
        var i = Self.slot(key, mask)
        while true {
            let v = values[i]
            if v == 0 || keys[i] == key { return v }
            i = (i + 1) & mask
        }
    }

    /// Sets `key` to `value` (non-zero).
    mutating func set(_ key: UInt64, _ value: UInt64) {
        if (count + 1) * 2 > mask + 1 { grow() }
        var i = Self.slot(key, mask)
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
