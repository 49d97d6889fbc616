/// `String` forms of the writer calls, for Swift callers. Each passes the string's own
/// UTF-8 storage to the byte form (no copy for native strings).
extension TraceWriter {
    public func emitProcessDescriptor(exe: String) throws(PerfettoError) {
        try withBytes(exe) { (exe) throws(PerfettoError) in try emitProcessDescriptor(exe: exe) }
    }

    public func emitThreadDescriptor(streamId: String, threadId: Int32, threadName: String) throws(PerfettoError) {
        try withBytes(streamId, threadName) { (streamId, threadName) throws(PerfettoError) in
            try emitThreadDescriptor(streamId: streamId, threadId: threadId, threadName: threadName)
        }
    }

    public func setCurrentThread(streamId: String) throws(PerfettoError) {
        try withBytes(streamId) { (streamId) throws(PerfettoError) in try setCurrentThread(streamId: streamId) }
    }

    public func emitSpan(begin: UInt64, end: UInt64, name: String, target: String, filename: String,
                         line: UInt32) throws(PerfettoError) {
        try withBytes(name, target, filename) { (name, target, filename) throws(PerfettoError) in
            try emitSpan(begin: begin, end: end, name: name, target: target, filename: filename, line: line)
        }
    }

    public func emitAsyncSpanBegin(timestamp: UInt64, name: String, target: String, filename: String,
                                   line: UInt32) throws(PerfettoError) {
        try withBytes(name, target, filename) { (name, target, filename) throws(PerfettoError) in
            try emitAsyncSpanBegin(timestamp: timestamp, name: name, target: target, filename: filename, line: line)
        }
    }

    public func emitAsyncSpanEnd(timestamp: UInt64, name: String, target: String, filename: String,
                                 line: UInt32) throws(PerfettoError) {
        try withBytes(name, target, filename) { (name, target, filename) throws(PerfettoError) in
            try emitAsyncSpanEnd(timestamp: timestamp, name: name, target: target, filename: filename, line: line)
        }
    }
}

/// Calls `body` with the UTF-8 bytes of `s`.
@inline(__always)
func withBytes<R>(_ s: String, _ body: (UnsafeRawBufferPointer) throws(PerfettoError) -> R) throws(PerfettoError) -> R {
    var s = s
    // withUTF8 rethrows untyped errors; carry the typed error out through a Result.
    let result = s.withUTF8 { utf8 in
        Result { () throws(PerfettoError) in try body(UnsafeRawBufferPointer(utf8)) }
    }
    return try result.get()
}

@inline(__always)
func withBytes<R>(_ a: String, _ b: String,
                  _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(PerfettoError) -> R) throws(PerfettoError) -> R {
    try withBytes(a) { (a) throws(PerfettoError) in try withBytes(b) { (b) throws(PerfettoError) in try body(a, b) } }
}

@inline(__always)
func withBytes<R>(_ a: String, _ b: String, _ c: String,
                  _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(PerfettoError) -> R)
    throws(PerfettoError) -> R {
    try withBytes(a, b) { (a, b) throws(PerfettoError) in try withBytes(c) { (c) throws(PerfettoError) in try body(a, b, c) } }
}
