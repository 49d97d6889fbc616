#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Receives finished chunks: the chunk id (0, 1, 2, ... in order) and its bytes, valid
/// only during the call. Throwing stops the writer.
public typealias ChunkHandler = (_ chunkId: UInt64, _ bytes: UnsafeRawBufferPointer) throws(PerfettoError) -> Void

/// Where a writer's bytes go.
public enum TraceSink {
    /// Everything stays in the writer's buffer; take it with `TraceWriter.takeBytes()`.
    case memory(initialCapacity: Int = 0)
    /// Whole packets grouped into chunks of at least `chunkSize` bytes (the last may be
    /// smaller), each handed to the handler as soon as it is complete.
    case chunks(chunkSize: Int, handler: ChunkHandler)
    /// Written to an open file descriptor (not closed by the writer) in pieces of at
    /// least `bufferSize` bytes, each ending on a packet boundary.
    case fileDescriptor(Int32, bufferSize: Int = TraceSink.defaultBufferSize)

    /// The default size of the pieces a streaming sink receives.
    public static let defaultBufferSize = 1 << 20
}

/// Writes all of `bytes` to `fd`, retrying on EINTR and short writes.
public func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(PerfettoError) {
    guard var p = bytes.baseAddress else { return }
    var remaining = bytes.count
    while remaining > 0 {
        let n = write(fd, p, remaining)
        if n < 0 {
            let code = errno
            if code == EINTR { continue }
            throw .io(errno: code, "write to file descriptor \(fd) failed: \(String(cString: strerror(code))); "
                      + "the writer is stopped")
        }
        if n == 0 { throw .io(errno: EIO, "write to file descriptor \(fd) wrote nothing; the writer is stopped") }
        p += n
        remaining -= n
    }
}
