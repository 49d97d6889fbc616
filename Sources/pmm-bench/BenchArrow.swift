#if canImport(Glibc)
import Glibc
#endif
import CArrowABI

/// Arrow C streams for the generator benchmark: batches of 8,192 rows with
/// dictionary<int32, utf8> strings (as micromegas sends them), built before timing.
/// The dictionaries (the workload's string pools) are built once and shared.
final class BenchDictionary {
    let offsets: UnsafeMutablePointer<Int32>
    let data: UnsafeMutablePointer<UInt8>
    let count: Int

    init(_ strings: [[UInt8]]) {
        count = strings.count
        offsets = .allocate(capacity: count + 1)
        let total = strings.reduce(0) { $0 + $1.count }
        data = .allocate(capacity: max(total, 1))
        var position = 0
        offsets[0] = 0
        for (i, s) in strings.enumerated() {
            for (j, byte) in s.enumerated() { data[position + j] = byte }
            position += s.count
            offsets[i + 1] = Int32(position)
        }
    }

    /// An ArrowArray viewing the shared buffers; its release only frees the view.
    func array() -> ArrowArray {
        let buffers = UnsafeMutablePointer<UnsafeRawPointer?>.allocate(capacity: 3)
        buffers[0] = nil
        buffers[1] = UnsafeRawPointer(offsets)
        buffers[2] = UnsafeRawPointer(data)
        return ArrowArray(length: Int64(count), null_count: 0, offset: 0, n_buffers: 3, n_children: 0,
                          buffers: buffers, children: nil, dictionary: nil,
                          release: { a in
                              guard let a else { return }
                              a.pointee.buffers.map { UnsafeMutablePointer(mutating: $0).deallocate() }
                              a.pointee.release = nil
                          }, private_data: nil)
    }
}

/// One column: its format, an optional dictionary, and its value buffer (malloc'd).
struct BenchColumn {
    var name: String
    var format: String
    var dictionaryFormat: String?
    var values: UnsafeMutableRawPointer
    var dictionary: BenchDictionary?
}

/// A batch: a struct array over columns; release frees every buffer it owns.
func benchBatch(length: Int, _ columns: [BenchColumn]) -> ArrowArray {
    let children = UnsafeMutablePointer<UnsafeMutablePointer<ArrowArray>?>.allocate(capacity: columns.count)
    for (i, c) in columns.enumerated() {
        let buffers = UnsafeMutablePointer<UnsafeRawPointer?>.allocate(capacity: 2)
        buffers[0] = nil
        buffers[1] = UnsafeRawPointer(c.values)
        var dictionary: UnsafeMutablePointer<ArrowArray>?
        if let d = c.dictionary {
            dictionary = .allocate(capacity: 1)
            dictionary?.initialize(to: d.array())
        }
        let child = UnsafeMutablePointer<ArrowArray>.allocate(capacity: 1)
        child.initialize(to: ArrowArray(
            length: Int64(length), null_count: 0, offset: 0, n_buffers: 2, n_children: 0, buffers: buffers,
            children: nil, dictionary: dictionary,
            release: { a in
                guard let a else { return }
                if let buffers = a.pointee.buffers {
                    free(UnsafeMutableRawPointer(mutating: buffers[1]))
                    UnsafeMutablePointer(mutating: buffers).deallocate()
                }
                if let d = a.pointee.dictionary {
                    d.pointee.release?(d)
                    d.deallocate()
                }
                a.pointee.release = nil
            }, private_data: nil))
        children[i] = child
    }
    return ArrowArray(
        length: Int64(length), null_count: 0, offset: 0, n_buffers: 1, n_children: Int64(columns.count),
        buffers: nil, children: children, dictionary: nil,
        release: { a in
            guard let a else { return }
            for i in 0..<Int(a.pointee.n_children) {
                if let child = a.pointee.children?[i] {
                    child.pointee.release?(child)
                    child.deallocate()
                }
            }
            a.pointee.children?.deallocate()
            a.pointee.release = nil
        }, private_data: nil)
}

