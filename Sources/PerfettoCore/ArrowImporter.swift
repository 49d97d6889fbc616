import CArrowABI

/// Reads record batches from an Arrow C stream (`ArrowArrayStream`), with no Arrow library.
///
/// The reader takes ownership of the stream when created: the producer's struct is
/// moved out (its `release` set to NULL, as the C Stream Interface specifies), and the
/// stream, its schema and every batch are released exactly once, on success or error.
public final class ArrowStreamReader {
    private let stream: UnsafeMutablePointer<ArrowArrayStream>
    private let schema: UnsafeMutablePointer<ArrowSchema>
    /// The top-level fields of the stream's schema.
    public let fields: [ArrowField]
    /// What the stream holds, for error messages ("thread spans of stream X").
    public let label: String

    /// Moves the stream out of `source` and reads its schema. On error the stream is released.
    public init(moving source: UnsafeMutablePointer<ArrowArrayStream>?, label: String) throws(PerfettoError) {
        self.label = label
        try Self.checkMovable(source, label: label)
        guard let source else { throw .invalidArgument("\(label): the Arrow stream is NULL or already released") }
        stream = .allocate(capacity: 1)
        stream.initialize(to: source.pointee)
        source.pointee.release = nil
        schema = .allocate(capacity: 1)
        schema.initialize(to: ArrowSchema())
        do throws(PerfettoError) {
            guard let getSchema = stream.pointee.get_schema else {
                throw PerfettoError.invalidData("\(label): the Arrow stream has no get_schema callback")
            }
            let status = getSchema(stream, schema)
            guard status == 0 else { throw Self.streamError(stream, status, label, "reading the schema") }
            guard schema.pointee.release != nil else {
                throw PerfettoError.invalidData("\(label): the Arrow stream returned a released schema")
            }
            fields = try ArrowField.children(of: schema, label: label)
        } catch {
            Self.release(stream: stream, schema: schema)
            throw error
        }
    }

    deinit { Self.release(stream: stream, schema: schema) }

    /// The index of the field called `name`, or an error naming the column.
    public func fieldIndex(_ name: String) throws(PerfettoError) -> Int {
        guard let index = fields.firstIndex(where: { $0.name == name }) else {
            let names = fields.map(\.name).joined(separator: ", ")
            throw .invalidData("\(label): missing column '\(name)' (columns: \(names))")
        }
        return index
    }

    /// The index of `name` if the stream has it.
    public func optionalFieldIndex(_ name: String) -> Int? {
        fields.firstIndex { $0.name == name }
    }

    /// The next record batch, or nil at the end of the stream.
    public func next() throws(PerfettoError) -> ArrowBatch? {
        guard let getNext = stream.pointee.get_next else {
            throw .invalidData("\(label): the Arrow stream has no get_next callback")
        }
        let array = UnsafeMutablePointer<ArrowArray>.allocate(capacity: 1)
        array.initialize(to: ArrowArray())
        let status = getNext(stream, array)
        guard status == 0 else {
            array.deallocate()
            throw Self.streamError(stream, status, label, "reading a batch")
        }
        guard array.pointee.release != nil else {
            array.deallocate()
            return nil
        }
        return try ArrowBatch(owning: array, fieldCount: fields.count, label: label)
    }

    private static func streamError(_ stream: UnsafeMutablePointer<ArrowArrayStream>, _ status: Int32,
                                    _ label: String, _ what: String) -> PerfettoError {
        // The producer's message (get_last_error), then its errno-compatible code.
        var message = "error \(status)"
        if let lastError = stream.pointee.get_last_error, let text = lastError(stream), text.pointee != 0 {
            message = "\(String(cString: text)) (error \(status))"
        }
        return .invalidData("\(label): the Arrow stream failed \(what): \(message)")
    }

    /// Throws unless `source` is a stream that can be taken (not NULL, not released).
    public static func checkMovable(_ source: UnsafeMutablePointer<ArrowArrayStream>?,
                                    label: String) throws(PerfettoError) {
        guard let source, source.pointee.release != nil else {
            throw .invalidArgument("\(label): the Arrow stream is NULL or already released")
        }
    }

    /// Takes `source` and releases it unread (no callback but its release is called): for a
    /// call refused or with nothing to read, which must still consume the caller's stream.
    public static func discard(_ source: UnsafeMutablePointer<ArrowArrayStream>?) {
        guard let source, let release = source.pointee.release else { return }
        release(source)
        source.pointee.release = nil
    }

