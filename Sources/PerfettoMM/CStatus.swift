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

/// Records `message` as this thread's last error.
func setLastError(_ message: String) {
    free(pthread_getspecific(lastErrorKey))
    pthread_setspecific(lastErrorKey, strdup(message))
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

/// A C string argument (pointer + length) as bytes; NULL only with length 0.
func cBytes(_ pointer: UnsafePointer<CChar>?, _ length: Int, _ name: String) throws(PerfettoError) -> UnsafeRawBufferPointer {
    guard length >= 0 else { throw .invalidArgument("\(name): length \(length) is negative") }
    guard let pointer else {
        if length == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
        throw .invalidArgument("\(name) is NULL with length \(length)")
    }
    return UnsafeRawBufferPointer(start: pointer, count: length)
}
