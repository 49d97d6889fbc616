import CArrowABI

/// Typed readers over one column of one Arrow batch. Each checks the column's type once
/// (per batch) and then reads rows with plain loads: no per-row type dispatch beyond
/// an integer width, and no per-row hashing for dictionary strings.

/// An integer or timestamp[ns] column, read as Int64.
struct IntegerColumn {
    let view: ArrowColumnView
    let width: ArrowType.IntegerWidth
    let values: UnsafeRawPointer?
    let name: String
    let label: String

    /// `timesOnly` accepts only timestamp[ns] and int64 (time columns).
    init(batch: ArrowBatch, field: ArrowField, index: Int, label: String, timesOnly: Bool) throws(PerfettoError) {
        switch field.type {
        case .timestampNanoseconds: width = .int64
        case .integer(.int64): width = .int64
        case .integer(let w) where !timesOnly: width = w
        default:
            let expected = timesOnly ? "timestamp[ns] or int64" : "an integer type"
            throw .invalidData("\(label): column '\(field.name)' has type \(field.type.description); expected \(expected)")
        }
        view = try ArrowColumnView(batch: batch, index: index, name: field.name, label: label, buffers: 2)
        values = view.buffer(1)
        if values == nil && batch.length > 0 {
            throw .invalidData("\(label): column '\(field.name)' has no value buffer")
        }
        name = field.name
        self.label = label
    }

    /// The value at `row`, ignoring validity.
    @inline(__always)
    func raw(_ row: Int) -> Int64 {
        guard let values else { return 0 }
        let i = view.base + row
        switch width {
        case .int64: return values.load(fromByteOffset: i &* 8, as: Int64.self)
        case .uint64: return Int64(bitPattern: values.load(fromByteOffset: i &* 8, as: UInt64.self))
        case .int32: return Int64(values.load(fromByteOffset: i &* 4, as: Int32.self))
        case .uint32: return Int64(values.load(fromByteOffset: i &* 4, as: UInt32.self))
        case .int16: return Int64(values.load(fromByteOffset: i &* 2, as: Int16.self))
        case .uint16: return Int64(values.load(fromByteOffset: i &* 2, as: UInt16.self))
        case .int8: return Int64(values.load(fromByteOffset: i, as: Int8.self))
        case .uint8: return Int64(values.load(fromByteOffset: i, as: UInt8.self))
        }
    }

    /// The value at `row`; a null is an error naming the column.
    @inline(__always)
    func required(_ row: Int) throws(PerfettoError) -> Int64 {
        if view.isNull(row) { throw .invalidData("\(label): null in column '\(name)' (row \(row) of a batch)") }
        return raw(row)
    }

    /// The value at `row`, or `fallback` where null.
    @inline(__always)
    func optional(_ row: Int, _ fallback: Int64) -> Int64 {
        view.isNull(row) ? fallback : raw(row)
    }
}

/// A string column (utf8, large_utf8 or dictionary of either), read as pool ids.
/// Nulls read as the empty string.
struct StringColumn {
    enum Storage {
        case plain(offsets: UnsafeRawPointer, data: UnsafeRawPointer?, large: Bool)
        /// Dictionary indices and the dictionary mapped to pool ids (once per batch).
        case dictionary(indices: UnsafeRawPointer, width: ArrowType.IntegerWidth, ids: [UInt32])
        case empty
    }

    let view: ArrowColumnView
    let storage: Storage
    let name: String
    let label: String
    let pool: StringPool
    let emptyId: UInt32

    init(batch: ArrowBatch, field: ArrowField, index: Int, label: String, pool: StringPool) throws(PerfettoError) {
        name = field.name
        self.label = label
        self.pool = pool
        emptyId = try pool.id(UnsafeRawBufferPointer(start: nil, count: 0), column: field.name)
        let unsupported = PerfettoError.invalidData(
            "\(label): column '\(field.name)' has type \(field.type.description); expected utf8, large_utf8 or dictionary<integer, utf8>")
        switch field.type {
        case .utf8, .largeUTF8:
            view = try ArrowColumnView(batch: batch, index: index, name: field.name, label: label, buffers: 3)
            guard let offsets = view.buffer(1) else {
                storage = .empty
                if batch.length > 0 { throw .invalidData("\(label): column '\(field.name)' has no offsets buffer") }
                return
            }
            storage = .plain(offsets: offsets, data: view.buffer(2), large: field.type == .largeUTF8)
        case .dictionary(let width, let value) where value.format == "u" || value.format == "U":
            view = try ArrowColumnView(batch: batch, index: index, name: field.name, label: label, buffers: 2)
            guard let indices = view.buffer(1) else {
                storage = .empty
                if batch.length > 0 { throw .invalidData("\(label): column '\(field.name)' has no index buffer") }
                return
            }
            guard let dictionary = view.array.dictionary?.pointee else {
                throw .invalidData("\(label): column '\(field.name)' is dictionary-encoded but has no dictionary")
            }
            let ids = try Self.mapDictionary(dictionary, large: value.format == "U", pool: pool,
                                             name: field.name, label: label, emptyId: emptyId)
            storage = .dictionary(indices: indices, width: width, ids: ids)
        default:
            throw unsupported
        }
    }

