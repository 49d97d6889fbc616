/// The strings of an Arrow import (span names, targets, files, event types), each
/// stored once with a dense id (1, 2, 3...). Dictionary-encoded columns map each
/// dictionary entry to its id once per batch, when first referenced, so rows are
/// resolved by index, never hashed.
public final class StringPool {
    let table = InternTable()

    public init() {}

    /// The id of `bytes`, adding them if new. New strings are validated as UTF-8;
    /// `column` names the source in the error.
    @inline(__always)
    public func id(_ bytes: UnsafeRawBufferPointer, column: String) throws(PerfettoError) -> UInt32 {
        let hash = table.hash(bytes, extra: 0)
        let found = table.lookup(bytes, extra: 0, hash: hash)
        if found != 0 { return UInt32(truncatingIfNeeded: found) }
        guard UTF8Validation.isValid(bytes) else { throw .invalidData("invalid UTF-8 in column '\(column)'") }
        return UInt32(truncatingIfNeeded: try table.insert(bytes, extra: 0, hash: hash))
    }

    /// The id of a Swift string.
    public func id(_ string: String) throws(PerfettoError) -> UInt32 {
        try withBytes(string) { (bytes) throws(PerfettoError) in try id(bytes, column: "") }
    }

    /// The bytes of string `id`; valid until the next string is added.
    @inline(__always)
    public func bytes(_ id: UInt32) -> UnsafeRawBufferPointer { table.key(UInt64(id)) }

    /// The string `id` as a Swift string.
    public func string(_ id: UInt32) -> String { String(decoding: bytes(id), as: UTF8.self) }

    /// Number of distinct strings.
    public var count: Int { table.count }
}
