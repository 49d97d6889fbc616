#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CArrowABI

/// Typed readers over one column of one Arrow batch. Each checks the column's type, counts
/// and offsets once (per batch) and then reads rows with unaligned loads: no per-row type
/// dispatch beyond an integer width, and no per-row hashing for dictionary strings.

/// An integer or timestamp column, read as Int64 (raw values: see TimeColumn for times).
struct IntegerColumn {
    let view: ArrowColumnView
    let width: ArrowType.IntegerWidth
    let values: UnsafeRawPointer?
    let name: String
    let label: String

    /// `timesOnly` accepts only timestamps and int64 (time columns).
    init(batch: ArrowBatch, field: ArrowField, index: Int, label: String, timesOnly: Bool) throws(PerfettoError) {
        switch field.type {
        case .timestamp: width = .int64
        case .integer(.int64): width = .int64
        case .integer(let w) where !timesOnly: width = w
        default:
            let expected = timesOnly ? TimeColumn.expected : "an integer type"
            throw .invalidData("\(label): column '\(field.name)' has type \(field.type.description); expected \(expected)")
        }
        view = try ArrowColumnView(batch: batch, index: index, name: field.name, label: label, buffers: 2,
                                   type: field.type.description)
        values = view.buffer(1)
        if values == nil && batch.length > 0 {
            throw .invalidData("\(label): column '\(field.name)' has no value buffer")
        }
        if !ArrowBounds.fits(values, count: view.end, width: width.bytes) {
            throw .invalidData("\(label): column '\(field.name)': \(view.end) values cannot be in memory")
        }
        name = field.name
        self.label = label
    }

