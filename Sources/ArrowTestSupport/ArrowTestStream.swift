#if canImport(Glibc)
import Glibc
#endif
import CArrowABI

/// Builds Arrow C streams (`ArrowArrayStream`) from Swift values, following the C Data
/// Interface exactly (validity bitmaps, offsets, dictionaries, sliced arrays, release
/// callbacks), so tests and benchmarks can feed the importer without an Arrow library.
/// A `Tracker` counts the schemas, arrays and streams of a stream not yet released.
public enum ArrowTestStream {
    /// One column of a test batch.
    public enum Column: Sendable {
        /// An integer or time column with the given Arrow format ("l", "I", "tsn:UTC", ...).
        case integers(String, format: String, [Int64?])
        /// utf8 ("u") or large_utf8 ("U").
        case strings(String, large: Bool, [String?])
        /// dictionary<index, utf8 | large_utf8>; `indexFormat` is "c", "s", "i", "l" or unsigned.
        case dictionary(String, indexFormat: String, large: Bool, [String?])
        /// A column of a type the importer does not read (float64 here).
        case doubles(String, [Double])
        /// utf8 with arbitrary bytes (to test invalid UTF-8).
        case rawUTF8(String, [[UInt8]])
        /// utf8_view ("vu"): 16-byte views, strings over 12 bytes in data buffers of 64 bytes.
        case stringViews(String, [String?])

        var name: String {
            switch self {
            case .integers(let n, _, _), .strings(let n, _, _), .dictionary(let n, _, _, _), .doubles(let n, _),
                 .rawUTF8(let n, _), .stringViews(let n, _): return n
            }
        }

        var count: Int {
            switch self {
            case .integers(_, _, let v): return v.count
            case .strings(_, _, let v), .dictionary(_, _, _, let v): return v.count
            case .doubles(_, let v): return v.count
            case .rawUTF8(_, let v): return v.count
            case .stringViews(_, let v): return v.count
            }
        }
    }

    /// A record batch. `columnPadding` rows of garbage precede each column's values (the
    /// arrays' own offset) and `batchPadding` rows precede the batch (the struct's offset).
    public struct Batch: Sendable {
        public var columns: [Column]
        public var columnPadding: Int
        public var batchPadding: Int
        /// A bogus offset written into every column array (hostile-producer tests).
        public var corruptOffset: Int64?

        public init(_ columns: [Column], columnPadding: Int = 0, batchPadding: Int = 0, corruptOffset: Int64? = nil) {
            self.columns = columns
            self.columnPadding = columnPadding
            self.batchPadding = batchPadding
            self.corruptOffset = corruptOffset
        }
    }

    /// Counts objects handed out and not yet released (schemas, arrays, streams).
    public final class Tracker: @unchecked Sendable {
        public internal(set) var live = 0
        public init() {}
    }

    /// A new stream of `batches` (the schema is taken from the first batch, or from
    /// `schema` when there are none). With `failAfter: n`, get_next fails after n batches.
    public static func make(_ batches: [Batch], schema: [Column]? = nil, failAfter: Int? = nil,
                            tracker: Tracker = Tracker()) -> UnsafeMutablePointer<ArrowArrayStream> {
        let stream = UnsafeMutablePointer<ArrowArrayStream>.allocate(capacity: 1)
        let state = StreamState(batches: batches, schema: batches.first?.columns ?? schema ?? [], failAfter: failAfter,
                                tracker: tracker)
        stream.initialize(to: ArrowArrayStream(
            get_schema: { stream, out in
                guard let stream, let out, let state = StreamState.of(stream) else { return EINVAL }
                out.initialize(to: ArrowTestStream.makeSchema(state.schema, state.tracker))
                return 0
            },
            get_next: { stream, out in
                guard let stream, let out, let state = StreamState.of(stream) else { return EINVAL }
                if let failAfter = state.failAfter, state.next >= failAfter {
                    return EIO
                }
                if state.next >= state.batches.count {
                    out.initialize(to: ArrowArray())
                    return 0
                }
                out.initialize(to: ArrowTestStream.makeArray(state.batches[state.next], state.tracker))
                state.next += 1
                return 0
            },
            get_last_error: { stream in
                guard let stream, let state = StreamState.of(stream) else { return nil }
                return UnsafePointer(state.lastError)
            },
            release: { stream in
                guard let stream, let data = stream.pointee.private_data else { return }
                let state = Unmanaged<StreamState>.fromOpaque(data)
                state.takeUnretainedValue().tracker.live -= 1
                state.release()
                stream.pointee.release = nil
            },
            private_data: Unmanaged.passRetained(state).toOpaque()))
        tracker.live += 1
        return stream
    }