    private static func release(stream: UnsafeMutablePointer<ArrowArrayStream>, schema: UnsafeMutablePointer<ArrowSchema>) {
        if let release = schema.pointee.release { release(schema) }
        schema.deallocate()
        if let release = stream.pointee.release { release(stream) }
        stream.deallocate()
    }
}

/// One record batch (a struct array) owned by the reader; released when dropped.
public final class ArrowBatch {
    let array: UnsafeMutablePointer<ArrowArray>
    /// Number of rows.
    public let length: Int

    init(owning array: UnsafeMutablePointer<ArrowArray>, fieldCount: Int, label: String) throws(PerfettoError) {
        self.array = array
        let a = array.pointee
        length = Int(a.length)
        guard a.length >= 0, a.offset >= 0, !a.offset.addingReportingOverflow(a.length).overflow else {
            throw .invalidData("\(label): a batch has length \(a.length) and offset \(a.offset)")
        }
        guard a.n_children == Int64(fieldCount), a.children != nil || fieldCount == 0,
              ArrowBounds.fits(UnsafeRawPointer(a.children), count: fieldCount, width: 8) else {
            throw .invalidData("\(label): a batch has \(a.n_children) columns\(a.children == nil ? " (children is NULL)" : ""); "
                               + "the schema has \(fieldCount)")
        }
        // A struct array has one buffer (its validity), which the importer does not read.
        guard a.n_buffers == 1 else {
            throw .invalidData("\(label): a batch (struct array) has \(a.n_buffers) buffers; a struct array has 1")
        }
        if a.null_count > 0 { throw .invalidData("\(label): a batch has null rows") }
    }

    deinit {
        if let release = array.pointee.release { release(array) }
        array.deallocate()
    }

    /// The child array of column `index` and the row offset of the batch itself.
    func column(_ index: Int) -> (array: UnsafeMutablePointer<ArrowArray>?, parentOffset: Int) {
        (array.pointee.children?[index], Int(array.pointee.offset))
    }
}

/// A schema field: its name and Arrow type.
public struct ArrowField: Sendable {
    public var name: String
    public var type: ArrowType

    static func children(of schema: UnsafeMutablePointer<ArrowSchema>, label: String) throws(PerfettoError) -> [ArrowField] {
        let s = schema.pointee
        let format = s.format.map { String(cString: $0) } ?? ""
        guard format == "+s" else {
            throw .invalidData("\(label): expected a stream of record batches (struct), got \(ArrowType.describe(format: format))")
        }
        guard s.n_children >= 0, s.n_children == 0 || s.children != nil,
              ArrowBounds.fits(UnsafeRawPointer(s.children), count: Int(s.n_children), width: 8) else {
            throw .invalidData("\(label): the schema has \(s.n_children) columns\(s.children == nil ? " (children is NULL)" : "")")
        }
        var fields: [ArrowField] = []
        for i in 0..<Int(s.n_children) {
            guard let child = s.children?[i] else { throw .invalidData("\(label): schema child \(i) is NULL") }
            let name = child.pointee.name.map { String(cString: $0) } ?? ""
            fields.append(ArrowField(name: name, type: ArrowType(schema: child)))
        }
        return fields
    }
}

/// The Arrow types the importer reads, and a description of any other.
public enum ArrowType: Sendable, Equatable {
    case integer(IntegerWidth)
    /// A timestamp of any unit; the zone (possibly empty) does not change the instant.
    case timestamp(unit: TimeUnit, timeZone: String)
    case utf8
    case largeUTF8
    /// utf8_view (Arrow's "vu"): 16-byte views, inline up to 12 bytes.
    case utf8View
    /// float64 (Arrow's "g").
    case float64
    case dictionary(index: IntegerWidth, value: ArrowTypeFormat)
    case unsupported(ArrowTypeFormat)

    public enum IntegerWidth: Sendable, Equatable {
        case int8, uint8, int16, uint16, int32, uint32, int64, uint64
    }

    /// A timestamp unit, with the nanoseconds in one unit.
    public enum TimeUnit: Int64, Sendable, Equatable {
        case seconds = 1_000_000_000, milliseconds = 1_000_000, microseconds = 1_000, nanoseconds = 1

        /// The unit of an Arrow timestamp format ("tss:", "tsm:", "tsu:", "tsn:", then the zone).
        static func of(format: String) -> TimeUnit? {
            guard format.utf8.count >= 4, format.hasPrefix("ts"), format.utf8.dropFirst(3).first == UInt8(ascii: ":") else {
                return nil
            }
            switch format.utf8.dropFirst(2).first {
            case UInt8(ascii: "s"): return .seconds
            case UInt8(ascii: "m"): return .milliseconds
            case UInt8(ascii: "u"): return .microseconds
            case UInt8(ascii: "n"): return .nanoseconds
            default: return nil
            }
        }