    /// Rows `start ..< start + n` into `out`, nulls as `fallback`. Returns false when
    /// `required` and a row is null (the row-by-row reader reports it).
    @inline(__always)
    func decode(_ start: Int, _ n: Int, into out: UnsafeMutablePointer<Int64>, required: Bool, fallback: Int64) -> Bool {
        guard let values else {
            out.update(repeating: 0, count: n)
            return true
        }
        let b = view.base &+ start
        @inline(__always) func widen<T: FixedWidthInteger>(_ type: T.Type) {
            let p = values + b &* MemoryLayout<T>.size
            for j in 0..<n {
                out[j] = Int64(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: j &* MemoryLayout<T>.size, as: T.self))
            }
        }
        switch width {
        case .int64, .uint64: UnsafeMutableRawPointer(out).copyMemory(from: values + b &* 8, byteCount: n &* 8)
        case .int32: widen(Int32.self)
        case .uint32: widen(UInt32.self)
        case .int16: widen(Int16.self)
        case .uint16: widen(UInt16.self)
        case .int8: widen(Int8.self)
        case .uint8: widen(UInt8.self)
        }
        guard view.validity != nil else { return true }
        for j in 0..<n where view.isNull(start &+ j) {
            if required { return false }
            out[j] = fallback
        }
        return true
    }

    /// The value at `row`, ignoring validity.
    @inline(__always)
    func raw(_ row: Int) -> Int64 {
        guard let values else { return 0 }
        let i = view.base &+ row
        switch width {
        case .int64: return values.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self)
        case .uint64: return Int64(bitPattern: values.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self))
        case .int32: return Int64(values.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self))
        case .uint32: return Int64(values.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))
        case .int16: return Int64(values.loadUnaligned(fromByteOffset: i &* 2, as: Int16.self))
        case .uint16: return Int64(values.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
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

extension ArrowType.IntegerWidth {
    /// Bytes per value.
    var bytes: Int {
        switch self {
        case .int8, .uint8: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32: return 4
        case .int64, .uint64: return 8
        }
    }

    /// A value of this width read into an Int (a uint64 by its bit pattern), as the
    /// producer wrote it: a uint64 of 2^63 or more is shown unsigned, not negative.
    func shown(_ value: Int) -> String {
        self == .uint64 ? String(UInt(bitPattern: value)) : String(value)
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

    var typeName: String {
        switch self {
        case .utf8: return "utf8"
        case .largeUTF8: return "large_utf8"
        case .view: return "string_view"
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
    /// utf8_view: the number of data buffers and their sizes (the last buffer).
    let dataBufferCount: Int
    let sizes: UnsafeRawPointer?
    let name: String
    let label: String

    /// The values of `view` (an array checked by ArrowColumnView, with physical rows up to
    /// `view.end`); nil when it has no offsets or views buffer.
    init?(_ view: ArrowColumnView, layout: StringLayout, what: String, label: String) throws(PerfettoError) {
        let array = view.array
        guard let buffers = array.buffers else {
            throw .invalidData("\(label): \(what) has \(array.n_buffers) buffers but its buffers pointer is NULL")
        }
        guard let index = buffers[1] else { return nil }
        self.layout = layout
        self.index = index
        self.buffers = UnsafePointer(buffers)
        self.name = what
        self.label = label
        switch layout {
        case .utf8, .largeUTF8:
            dataBufferCount = 1
            sizes = nil
            guard ArrowBounds.fits(index, count: view.end &+ 1, width: layout == .utf8 ? 4 : 8) else {
                throw .invalidData("\(label): \(what): \(view.end) string offsets cannot be in memory")
            }
        case .view:
            // validity, views, data buffers..., then the data buffers' sizes (int64 each).
            dataBufferCount = Int(array.n_buffers) - 3
            sizes = buffers[Int(array.n_buffers) - 1]
            guard ArrowBounds.fits(index, count: view.end, width: 16) else {
                throw .invalidData("\(label): \(what): \(view.end) string views cannot be in memory")
            }
            guard dataBufferCount == 0 || (sizes != nil && ArrowBounds.fits(sizes, count: dataBufferCount, width: 8)) else {
                throw .invalidData("\(label): \(what) has no buffer of data buffer sizes")
            }
        }
    }

    /// The bytes of string `i` (a physical index below the checked end).
    @inline(__always)
    func bytes(_ i: Int) throws(PerfettoError) -> UnsafeRawBufferPointer {
        let start: Int, end: Int
        switch layout {
        case .view:
            let view = index + i &* 16
            let length = Int(view.loadUnaligned(as: Int32.self))
            guard length >= 0 else { throw .invalidData("\(label): \(name) has a negative string length") }
            if length <= 12 { return UnsafeRawBufferPointer(start: view + 4, count: length) }
            let buffer = Int(view.loadUnaligned(fromByteOffset: 8, as: Int32.self))
            let offset = Int(view.loadUnaligned(fromByteOffset: 12, as: Int32.self))
            guard buffer >= 0, buffer < dataBufferCount, let sizes, let data = buffers[2 + buffer] else {
                throw .invalidData("\(label): \(name) has a string view into buffer \(buffer), which does not exist")
            }
            let size = sizes.loadUnaligned(fromByteOffset: buffer &* 8, as: Int64.self)
            guard offset >= 0, Int64(offset + length) <= size, ArrowBounds.fits(data, end: offset + length) else {
                throw .invalidData("\(label): \(name) has a string view of \(length) bytes at \(offset) "
                                   + "in a data buffer of \(size) bytes")
            }
            return UnsafeRawBufferPointer(start: data + offset, count: length)
        case .utf8:
            start = Int(index.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self))
            end = Int(index.loadUnaligned(fromByteOffset: (i &+ 1) &* 4, as: Int32.self))
        case .largeUTF8:
            start = Int(index.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self))
            end = Int(index.loadUnaligned(fromByteOffset: (i &+ 1) &* 8, as: Int64.self))
        }
        guard start >= 0, end >= start else {
            throw .invalidData("\(label): \(name) has invalid string offsets \(start)..\(end)")
        }
        guard end > start else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        guard let data = buffers[2] else { throw .invalidData("\(label): \(name) has no string data buffer") }
        guard ArrowBounds.fits(data, end: end) else {
            throw .invalidData("\(label): \(name) has string offsets \(start)..\(end), beyond any buffer")
        }
        return UnsafeRawBufferPointer(start: data + start, count: end - start)
    }
}

/// The pool ids of a dictionary's entries, mapped when first referenced: memory follows
/// what the indices reference, never the dictionary's claimed length.
final class DictionaryIds {
    let values: StringValues?
    let base: Int
    let count: Int
    let validity: UnsafePointer<UInt8>?
    let pool: StringPool
    let emptyId: UInt32
    let column: String
    let label: String
    /// Dense cache (0 = not mapped yet; pool ids start at 1), for dictionaries up to a
    /// size proportional to the batch; zeroed by calloc, so untouched pages cost nothing.
    let dense: UnsafeMutablePointer<UInt32>?
    /// Sparse cache for larger dictionaries: grows with distinct referenced entries.
    @exclusivity(unchecked) var sparse: [Int: UInt32] = [:]

    init(_ view: ArrowColumnView, layout: StringLayout, batchLength: Int, pool: StringPool, emptyId: UInt32,
         column: String, label: String) throws(PerfettoError) {
        count = Int(view.array.length)
        base = view.base
        validity = view.validity
        self.pool = pool
        self.emptyId = emptyId
        self.column = column
        self.label = label
        values = count > 0 ? try StringValues(view, layout: layout, what: "the dictionary of column '\(column)'",
                                              label: label) : nil
        if count > 0 && values == nil {
            throw .invalidData("\(label): the dictionary of column '\(column)' has no offsets or views buffer")
        }
        if count > 0 && count <= Swift.min(Swift.max(1 << 16, batchLength * 2), 1 << 24) {
            guard let memory = calloc(count, MemoryLayout<UInt32>.stride) else { throw .outOfMemory }
            dense = memory.bindMemory(to: UInt32.self, capacity: count)
        } else {
            dense = nil
        }
    }

    deinit { free(dense) }

    /// The pool id of entry `key` (0 <= key < count), mapped now if not yet.
    func id(_ key: Int) throws(PerfettoError) -> UInt32 {
        if let dense {
            let cached = dense[key]
            if cached != 0 { return cached }
            let id = try map(key)
            dense[key] = id
            return id
        }
        if let cached = sparse[key] { return cached }
        let id = try map(key)
        sparse[key] = id
        return id
    }

    private func map(_ key: Int) throws(PerfettoError) -> UInt32 {
        let i = base + key
        if let validity, validity[i >> 3] & (1 << UInt8(i & 7)) == 0 { return emptyId }
        guard let values else { return emptyId }
        return try pool.id(try values.bytes(i), column: column)
    }
}

/// The checked parts of a string column (utf8, large_utf8, utf8_view or a dictionary of
/// one of them), shared by the pooled and the unpooled readers: its view, and either its
/// values or its dictionary indices with the dictionary's view.
enum StringColumnParts {
    case plain(StringValues)
    case dictionary(indices: UnsafeRawPointer, width: ArrowType.IntegerWidth, layout: StringLayout,
                    dictionary: ArrowColumnView, what: String)
    /// No buffers, allowed only for an empty batch.
    case empty

    static func read(batch: ArrowBatch, field: ArrowField, index: Int, label: String) throws(PerfettoError)
        -> (ArrowColumnView, StringColumnParts) {
        switch field.type {
        case .utf8, .largeUTF8, .utf8View:
            let layout: StringLayout = field.type == .utf8 ? .utf8 : field.type == .largeUTF8 ? .largeUTF8 : .view
            let view = try ArrowColumnView(batch: batch, index: index, name: field.name, label: label, buffers: 3,
                                           orMore: layout == .view, type: layout.typeName)
            guard let values = try StringValues(view, layout: layout, what: "column '\(field.name)'", label: label) else {
                if batch.length > 0 { throw .invalidData("\(label): column '\(field.name)' has no offsets or views buffer") }
                return (view, .empty)
            }
            return (view, .plain(values))
        case .dictionary(let width, let value):
            guard let layout = StringLayout(format: value.format) else { throw ColumnCheck.unsupportedString(label, field) }
            let view = try ArrowColumnView(batch: batch, index: index, name: field.name, label: label, buffers: 2,
                                           type: field.type.description)
            guard let indices = view.buffer(1) else {
                if batch.length > 0 { throw .invalidData("\(label): column '\(field.name)' has no index buffer") }
                return (view, .empty)
            }
            guard ArrowBounds.fits(indices, count: view.end, width: width.bytes) else {
                throw .invalidData("\(label): column '\(field.name)': \(view.end) dictionary indices cannot be in memory")
            }
            guard let dictionary = view.array.dictionary?.pointee else {
                throw .invalidData("\(label): column '\(field.name)' is dictionary-encoded but has no dictionary")
            }
            let what = "the dictionary of column '\(field.name)'"
            let dictionaryView = try ArrowColumnView(
                array: dictionary, parentOffset: 0, rows: Int(Swift.max(dictionary.length, 0)), what: what,
                label: label, buffers: 3, orMore: layout == .view, type: layout.typeName)
            return (view, .dictionary(indices: indices, width: width, layout: layout, dictionary: dictionaryView,
                                      what: what))
        default:
            throw ColumnCheck.unsupportedString(label, field)
        }
    }
}

/// A string column (utf8, large_utf8, utf8_view or a dictionary of one of them), read as
/// pool ids. Nulls read as the empty string.
struct StringColumn {
    enum Storage {
        case plain(StringValues)
        /// Dictionary indices, the entry count and the dense id cache of `dictionary` (0 = not
        /// mapped yet), or nil when its ids are kept sparse. A raw pointer: rows cost no
        /// reference counting.
        case dictionary(indices: UnsafeRawPointer, width: ArrowType.IntegerWidth, count: Int,
                        ids: UnsafeMutablePointer<UInt32>?)
        case empty
    }

    let view: ArrowColumnView
    let storage: Storage
    /// The dictionary's ids (keeps `Storage.dictionary`'s cache alive).
    private(set) var dictionary: DictionaryIds? = nil
    let name: String
    let label: String
    let pool: StringPool
    let emptyId: UInt32

    init(batch: ArrowBatch, field: ArrowField, index: Int, label: String, pool: StringPool) throws(PerfettoError) {
        name = field.name
        self.label = label
        self.pool = pool
        emptyId = try pool.id(UnsafeRawBufferPointer(start: nil, count: 0), column: field.name)
        let (view, parts) = try StringColumnParts.read(batch: batch, field: field, index: index, label: label)
        self.view = view
        switch parts {
        case .plain(let values): storage = .plain(values)
        case .empty: storage = .empty
        case .dictionary(let indices, let width, let layout, let dictionaryView, _):
            let ids = try DictionaryIds(dictionaryView, layout: layout, batchLength: batch.length, pool: pool,
                                        emptyId: emptyId, column: field.name, label: label)
            self.dictionary = ids
            storage = .dictionary(indices: indices, width: width, count: ids.count, ids: ids.dense)
        }
    }

    /// Pool ids of rows `start ..< start + n` into `out`. Returns false when a row cannot
    /// be read (the row-by-row reader reports it).
    @inline(__always)
    func decodeIds(_ start: Int, _ n: Int, into out: UnsafeMutablePointer<UInt32>) -> Bool {
        guard case .dictionary(let indices, let width, let entries, let cache) = storage, let dense = cache,
              let dictionary else {
            for j in 0..<n {
                guard let id = try? id(start &+ j) else { return false }
                out[j] = id
            }
            return true
        }
        let b = view.base &+ start
        let count = UInt(entries)
        @inline(__always) func map<T: FixedWidthInteger>(_ type: T.Type) -> Bool {
            let p = indices + b &* MemoryLayout<T>.size
            if view.validity == nil {
                // No nulls: the common loop, with no validity test.
                for j in 0..<n {
                    let key = Int(truncatingIfNeeded: p.loadUnaligned(fromByteOffset: j &* MemoryLayout<T>.size,
                                                                      as: T.self))
                    // (A negative key is a large unsigned one: out of range too.)
                    guard UInt(bitPattern: key) < count else { return false }
                    let cached = dense[key]
                    if cached != 0 {
                        out[j] = cached
                    } else {
                        guard let id = try? dictionary.id(key) else { return false }
                        out[j] = id
                    }
                }
                return true
            }
            for j in 0..<n {
                if view.isNull(start &+ j) {
                    out[j] = emptyId
                    continue
                }
                let raw = p.loadUnaligned(fromByteOffset: j &* MemoryLayout<T>.size, as: T.self)
                let key = UInt(bitPattern: Int(truncatingIfNeeded: raw))
                guard key < count else { return false }
                let cached = dense[Int(key)]
                if cached != 0 {
                    out[j] = cached
                } else {
                    guard let id = try? dictionary.id(Int(key)) else { return false }
                    out[j] = id
                }
            }
            return true
        }
        switch width {
        case .int32: return map(Int32.self)
        case .int8: return map(Int8.self)
        case .int16: return map(Int16.self)
        case .int64: return map(Int64.self)
        case .uint8: return map(UInt8.self)
        case .uint16: return map(UInt16.self)
        case .uint32: return map(UInt32.self)
        case .uint64: return map(UInt64.self)
        }
    }

    /// The pool id of the string at `row`.
    @inline(__always)
    func id(_ row: Int) throws(PerfettoError) -> UInt32 {
        if view.isNull(row) { return emptyId }
        let i = view.base &+ row
        switch storage {
        case .dictionary(let indices, let width, let count, let ids):
            let key: Int
            switch width {
            case .int32: key = Int(indices.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self))
            case .int8: key = Int(indices.load(fromByteOffset: i, as: Int8.self))
            case .int16: key = Int(indices.loadUnaligned(fromByteOffset: i &* 2, as: Int16.self))
            case .int64: key = Int(indices.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self))
            case .uint8: key = Int(indices.load(fromByteOffset: i, as: UInt8.self))
            case .uint16: key = Int(indices.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
            case .uint32: key = Int(indices.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))
            case .uint64: key = Int(truncatingIfNeeded: indices.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self))
            }
            guard key >= 0, key < count else {
                throw .invalidData("\(label): column '\(name)': dictionary index \(width.shown(key)) out of range "
                                   + "(\(count) entries) (row \(row) of a batch)")
            }
            if let ids {
                let cached = ids[key]
                if cached != 0 { return cached }
            }
            guard let dictionary else { return emptyId }
            do { return try dictionary.id(key) } catch { throw located(error, row) }
        case .plain(let values):
            do { return try pool.id(try values.bytes(i), column: name) } catch { throw located(error, row) }
        case .empty:
            return emptyId
        }
    }
}