/// The top-level schema's format and name. A string literal passed where a C pointer is
/// expected is a temporary, dangling once the call returns; these live for the program.
private let structFormat: StaticString = "+s"
private let emptyName: StaticString = ""

private func staticCString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// The schema of `columns` (formats and names are C strings owned by the stream).
final class BenchStream {
    @exclusivity(unchecked) var batches: [ArrowArray]
    @exclusivity(unchecked) var next = 0
    let columns: [(name: UnsafeMutablePointer<CChar>, format: UnsafeMutablePointer<CChar>,
                   dictionaryFormat: UnsafeMutablePointer<CChar>?)]

    init(columns: [(String, String, String?)], batches: [ArrowArray]) {
        self.columns = columns.map { (strdup($0.0)!, strdup($0.1)!, $0.2.map { strdup($0)! }) }
        self.batches = batches
    }

    deinit {
        for i in next..<batches.count { batches[i].release?(&batches[i]) }
        for c in columns {
            free(c.name)
            free(c.format)
            free(c.dictionaryFormat)
        }
    }

    /// Moves this producer into a C stream (released by the consumer).
    func export() -> ArrowArrayStream {
        ArrowArrayStream(
            get_schema: { stream, out in
                guard let stream, let out, let data = stream.pointee.private_data else { return EINVAL }
                let me = Unmanaged<BenchStream>.fromOpaque(data).takeUnretainedValue()
                let children = UnsafeMutablePointer<UnsafeMutablePointer<ArrowSchema>?>.allocate(capacity: me.columns.count)
                for (i, c) in me.columns.enumerated() {
                    var dictionary: UnsafeMutablePointer<ArrowSchema>?
                    if let f = c.dictionaryFormat {
                        dictionary = .allocate(capacity: 1)
                        dictionary?.initialize(to: ArrowSchema(format: f, name: nil, metadata: nil, flags: 0, n_children: 0,
                                                               children: nil, dictionary: nil,
                                                               release: { $0?.pointee.release = nil }, private_data: nil))
                    }
                    let child = UnsafeMutablePointer<ArrowSchema>.allocate(capacity: 1)
                    child.initialize(to: ArrowSchema(
                        format: c.format, name: c.name, metadata: nil, flags: 0, n_children: 0, children: nil,
                        dictionary: dictionary,
                        release: { s in
                            guard let s else { return }
                            if let d = s.pointee.dictionary { d.pointee.release?(d); d.deallocate() }
                            s.pointee.release = nil
                        }, private_data: nil))
                    children[i] = child
                }
                out.initialize(to: ArrowSchema(
                    format: staticCString(structFormat), name: staticCString(emptyName), metadata: nil, flags: 0, n_children: Int64(me.columns.count),
                    children: children, dictionary: nil,
                    release: { s in
                        guard let s else { return }
                        for i in 0..<Int(s.pointee.n_children) {
                            if let c = s.pointee.children?[i] { c.pointee.release?(c); c.deallocate() }
                        }
                        s.pointee.children?.deallocate()
                        s.pointee.release = nil
                    }, private_data: nil))
                return 0
            },
            get_next: { stream, out in
                guard let stream, let out, let data = stream.pointee.private_data else { return EINVAL }
                let me = Unmanaged<BenchStream>.fromOpaque(data).takeUnretainedValue()
                if me.next < me.batches.count {
                    out.initialize(to: me.batches[me.next])
                    me.next += 1
                } else {
                    out.initialize(to: ArrowArray())
                }
                return 0
            },
            get_last_error: { _ in nil },
            release: { stream in
                guard let stream, let data = stream.pointee.private_data else { return }
                Unmanaged<BenchStream>.fromOpaque(data).release()
                stream.pointee.release = nil
            },
            private_data: Unmanaged.passRetained(self).toOpaque())
    }
}

/// Typed malloc'd buffer for a column.
func columnBuffer<T>(_ values: [T]) -> UnsafeMutableRawPointer {
    guard let p = malloc(max(values.count * MemoryLayout<T>.stride, 1)) else { fatalError("out of memory") }
    values.withUnsafeBytes { bytes in
        if let base = bytes.baseAddress { p.copyMemory(from: base, byteCount: bytes.count) }
    }
    return p
}