        public var name: String {
            switch self {
            case .seconds: return "s"
            case .milliseconds: return "ms"
            case .microseconds: return "us"
            case .nanoseconds: return "ns"
            }
        }
    }

    /// An Arrow format string, kept to describe types the importer does not read.
    public struct ArrowTypeFormat: Sendable, Equatable {
        public var format: String
    }

    init(schema: UnsafeMutablePointer<ArrowSchema>) {
        let format = schema.pointee.format.map { String(cString: $0) } ?? ""
        if let dictionary = schema.pointee.dictionary {
            let valueFormat = dictionary.pointee.format.map { String(cString: $0) } ?? ""
            if let width = Self.integerWidth(format) {
                self = .dictionary(index: width, value: ArrowTypeFormat(format: valueFormat))
            } else {
                self = .unsupported(ArrowTypeFormat(format: "dictionary:" + format))
            }
            return
        }
        if let width = Self.integerWidth(format) {
            self = .integer(width)
        } else if format == "u" {
            self = .utf8
        } else if format == "U" {
            self = .largeUTF8
        } else if format == "vu" {
            self = .utf8View
        } else if let unit = TimeUnit.of(format: format) {
            self = .timestamp(unit: unit, timeZone: String(format.dropFirst(4)))
        } else if format == "g" {
            self = .float64
        } else {
            self = .unsupported(ArrowTypeFormat(format: format))
        }
    }

    static func integerWidth(_ format: String) -> IntegerWidth? {
        switch format {
        case "c": return .int8
        case "C": return .uint8
        case "s": return .int16
        case "S": return .uint16
        case "i": return .int32
        case "I": return .uint32
        case "l": return .int64
        case "L": return .uint64
        default: return nil
        }
    }

    /// A readable name for the type, as Arrow libraries print it.
    public var description: String {
        switch self {
        case .integer(let w): return "\(w)"
        case .timestamp(let unit, let tz): return tz.isEmpty ? "timestamp[\(unit.name)]" : "timestamp[\(unit.name), tz=\(tz)]"
        case .utf8: return "utf8"
        case .largeUTF8: return "large_utf8"
        case .utf8View: return "string_view"
        case .float64: return "float64"
        case .dictionary(let index, let value): return "dictionary<\(index), \(Self.describe(format: value.format))>"
        case .unsupported(let f): return Self.describe(format: f.format)
        }
    }

    static func describe(format: String) -> String {
        if format.hasPrefix("dictionary:") { return "dictionary<\(describe(format: String(format.dropFirst(11)))), ?>" }
        if let width = integerWidth(format) { return "\(width)" }
        let names: [String: String] = [
            "n": "null", "b": "bool", "e": "float16", "f": "float32", "g": "float64", "z": "binary",
            "Z": "large_binary", "u": "utf8", "U": "large_utf8", "vu": "string_view", "vz": "binary_view",
            "tdD": "date32", "tdm": "date64", "+l": "list", "+L": "large_list", "+s": "struct", "+m": "map",
        ]
        if let name = names[format] { return name }
        for (prefix, unit) in [("tss:", "s"), ("tsm:", "ms"), ("tsu:", "us"), ("tsn:", "ns")] where format.hasPrefix(prefix) {
            let tz = format.dropFirst(4)
            return tz.isEmpty ? "timestamp[\(unit)]" : "timestamp[\(unit), tz=\(tz)]"
        }
        return "Arrow format '\(format)'"
    }
}

/// Bounds on what a producer's buffers can be. The C Data Interface gives no buffer sizes
/// (except utf8_view's data buffers), so a plausible but wrong length or offset cannot be
/// caught; an impossible one can: no buffer reaches past the top of user address space.
/// The C ABI checks its pointer + length arguments the same way.
package enum ArrowBounds {
    #if arch(x86_64)
    /// x86-64 user space with 4-level paging (mmap never returns higher unless asked).
    static let addressLimit: UInt = 1 << 47
    #elseif arch(arm64)
    static let addressLimit: UInt = 1 << 48
    #else
    static let addressLimit: UInt = 1 << 56
    #endif

    /// Whether `count` elements of `width` bytes from `pointer` can all lie in memory.
    @inline(__always)
    package static func fits(_ pointer: UnsafeRawPointer?, count: Int, width: Int) -> Bool {
        guard count >= 0 else { return false }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: width)
        guard !overflow else { return false }
        let start = UInt(bitPattern: Int(bitPattern: pointer))
        return start <= addressLimit && UInt(bytes) <= addressLimit - start
    }

    /// Whether the bytes `pointer[0 ..< end]` can lie in memory (`end` >= 0).
    @inline(__always)
    static func fits(_ pointer: UnsafeRawPointer, end: Int) -> Bool {
        let start = UInt(bitPattern: Int(bitPattern: pointer))
        return start <= addressLimit && UInt(bitPattern: end) <= addressLimit - start
    }
}