extension StringColumn {
    /// `error` naming the table and the row when it is the pool's "invalid UTF-8" (which
    /// knows neither).
    func located(_ error: PerfettoError, _ row: Int) -> PerfettoError {
        guard case .invalidData(let what) = error, what.hasPrefix("invalid UTF-8") else { return error }
        return .invalidData("\(label): \(what) (row \(row) of a batch)")
    }
}

/// A time column read as Int64 nanoseconds since the epoch: a timestamp in s, ms, us or ns
/// with any zone or none (the instant is UTC either way), or int64 nanoseconds. Values are
/// converted exactly; one whose nanoseconds do not fit in Int64 is an error naming the column.
struct TimeColumn {
    static let expected = "a timestamp (s, ms, us or ns) or int64 nanoseconds"

    let values: IntegerColumn
    let unit: ArrowType.TimeUnit

    init(batch: ArrowBatch, field: ArrowField, index: Int, label: String) throws(PerfettoError) {
        values = try IntegerColumn(batch: batch, field: field, index: index, label: label, timesOnly: true)
        if case .timestamp(let unit, _) = field.type { self.unit = unit } else { unit = .nanoseconds }
    }

    /// The time at `row` in nanoseconds; a null or an out-of-range value is an error.
    @inline(__always)
    func required(_ row: Int) throws(PerfettoError) -> Int64 {
        let value = try values.required(row)
        if unit == .nanoseconds { return value }
        let (ns, overflow) = value.multipliedReportingOverflow(by: unit.rawValue)
        if overflow {
            throw .invalidData("\(values.label): column '\(values.name)': \(value) \(unit.name) is out of the range of "
                               + "int64 nanoseconds (row \(row) of a batch)")
        }
        return ns
    }

