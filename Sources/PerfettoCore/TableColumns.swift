// The column contract of each table the generator reads (docs/lake-format.md): which
// columns, by name, with which types, checked on a stream's schema before any batch
// arrives. The readers of the columns' values are in ArrowColumns.swift.

/// Column indices of a `thread_spans` stream, with their types checked.
struct ThreadSpanColumns {
    let begin, end, name, target, filename, line: Int

    init(_ reader: ArrowStreamReader) throws(PerfettoError) {
        begin = try reader.fieldIndex("begin")
        end = try reader.fieldIndex("end")
        name = try reader.fieldIndex("name")
        target = try reader.fieldIndex("target")
        filename = try reader.fieldIndex("filename")
        line = try reader.fieldIndex("line")
        try ColumnCheck.time(reader, begin)
        try ColumnCheck.time(reader, end)
        for i in [name, target, filename] { try ColumnCheck.string(reader, i) }
        try ColumnCheck.integer(reader, line)
    }
}

/// Column indices of an `async_events` stream, with their types checked.
struct AsyncEventColumns {
    let time, eventType, spanId, parentSpanId, name, target, filename, line: Int
    let depth: Int?
    /// Read when present and a string column (kept per span; not otherwise checked).
    let streamId: Int?

    init(_ reader: ArrowStreamReader) throws(PerfettoError) {
        time = try reader.fieldIndex("time")
        eventType = try reader.fieldIndex("event_type")
        spanId = try reader.fieldIndex("span_id")
        parentSpanId = try reader.fieldIndex("parent_span_id")
        name = try reader.fieldIndex("name")
        target = try reader.fieldIndex("target")
        filename = try reader.fieldIndex("filename")
        line = try reader.fieldIndex("line")
        depth = reader.optionalFieldIndex("depth")
        streamId = reader.optionalFieldIndex("stream_id").flatMap { (index) -> Int? in
            (try? ColumnCheck.string(reader, index)) != nil ? index : nil
        }
        try ColumnCheck.time(reader, time)
        for i in [eventType, name, target, filename] { try ColumnCheck.string(reader, i) }
        for i in [spanId, parentSpanId, line] + (depth.map { [$0] } ?? []) { try ColumnCheck.integer(reader, i) }
    }
}

/// Column indices of a `log_entries` stream, with their types checked.
struct LogEntryColumns {
    let time, target, level, msg: Int

    init(_ reader: ArrowStreamReader) throws(PerfettoError) {
        time = try reader.fieldIndex("time")
        target = try reader.fieldIndex("target")
        level = try reader.fieldIndex("level")
        msg = try reader.fieldIndex("msg")
        try ColumnCheck.time(reader, time)
        for i in [target, msg] { try ColumnCheck.string(reader, i) }
        try ColumnCheck.integer(reader, level)
    }
}

/// Column indices of a `measures` stream, with their types checked.
struct MeasureColumns {
    let time, name, unit, value: Int

    init(_ reader: ArrowStreamReader) throws(PerfettoError) {
        time = try reader.fieldIndex("time")
        name = try reader.fieldIndex("name")
        unit = try reader.fieldIndex("unit")
        value = try reader.fieldIndex("value")
        try ColumnCheck.time(reader, time)
        for i in [name, unit] { try ColumnCheck.string(reader, i) }
        guard reader.fields[value].type == .float64 else {
            throw ColumnCheck.mismatch(reader, reader.fields[value], "float64")
        }
    }
}

/// Type checks of schema fields, before any batch arrives.
enum ColumnCheck {
    static func time(_ reader: ArrowStreamReader, _ index: Int) throws(PerfettoError) {
        let field = reader.fields[index]
        switch field.type {
        case .timestamp, .integer(.int64): return
        default: throw mismatch(reader, field, TimeColumn.expected)
        }
    }

    static func integer(_ reader: ArrowStreamReader, _ index: Int) throws(PerfettoError) {
        let field = reader.fields[index]
        if case .integer = field.type { return }
        throw mismatch(reader, field, "an integer type")
    }

    static func string(_ reader: ArrowStreamReader, _ index: Int) throws(PerfettoError) {
        let field = reader.fields[index]
        switch field.type {
        case .utf8, .largeUTF8, .utf8View: return
        case .dictionary(_, let value) where StringLayout(format: value.format) != nil: return
        default: throw unsupportedString(reader.label, field)
        }
    }

    static func unsupportedString(_ label: String, _ field: ArrowField) -> PerfettoError {
        .invalidData("\(label): column '\(field.name)' has type \(field.type.description); "
                     + "expected utf8, large_utf8, string_view or dictionary<integer, utf8>")
    }

    static func mismatch(_ reader: ArrowStreamReader, _ field: ArrowField, _ expected: String) -> PerfettoError {
        .invalidData("\(reader.label): column '\(field.name)' has type \(field.type.description); expected \(expected)")
    }
}