/// The rows of one column of one batch: validity bitmap, offset and buffers.
struct ArrowColumnView {
    let array: ArrowArray
    /// Physical index of row 0 (the batch's offset plus the column's own).
    let base: Int
    /// Physical index one past the batch's last row.
    let end: Int
    /// nil when the column has no nulls.
    let validity: UnsafePointer<UInt8>?

    /// Checks the column array of `batch` (offset, length, counts of buffers and children,
    /// validity bitmap). `buffers` is the count its format has; `orMore` for utf8_view.
    init(batch: ArrowBatch, index: Int, name: String, label: String, buffers: Int, orMore: Bool = false,
         type: String) throws(PerfettoError) {
        let (child, parentOffset) = batch.column(index)
        guard let child else { throw .invalidData("\(label): column '\(name)' array is NULL") }
        try self.init(array: child.pointee, parentOffset: parentOffset, rows: batch.length, what: "column '\(name)'",
                      label: label, buffers: buffers, orMore: orMore, type: type)
    }

    /// Checks `array` for rows `parentOffset ..< parentOffset + rows` of its parent.
    init(array: ArrowArray, parentOffset: Int, rows: Int, what: String, label: String, buffers: Int,
         orMore: Bool = false, type: String) throws(PerfettoError) {
        self.array = array
        // Offsets and lengths come from the producer: checked arithmetic, never a trap.
        let (rowsNeeded, overflow1) = parentOffset.addingReportingOverflow(rows)
        let (base, overflow2) = parentOffset.addingReportingOverflow(Int(array.offset))
        let (end, overflow3) = base.addingReportingOverflow(rows)
        guard array.offset >= 0, array.length >= 0, !overflow1, !overflow2, !overflow3,
              !Int(array.offset).addingReportingOverflow(Int(array.length)).overflow,
              Int(array.length) >= rowsNeeded else {
            throw .invalidData("\(label): \(what) has an invalid length \(array.length) or offset \(array.offset) "
                               + "for \(rows) rows at offset \(parentOffset)")
        }
        guard orMore ? array.n_buffers >= Int64(buffers) : array.n_buffers == Int64(buffers) else {
            throw .invalidData("\(label): \(what) has \(array.n_buffers) buffers; a \(type) array has "
                               + "\(buffers)\(orMore ? " or more" : "")")
        }
        guard array.buffers != nil else {
            throw .invalidData("\(label): \(what) has \(array.n_buffers) buffers but its buffers pointer is NULL")
        }
        guard ArrowBounds.fits(UnsafeRawPointer(array.buffers), count: Int(array.n_buffers), width: 8) else {
            throw .invalidData("\(label): \(what) has \(array.n_buffers) buffers, more than memory can hold")
        }
        guard array.n_children == 0 else {
            throw .invalidData("\(label): \(what) has \(array.n_children) children; a \(type) array has none")
        }
        self.base = base
        self.end = end
        let hasNulls = array.null_count != 0
        validity = hasNulls ? array.buffers?[0]?.assumingMemoryBound(to: UInt8.self) : nil
        if hasNulls && validity == nil && array.null_count > 0 {
            throw .invalidData("\(label): \(what) has nulls but no validity bitmap")
        }
        if let validity, !ArrowBounds.fits(UnsafeRawPointer(validity), count: end / 8 + 1, width: 1) {
            throw .invalidData("\(label): \(what) has a validity bitmap that cannot hold \(end) bits")
        }
    }

    @inline(__always)
    func isNull(_ row: Int) -> Bool {
        guard let validity else { return false }
        let i = base &+ row
        return validity[i >> 3] & (1 << UInt8(i & 7)) == 0
    }

    /// Buffer `n` (1 = values or offsets, 2 = string data); `n` < the checked count.
    func buffer(_ n: Int) -> UnsafeRawPointer? {
        array.buffers?[n]
    }
}