    /// Frees the struct memory of a stream made by `make` (after it was moved or released).
    public static func deallocate(_ stream: UnsafeMutablePointer<ArrowArrayStream>) {
        if let release = stream.pointee.release { release(stream) }
        stream.deallocate()
    }

    final class StreamState {
        let batches: [Batch]
        let schema: [Column]
        let failAfter: Int?
        let tracker: Tracker
        var next = 0
        let lastError = strdup("test stream: the producer failed on purpose")

        init(batches: [Batch], schema: [Column], failAfter: Int?, tracker: Tracker) {
            self.batches = batches
            self.schema = schema
            self.failAfter = failAfter
            self.tracker = tracker
        }

        deinit { free(lastError) }

        static func of(_ stream: UnsafeMutablePointer<ArrowArrayStream>) -> StreamState? {
            stream.pointee.private_data.map { Unmanaged<StreamState>.fromOpaque($0).takeUnretainedValue() }
        }
    }

    /// Memory owned by one schema or array; freed by its release callback.
    final class Allocations {
        let tracker: Tracker
        var pointers: [UnsafeMutableRawPointer?] = []
        var children: [UnsafeMutablePointer<ArrowArray>] = []
        var schemaChildren: [UnsafeMutablePointer<ArrowSchema>] = []

        /// Memory of one object, counted live until its release callback runs.
        init(_ tracker: Tracker) {
            self.tracker = tracker
            tracker.live += 1
        }

        func bytes(_ count: Int) -> UnsafeMutableRawPointer {
            let p = calloc(max(count, 1), 1)!
            pointers.append(p)
            return p
        }

        func cString(_ s: String) -> UnsafePointer<CChar> {
            let p = strdup(s)!
            pointers.append(UnsafeMutableRawPointer(p))
            return UnsafePointer(p)
        }

        deinit {
            for p in pointers { free(p) }
            for c in children {
                if let release = c.pointee.release { release(c) }
                c.deallocate()
            }
            for c in schemaChildren {
                if let release = c.pointee.release { release(c) }
                c.deallocate()
            }
        }
    }

    static func makeSchema(_ columns: [Column], _ tracker: Tracker) -> ArrowSchema {
        let a = Allocations(tracker)
        let children = UnsafeMutablePointer<UnsafeMutablePointer<ArrowSchema>?>.allocate(capacity: max(columns.count, 1))
        a.pointers.append(UnsafeMutableRawPointer(children))
        for (i, column) in columns.enumerated() {
            let child = UnsafeMutablePointer<ArrowSchema>.allocate(capacity: 1)
            child.initialize(to: fieldSchema(column, tracker))
            a.schemaChildren.append(child)
            children[i] = child
        }
        return ArrowSchema(format: a.cString("+s"), name: a.cString(""), metadata: nil, flags: 0,
                           n_children: Int64(columns.count), children: children, dictionary: nil,
                           release: releaseSchema, private_data: Unmanaged.passRetained(a).toOpaque())
    }