    /// Rows `start ..< start + n` in nanoseconds into `out`. Returns false when a row is
    /// null or out of range (the row-by-row reader reports it).
    @inline(__always)
    func decode(_ start: Int, _ n: Int, into out: UnsafeMutablePointer<Int64>) -> Bool {
        guard values.decode(start, n, into: out, required: true, fallback: 0) else { return false }
        if unit == .nanoseconds { return true }
        var overflow = false
        for j in 0..<n {
            let (ns, o) = out[j].multipliedReportingOverflow(by: unit.rawValue)
            out[j] = ns
            overflow = overflow || o
        }
        return !overflow
    }
}

/// A float64 column.
struct DoubleColumn {
    let view: ArrowColumnView
    let values: UnsafeRawPointer?
    let name: String
    let label: String

    init(batch: ArrowBatch, field: ArrowField, index: Int, label: String) throws(PerfettoError) {
        guard field.type == .float64 else {
            throw .invalidData("\(label): column '\(field.name)' has type \(field.type.description); expected float64")
        }
        view = try ArrowColumnView(batch: batch, index: index, name: field.name, label: label, buffers: 2,
                                   type: field.type.description)
        values = view.buffer(1)
        if values == nil && batch.length > 0 {
            throw .invalidData("\(label): column '\(field.name)' has no value buffer")
        }
        if !ArrowBounds.fits(values, count: view.end, width: 8) {
            throw .invalidData("\(label): column '\(field.name)': \(view.end) values cannot be in memory")
        }
        name = field.name
        self.label = label
    }

