/// Everything that can go wrong in the core. Each case maps to one C status code.
public enum PerfettoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A required argument is missing or out of range (NULL pointer, zero chunk size...).
    case invalidArgument(String)
    /// A string argument is not valid UTF-8; the associated value names the argument.
    case invalidUTF8(String)
    /// A call made in the wrong order (a span before any thread is set...).
    case callOrder(String)
    /// The sink callback returned a non-zero status; the writer is stopped.
    case sinkFailed(status: Int32)
    /// Reading or writing a file descriptor failed with this errno (a writer's write stops it).
    case io(errno: Int32, String)
    /// A buffer could not be grown.
    case outOfMemory
    /// The writer stopped on an earlier error and accepts no more calls.
    case writerStopped(String)
    /// Input data (an Arrow array, a scenario) is malformed or of the wrong type.
    case invalidData(String)

    public var description: String {
        switch self {
        case .invalidArgument(let what): return "invalid argument: \(what)"
        case .invalidUTF8(let what): return "invalid UTF-8 in \(what)"
        case .callOrder(let what): return "wrong call order: \(what)"
        case .sinkFailed(let status): return "sink callback failed with status \(status); the writer is stopped"
        case .io(let code, let what): return "I/O error (errno \(code)): \(what)"
        case .outOfMemory: return "out of memory"
        case .writerStopped(let cause): return "the writer stopped after an earlier error: \(cause)"
        case .invalidData(let what): return "invalid data: \(what)"
        }
    }

    /// Whether this error leaves the writer unusable (its output is incomplete).
    public var stopsWriter: Bool {
        switch self {
        case .sinkFailed, .io, .outOfMemory, .writerStopped: return true
        default: return false
        }
    }
}