    static func fieldSchema(_ column: Column, _ tracker: Tracker) -> ArrowSchema {
        let a = Allocations(tracker)
        var dictionary: UnsafeMutablePointer<ArrowSchema>?
        let format: String
        switch column {
        case .integers(_, let f, _): format = f
        case .strings(_, let large, _): format = large ? "U" : "u"
        case .rawUTF8: format = "u"
        case .stringViews: format = "vu"
        case .doubles: format = "g"
        case .dictionary(_, let indexFormat, let large, _):
            format = indexFormat
            let d = UnsafeMutablePointer<ArrowSchema>.allocate(capacity: 1)
            d.initialize(to: ArrowSchema(format: a.cString(large ? "U" : "u"), name: nil, metadata: nil, flags: 2,
                                         n_children: 0, children: nil, dictionary: nil, release: releaseSchema,
                                         private_data: Unmanaged.passRetained(Allocations(tracker)).toOpaque()))
            a.schemaChildren.append(d)
            dictionary = d
        }
        return ArrowSchema(format: a.cString(format), name: a.cString(column.name), metadata: nil, flags: 2,
                           n_children: 0, children: nil, dictionary: dictionary, release: releaseSchema,
                           private_data: Unmanaged.passRetained(a).toOpaque())
    }

    static let releaseSchema: @convention(c) (UnsafeMutablePointer<ArrowSchema>?) -> Void = { schema in
        guard let schema, let data = schema.pointee.private_data else { return }
        let allocations = Unmanaged<Allocations>.fromOpaque(data)
        allocations.takeUnretainedValue().tracker.live -= 1
        allocations.release()
        schema.pointee.release = nil
    }

    static let releaseArray: @convention(c) (UnsafeMutablePointer<ArrowArray>?) -> Void = { array in
        guard let array, let data = array.pointee.private_data else { return }
        let allocations = Unmanaged<Allocations>.fromOpaque(data)
        allocations.takeUnretainedValue().tracker.live -= 1
        allocations.release()
        array.pointee.release = nil
    }

    static func makeArray(_ batch: Batch, _ tracker: Tracker) -> ArrowArray {
        let a = Allocations(tracker)
        let rows = batch.columns.first?.count ?? 0
        let children = UnsafeMutablePointer<UnsafeMutablePointer<ArrowArray>?>.allocate(capacity: max(batch.columns.count, 1))
        a.pointers.append(UnsafeMutableRawPointer(children))
        for (i, column) in batch.columns.enumerated() {
            let child = UnsafeMutablePointer<ArrowArray>.allocate(capacity: 1)
            child.initialize(to: columnArray(column, padding: batch.columnPadding, batchPadding: batch.batchPadding, tracker))
            if let corrupt = batch.corruptOffset { child.pointee.offset = corrupt }
            a.children.append(child)
            children[i] = child
        }
        let buffers = UnsafeMutablePointer<UnsafeRawPointer?>.allocate(capacity: 1)
        buffers[0] = nil
        a.pointers.append(UnsafeMutableRawPointer(buffers))
        return ArrowArray(length: Int64(rows), null_count: 0, offset: Int64(batch.batchPadding), n_buffers: 1,
                          n_children: Int64(batch.columns.count), buffers: buffers, children: children, dictionary: nil,
                          release: releaseArray, private_data: Unmanaged.passRetained(a).toOpaque())
    }