    /// The value at `row`; a null is an error naming the column.
    @inline(__always)
    func required(_ row: Int) throws(PerfettoError) -> Double {
        if view.isNull(row) { throw .invalidData("\(label): null in column '\(name)' (row \(row) of a batch)") }
        guard let values else { return 0 }
        return Double(bitPattern: values.loadUnaligned(fromByteOffset: (view.base &+ row) &* 8, as: UInt64.self))
    }
}

/// A string column read as bytes, not pooled: for texts that are mostly distinct (log
/// messages), so memory does not grow with them. Nulls read as the empty string. The
/// bytes are checked as UTF-8 on every read.
struct TextColumn {
    enum Storage {
        case plain(StringValues)
        /// `values` is nil for an empty dictionary (every index is then out of range).
        case dictionary(indices: UnsafeRawPointer, width: ArrowType.IntegerWidth, values: StringValues?,
                        base: Int, count: Int, validity: UnsafePointer<UInt8>?)
        case empty
    }

    let view: ArrowColumnView
    let storage: Storage
    let name: String
    let label: String

    init(batch: ArrowBatch, field: ArrowField, index: Int, label: String) throws(PerfettoError) {
        name = field.name
        self.label = label
        let (view, parts) = try StringColumnParts.read(batch: batch, field: field, index: index, label: label)
        self.view = view
        switch parts {
        case .plain(let values): storage = .plain(values)
        case .empty: storage = .empty
        case .dictionary(let indices, let width, let layout, let dictionaryView, let what):
            let count = Int(dictionaryView.array.length)
            let values = count > 0 ? try StringValues(dictionaryView, layout: layout, what: what, label: label) : nil
            if count > 0 && values == nil { throw .invalidData("\(label): \(what) has no offsets or views buffer") }
            storage = .dictionary(indices: indices, width: width, values: values, base: dictionaryView.base,
                                  count: count, validity: dictionaryView.validity)
        }
    }