    /// The pool id of the string at `row`.
    @inline(__always)
    func id(_ row: Int) throws(PerfettoError) -> UInt32 {
        if view.isNull(row) { return emptyId }
        let i = view.base + row
        switch storage {
        case .dictionary(let indices, let width, let ids):
            let key: Int
            switch width {
            case .int32: key = Int(indices.load(fromByteOffset: i &* 4, as: Int32.self))
            case .int8: key = Int(indices.load(fromByteOffset: i, as: Int8.self))
            case .int16: key = Int(indices.load(fromByteOffset: i &* 2, as: Int16.self))
            case .int64: key = Int(indices.load(fromByteOffset: i &* 8, as: Int64.self))
            case .uint8: key = Int(indices.load(fromByteOffset: i, as: UInt8.self))
            case .uint16: key = Int(indices.load(fromByteOffset: i &* 2, as: UInt16.self))
            case .uint32: key = Int(indices.load(fromByteOffset: i &* 4, as: UInt32.self))
            case .uint64: key = Int(truncatingIfNeeded: indices.load(fromByteOffset: i &* 8, as: UInt64.self))
            }
            guard key >= 0, key < ids.count else {
                throw .invalidData("\(label): column '\(name)': dictionary index \(key) out of range (\(ids.count) entries)")
            }
            return ids[key]
        case .plain(let offsets, let data, let large):
            return try pool.id(try Self.slice(offsets, data, i, large: large, name: name, label: label), column: name)
        case .empty:
            return emptyId
        }
    }

    /// The bytes of string `i` of a utf8 / large_utf8 array.
    @inline(__always)
    static func slice(_ offsets: UnsafeRawPointer, _ data: UnsafeRawPointer?, _ i: Int, large: Bool,
                      name: String, label: String) throws(PerfettoError) -> UnsafeRawBufferPointer {
        let start: Int, end: Int
        if large {
            start = Int(offsets.load(fromByteOffset: i &* 8, as: Int64.self))
            end = Int(offsets.load(fromByteOffset: (i &+ 1) &* 8, as: Int64.self))
        } else {
            start = Int(offsets.load(fromByteOffset: i &* 4, as: Int32.self))
            end = Int(offsets.load(fromByteOffset: (i &+ 1) &* 4, as: Int32.self))
        }
        guard start >= 0, end >= start else {
            throw .invalidData("\(label): column '\(name)' has invalid string offsets \(start)..\(end)")
        }
        guard end > start else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        guard let data else { throw .invalidData("\(label): column '\(name)' has no string data buffer") }
        return UnsafeRawBufferPointer(start: data + start, count: end - start)
    }

    /// Pool ids of every dictionary entry (nulls map to the empty string).
    static func mapDictionary(_ dictionary: ArrowArray, large: Bool, pool: StringPool, name: String, label: String,
                              emptyId: UInt32) throws(PerfettoError) -> [UInt32] {
        let count = Int(dictionary.length)
        guard count >= 0, dictionary.offset >= 0, dictionary.n_buffers >= 3, let buffers = dictionary.buffers else {
            throw .invalidData("\(label): column '\(name)' has an invalid dictionary")
        }
        guard count > 0 else { return [] }
        guard let offsets = buffers[1] else { throw .invalidData("\(label): column '\(name)' dictionary has no offsets") }
        let validity = dictionary.null_count != 0 ? buffers[0]?.assumingMemoryBound(to: UInt8.self) : nil
        let base = Int(dictionary.offset)
        var ids = [UInt32](repeating: emptyId, count: count)
        for k in 0..<count {
            let i = base + k
            if let validity, validity[i >> 3] & (1 << UInt8(i & 7)) == 0 { continue }
            ids[k] = try pool.id(try slice(offsets, buffers[2], i, large: large, name: name, label: label), column: name)
        }
        return ids
    }
}