    /// One column's array: `padding + batchPadding` garbage rows, then the values.
    static func columnArray(_ column: Column, padding: Int, batchPadding: Int, _ tracker: Tracker) -> ArrowArray {
        let a = Allocations(tracker)
        let lead = padding + batchPadding
        var nulls: [Bool] = []
        var buffers: [UnsafeRawPointer?] = []
        var dictionary: UnsafeMutablePointer<ArrowArray>?
        switch column {
        case .integers(_, let format, let values):
            let width = ["c": 1, "C": 1, "s": 2, "S": 2, "i": 4, "I": 4][format] ?? 8
            let data = a.bytes((lead + values.count) * width)
            for (i, v) in values.enumerated() {
                let raw = v ?? 0x5A5A
                let at = (lead + i) * width
                switch width {
                case 1: data.storeBytes(of: UInt8(truncatingIfNeeded: raw), toByteOffset: at, as: UInt8.self)
                case 2: data.storeBytes(of: UInt16(truncatingIfNeeded: raw), toByteOffset: at, as: UInt16.self)
                case 4: data.storeBytes(of: UInt32(truncatingIfNeeded: raw), toByteOffset: at, as: UInt32.self)
                default: data.storeBytes(of: raw, toByteOffset: at, as: Int64.self)
                }
            }
            for i in 0..<lead { data.storeBytes(of: 0x7F, toByteOffset: i * width, as: UInt8.self) }
            nulls = values.map { $0 == nil }
            buffers = [nil, UnsafeRawPointer(data)]
        case .doubles(_, let values):
            let data = a.bytes((lead + values.count) * 8)
            for (i, v) in values.enumerated() { data.storeBytes(of: v, toByteOffset: (lead + i) * 8, as: Double.self) }
            nulls = values.map { _ in false }
            buffers = [nil, UnsafeRawPointer(data)]
        case .strings(_, let large, let values):
            let (offsets, bytes) = stringBuffers(values.map { Array(($0 ?? "").utf8) }, lead: lead, large: large, a)
            nulls = values.map { $0 == nil }
            buffers = [nil, offsets, bytes]
        case .rawUTF8(_, let values):
            let (offsets, bytes) = stringBuffers(values, lead: lead, large: false, a)
            nulls = values.map { _ in false }
            buffers = [nil, offsets, bytes]
        case .stringViews(_, let values):
            // Long strings go to data buffers of about 64 bytes each, so views point into several.
            let views = a.bytes((lead + values.count) * 16)
            var dataBuffers: [[UInt8]] = [[]]
            for (i, value) in values.enumerated() {
                let bytes = Array((value ?? "").utf8)
                let view = views + (lead + i) * 16
                view.storeBytes(of: Int32(bytes.count), as: Int32.self)
                if bytes.count <= 12 {
                    for (j, b) in bytes.enumerated() { view.storeBytes(of: b, toByteOffset: 4 + j, as: UInt8.self) }
                } else {
                    if dataBuffers[dataBuffers.count - 1].count > 64 { dataBuffers.append([]) }
                    let index = dataBuffers.count - 1
                    for j in 0..<4 { view.storeBytes(of: bytes[j], toByteOffset: 4 + j, as: UInt8.self) }
                    view.storeBytes(of: Int32(index), toByteOffset: 8, as: Int32.self)
                    view.storeBytes(of: Int32(dataBuffers[index].count), toByteOffset: 12, as: Int32.self)
                    dataBuffers[index] += bytes
                }
            }
            let sizes = a.bytes(dataBuffers.count * 8)
            buffers = [nil, UnsafeRawPointer(views)]
            for (k, data) in dataBuffers.enumerated() {
                let storage = a.bytes(data.count)
                for (j, b) in data.enumerated() { storage.storeBytes(of: b, toByteOffset: j, as: UInt8.self) }
                sizes.storeBytes(of: Int64(data.count), toByteOffset: k * 8, as: Int64.self)
                buffers.append(UnsafeRawPointer(storage))
            }
            buffers.append(UnsafeRawPointer(sizes))
            nulls = values.map { $0 == nil }
        case .dictionary(_, let indexFormat, let large, let values):
            var unique: [String] = []
            var position: [String: Int] = [:]
            for case let v? in values where position[v] == nil {
                position[v] = unique.count
                unique.append(v)
            }
            let width = ["c": 1, "C": 1, "s": 2, "S": 2, "i": 4, "I": 4][indexFormat] ?? 8
            let indices = a.bytes((lead + values.count) * width)
            for (i, v) in values.enumerated() {
                let k = v.flatMap { position[$0] } ?? 0
                let at = (lead + i) * width
                switch width {
                case 1: indices.storeBytes(of: UInt8(k), toByteOffset: at, as: UInt8.self)
                case 2: indices.storeBytes(of: UInt16(k), toByteOffset: at, as: UInt16.self)
                case 4: indices.storeBytes(of: UInt32(k), toByteOffset: at, as: UInt32.self)
                default: indices.storeBytes(of: Int64(k), toByteOffset: at, as: Int64.self)
                }
            }
            nulls = values.map { $0 == nil }
            buffers = [nil, UnsafeRawPointer(indices)]
            // The dictionary itself, sliced by one row to exercise dictionary offsets.
            let d = UnsafeMutablePointer<ArrowArray>.allocate(capacity: 1)
            let da = Allocations(tracker)
            let (offsets, bytes) = stringBuffers((["<unused>"] + unique).map { Array($0.utf8) }, lead: 0, large: large, da)
            let dbuffers = UnsafeMutablePointer<UnsafeRawPointer?>.allocate(capacity: 3)
            dbuffers[0] = nil
            dbuffers[1] = offsets
            dbuffers[2] = bytes
            da.pointers.append(UnsafeMutableRawPointer(dbuffers))
            d.initialize(to: ArrowArray(length: Int64(unique.count), null_count: 0, offset: 1, n_buffers: 3,
                                        n_children: 0, buffers: dbuffers, children: nil, dictionary: nil,
                                        release: releaseArray, private_data: Unmanaged.passRetained(da).toOpaque()))
            a.children.append(d)
            dictionary = d
        }
        var nullCount = 0
        if nulls.contains(true) {
            let bitmap = a.bytes((lead + nulls.count + 7) / 8).assumingMemoryBound(to: UInt8.self)
            for (i, isNull) in nulls.enumerated() {
                if isNull { nullCount += 1; continue }
                let bit = lead + i
                bitmap[bit >> 3] |= 1 << UInt8(bit & 7)
            }
            buffers[0] = UnsafeRawPointer(bitmap)
        }
        let bufferArray = UnsafeMutablePointer<UnsafeRawPointer?>.allocate(capacity: buffers.count)
        for (i, b) in buffers.enumerated() { bufferArray[i] = b }
        a.pointers.append(UnsafeMutableRawPointer(bufferArray))
        return ArrowArray(length: Int64(batchPadding + column.count), null_count: Int64(nullCount), offset: Int64(padding),
                          n_buffers: Int64(buffers.count), n_children: 0, buffers: bufferArray, children: nil,
                          dictionary: dictionary, release: releaseArray, private_data: Unmanaged.passRetained(a).toOpaque())
    }

    /// Offsets and data buffers of a utf8 / large_utf8 array with `lead` empty rows first.
    static func stringBuffers(_ values: [[UInt8]], lead: Int, large: Bool, _ a: Allocations)
        -> (UnsafeRawPointer, UnsafeRawPointer) {
        let total = values.reduce(0) { $0 + $1.count }
        let data = a.bytes(total)
        let width = large ? 8 : 4
        let offsets = a.bytes((lead + values.count + 1) * width)
        var position = 0
        func store(_ index: Int, _ value: Int) {
            if large { offsets.storeBytes(of: Int64(value), toByteOffset: index * 8, as: Int64.self) }
            else { offsets.storeBytes(of: Int32(value), toByteOffset: index * 4, as: Int32.self) }
        }
        for i in 0...lead { store(i, 0) }
        for (i, v) in values.enumerated() {
            for byte in v {
                data.storeBytes(of: byte, toByteOffset: position, as: UInt8.self)
                position += 1
            }
            store(lead + i + 1, position)
        }
        return (UnsafeRawPointer(offsets), UnsafeRawPointer(data))
    }
}
