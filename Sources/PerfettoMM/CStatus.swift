#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPerfettoMM
import PerfettoCore

// Status codes, versions and the thread-local last-error message of the C ABI. Every
// constant (PMM_OK, PMM_ERR_*, PMM_VERSION, PMM_ABI_VERSION) comes from perfetto_mm.h,
// through the CPerfettoMM module: it is defined there only.

extension PerfettoError {
    /// The C status code of this error.
    var status: Int32 {
        switch self {
        case .invalidArgument: return PMM_ERR_INVALID_ARGUMENT
        case .invalidUTF8: return PMM_ERR_INVALID_UTF8
        case .callOrder: return PMM_ERR_CALL_ORDER
        case .sinkFailed: return PMM_ERR_SINK
        case .io: return PMM_ERR_IO
        case .outOfMemory: return PMM_ERR_OUT_OF_MEMORY
        case .writerStopped: return PMM_ERR_WRITER_STOPPED
        case .invalidData: return PMM_ERR_INVALID_DATA
        }
    }
}

/// The per-thread slot holding the last error message (a malloc'd C string).
private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

private let emptyMessage: StaticString = ""

/// A malloc'd copy of `message`'s UTF-8 bytes followed by a NUL, and its length (the
/// NUL not counted); nil when malloc fails. The copy keeps every byte: a NUL inside the
/// message (from a name or a value of the input) is kept, where strdup() would cut the
/// message there. With `escapingNUL`, each such NUL is written as the two characters `\0`
/// instead, for a NUL-terminated result that is the whole message (pmm_last_error()).
func mallocCString(_ message: String, escapingNUL: Bool) -> (pointer: UnsafeMutablePointer<CChar>, count: Int)? {
    var message = message
    return message.withUTF8 { (bytes) -> (pointer: UnsafeMutablePointer<CChar>, count: Int)? in
        let nuls = escapingNUL ? bytes.reduce(0) { $0 + ($1 == 0 ? 1 : 0) } : 0
        let count = bytes.count + nuls
        guard let memory = malloc(count + 1) else { return nil }
        let out = memory.bindMemory(to: UInt8.self, capacity: count + 1)
        if nuls == 0 {
            if let base = bytes.baseAddress { memcpy(out, base, bytes.count) }
        } else {
            var i = 0
            for byte in bytes {
                if byte == 0 {
                    out[i] = UInt8(ascii: "\\")
                    out[i + 1] = UInt8(ascii: "0")
                    i += 2
                } else {
                    out[i] = byte
                    i += 1
                }
            }
        }
        out[count] = 0
        return (UnsafeMutableRawPointer(memory).assumingMemoryBound(to: CChar.self), count)
    }
}

/// Records `message` as this thread's last error, a NUL in it escaped as `\0` (the
/// message is read as a C string). When no memory is left for it, the last error is "".
func setLastError(_ message: String) {
    free(pthread_getspecific(lastErrorKey))
    pthread_setspecific(lastErrorKey, mallocCString(message, escapingNUL: true)?.pointer)
}

/// Records `error` and returns its status code.
func fail(_ error: PerfettoError) -> Int32 {
    setLastError(error.description)
    return error.status
}

@_cdecl("pmm_last_error")
public func pmm_last_error() -> UnsafePointer<CChar> {
    if let message = pthread_getspecific(lastErrorKey) {
        return UnsafePointer(message.assumingMemoryBound(to: CChar.self))
    }
    return UnsafeRawPointer(emptyMessage.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// PMM_VERSION as a C string with static storage (made once, never freed, never written).
nonisolated(unsafe) private let version: UnsafePointer<CChar>? = PMM_VERSION.withCString { strdup($0).map { UnsafePointer($0) } }

@_cdecl("pmm_version")
public func pmm_version() -> UnsafePointer<CChar> {
    version ?? UnsafeRawPointer(emptyMessage.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("pmm_abi_version")
public func pmm_abi_version() -> Int32 {
    PMM_ABI_VERSION
}

/// A size_t argument as C shows it (Swift imports size_t as Int: SIZE_MAX reads as -1).
func cSize(_ value: Int) -> String { String(UInt(bitPattern: value)) }

/// A C string or byte argument (pointer + length) as bytes; NULL only with length 0. A
/// length no buffer can have (one reaching past the top of user address space, SIZE_MAX
/// among them) is refused before any byte is read.
func cBytes(_ pointer: UnsafePointer<CChar>?, _ length: Int, _ name: String) throws(PerfettoError) -> UnsafeRawBufferPointer {
    guard let pointer else {
        if length == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
        throw .invalidArgument("\(name) is NULL with length \(cSize(length))")
    }
    guard ArrowBounds.fits(UnsafeRawPointer(pointer), count: length, width: 1) else {
        throw .invalidArgument("\(name): length \(cSize(length)) is larger than any buffer can be")
    }
    return UnsafeRawBufferPointer(start: pointer, count: length)
}

/// Checks that an array argument of `count` elements of `width` bytes can be in memory.
func cArray(_ pointer: UnsafeRawPointer?, _ count: Int, width: Int, _ name: String) throws(PerfettoError) {
    guard ArrowBounds.fits(pointer, count: count, width: width) else {
        throw .invalidArgument("\(name) \(cSize(count)) is larger than any array can be")
    }
}