    /// The bytes of the string at `row` (valid while the batch lives), checked as UTF-8.
    @inline(__always)
    func bytes(_ row: Int) throws(PerfettoError) -> UnsafeRawBufferPointer {
        if view.isNull(row) { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let i = view.base &+ row
        let result: UnsafeRawBufferPointer
        switch storage {
        case .plain(let values):
            result = try values.bytes(i)
        case .dictionary(let indices, let width, let values, let base, let count, let validity):
            let key: Int
            switch width {
            case .int32: key = Int(indices.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self))
            case .int8: key = Int(indices.load(fromByteOffset: i, as: Int8.self))
            case .int16: key = Int(indices.loadUnaligned(fromByteOffset: i &* 2, as: Int16.self))
            case .int64: key = Int(indices.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self))
            case .uint8: key = Int(indices.load(fromByteOffset: i, as: UInt8.self))
            case .uint16: key = Int(indices.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
            case .uint32: key = Int(indices.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))
            case .uint64: key = Int(truncatingIfNeeded: indices.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self))
            }
            guard key >= 0, key < count, let values else {
                throw .invalidData("\(label): column '\(name)': dictionary index \(width.shown(key)) out of range "
                                   + "(\(count) entries) (row \(row) of a batch)")
            }
            let k = base &+ key
            if let validity, validity[k >> 3] & (1 << UInt8(k & 7)) == 0 {
                return UnsafeRawBufferPointer(start: nil, count: 0)
            }
            result = try values.bytes(k)
        case .empty:
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        guard UTF8Validation.isValid(result) else {
            throw .invalidData("\(label): invalid UTF-8 in column '\(name)' (row \(row) of a batch)")
        }
        return result
    }
}
