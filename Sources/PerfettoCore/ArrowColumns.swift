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

/// The string layouts the importer reads, for a column or a dictionary's values.
enum StringLayout {
    case utf8, largeUTF8, view

    init?(format: String) {
        switch format {
        case "u": self = .utf8
        case "U": self = .largeUTF8
        case "vu": self = .view
        default: return nil
        }
    }
}

/// The string values of one array (utf8, large_utf8 or utf8_view), by physical index.
struct StringValues {
    let layout: StringLayout
    /// Offsets (utf8, large_utf8) or views (utf8_view).
    let index: UnsafeRawPointer
    /// The data buffer (utf8, large_utf8) or all buffers (utf8_view: data buffers from 2).
    let buffers: UnsafePointer<UnsafeRawPointer?>
    let bufferCount: Int
    let name: String
    let label: String

    init?(_ array: ArrowArray, layout: StringLayout, name: String, label: String) throws(PerfettoError) {
        guard array.n_buffers >= 3, let buffers = array.buffers else {
            throw .invalidData("\(label): column '\(name)' has \(array.n_buffers) buffers; a string array needs 3 or more")
        }
        guard let index = buffers[1] else { return nil }
        self.layout = layout
        self.index = index
        self.buffers = UnsafePointer(buffers)
        // utf8_view: validity, views, data buffers..., then the buffer sizes (C Data Interface).
        bufferCount = Int(array.n_buffers)
        self.name = name
        self.label = label
    }

    /// The bytes of string `i` (a physical index).
    @inline(__always)
    func bytes(_ i: Int) throws(PerfettoError) -> UnsafeRawBufferPointer {
        let start: Int, end: Int
        switch layout {
        case .view:
            let view = index + i &* 16
            let length = Int(view.loadUnaligned(as: Int32.self))
            guard length >= 0 else { throw .invalidData("\(label): column '\(name)' has a negative string length") }
            if length <= 12 { return UnsafeRawBufferPointer(start: view + 4, count: length) }
            let buffer = Int(view.loadUnaligned(fromByteOffset: 8, as: Int32.self))
            let offset = Int(view.loadUnaligned(fromByteOffset: 12, as: Int32.self))
            // Data buffers are buffers[2 ..< bufferCount - 1]; the last holds their sizes.
            guard buffer >= 0, 2 + buffer < bufferCount - 1, offset >= 0, let data = buffers[2 + buffer] else {
                throw .invalidData("\(label): column '\(name)' has a string view into buffer \(buffer), which does not exist")
            }
            return UnsafeRawBufferPointer(start: data + offset, count: length)
        case .utf8:
            start = Int(index.load(fromByteOffset: i &* 4, as: Int32.self))
            end = Int(index.load(fromByteOffset: (i &+ 1) &* 4, as: Int32.self))
        case .largeUTF8:
            start = Int(index.load(fromByteOffset: i &* 8, as: Int64.self))
            end = Int(index.load(fromByteOffset: (i &+ 1) &* 8, as: Int64.self))
        }
        guard start >= 0, end >= start else {
            throw .invalidData("\(label): column '\(name)' has invalid string offsets \(start)..\(end)")
        }
        guard end > start else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        guard let data = buffers[2] else { throw .invalidData("\(label): column '\(name)' has no string data buffer") }
        return UnsafeRawBufferPointer(start: data + start, count: end - start)
    }
}

/// A string column (utf8, large_utf8, utf8_view or a dictionary of one of them), read as
/// pool ids. Nulls read as the empty string.
struct StringColumn {
    enum Storage {
        case plain(StringValues)
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
        switch field.type {
        case .utf8, .largeUTF8, .utf8View:
            let layout: StringLayout = field.type == .utf8 ? .utf8 : field.type == .largeUTF8 ? .largeUTF8 : .view
            view = try ArrowColumnView(batch: batch, index: index, name: field.name, label: label, buffers: 3)
            guard let values = try StringValues(view.array, layout: layout, name: field.name, label: label) else {
                storage = .empty
                if batch.length > 0 { throw .invalidData("\(label): column '\(field.name)' has no offsets or views buffer") }
                return
            }
            storage = .plain(values)
        case .dictionary(let width, let value):
            guard let layout = StringLayout(format: value.format) else { throw ColumnCheck.unsupportedString(label, field) }
            view = try ArrowColumnView(batch: batch, index: index, name: field.name, label: label, buffers: 2)
            guard let indices = view.buffer(1) else {
                storage = .empty
                if batch.length > 0 { throw .invalidData("\(label): column '\(field.name)' has no index buffer") }
                return
            }
            guard let dictionary = view.array.dictionary?.pointee else {
                throw .invalidData("\(label): column '\(field.name)' is dictionary-encoded but has no dictionary")
            }
            let ids = try Self.mapDictionary(dictionary, layout: layout, pool: pool, name: field.name, label: label,
                                             emptyId: emptyId)
            storage = .dictionary(indices: indices, width: width, ids: ids)
        default:
            throw ColumnCheck.unsupportedString(label, field)
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
        case .plain(let values):
            return try pool.id(try values.bytes(i), column: name)
        case .empty:
            return emptyId
        }
    }

    /// Pool ids of every dictionary entry (nulls map to the empty string).
    static func mapDictionary(_ dictionary: ArrowArray, layout: StringLayout, pool: StringPool, name: String,
                              label: String, emptyId: UInt32) throws(PerfettoError) -> [UInt32] {
        let count = Int(dictionary.length)
        let (end, overflow) = Int(dictionary.offset).addingReportingOverflow(count)
        guard count >= 0, dictionary.offset >= 0, !overflow, end <= Int.max / 16 else {
            throw .invalidData("\(label): column '\(name)' has an invalid dictionary")
        }
        guard count > 0 else { return [] }
        guard let values = try StringValues(dictionary, layout: layout, name: name, label: label) else {
            throw .invalidData("\(label): column '\(name)' dictionary has no offsets or views")
        }
        let validity = dictionary.null_count != 0 ? dictionary.buffers?[0]?.assumingMemoryBound(to: UInt8.self) : nil
        let base = Int(dictionary.offset)
        var ids = [UInt32](repeating: emptyId, count: count)
        for k in 0..<count {
            let i = base + k
            if let validity, validity[i >> 3] & (1 << UInt8(i & 7)) == 0 { continue }
            ids[k] = try pool.id(try values.bytes(i), column: name)
        }
        return ids
    }
}
