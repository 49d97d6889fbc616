import Foundation
import PerfettoCore
import ScenarioSupport

// pmm-scenario: writes the trace a scenario JSON file stands for.

let usage = """
    usage: pmm-scenario SCENARIO.json OUT.perfetto [--chunk-size N --chunks-dir DIR]

    Writes the trace for SCENARIO.json (the golden scenario format) to OUT.perfetto.
    With --chunk-size N the trace is cut into chunks of whole packets of at least N
    bytes; with --chunks-dir DIR each chunk is also written as DIR/<chunk_id>.bin.
    OUT.perfetto is written to a temporary file and renamed when complete.
    """

struct Options {
    var scenarioPath = ""
    var outputPath = ""
    var chunkSize: Int?
    var chunksDir: String?
}

func parse(_ args: [String]) throws -> Options {
    var options = Options()
    var positional: [String] = []
    var i = 0
    func value(_ flag: String) throws -> String {
        i += 1
        guard i < args.count else { throw PerfettoError.invalidArgument("\(flag) needs a value") }
        return args[i]
    }
    while i < args.count {
        switch args[i] {
        case "-h", "--help":
            print(usage)
            exit(0)
        case "--chunk-size":
            let text = try value("--chunk-size")
            guard let n = Int(text), n > 0 else {
                throw PerfettoError.invalidArgument("--chunk-size must be a positive integer, got \"\(text)\"")
            }
            options.chunkSize = n
        case "--chunks-dir":
            options.chunksDir = try value("--chunks-dir")
        case let arg where arg.hasPrefix("-"):
            throw PerfettoError.invalidArgument("unknown option \(arg)")
        case let arg:
            positional.append(arg)
        }
        i += 1
    }
    guard positional.count == 2 else { throw PerfettoError.invalidArgument("expected SCENARIO.json and OUT.perfetto") }
    options.scenarioPath = positional[0]
    options.outputPath = positional[1]
    if options.chunksDir != nil, options.chunkSize == nil {
        throw PerfettoError.invalidArgument("--chunks-dir needs --chunk-size")
    }
    return options
}

func run(_ options: Options) throws {
    let scenario = try ScenarioJSON.load(path: options.scenarioPath)
    let tempPath = options.outputPath + ".tmp-\(getpid())"
    let fd = open(tempPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else {
        throw PerfettoError.io(errno: errno, "cannot create \(tempPath): \(String(cString: strerror(errno)))")
    }
    var completed = false
    defer {
        close(fd)
        if !completed { unlink(tempPath) }
    }
    if let chunksDir = options.chunksDir {
        try FileManager.default.createDirectory(atPath: chunksDir, withIntermediateDirectories: true)
    }
    let sink: TraceSink
    if let chunkSize = options.chunkSize {
        let chunksDir = options.chunksDir
        sink = .chunks(chunkSize: chunkSize) { (chunkId, bytes) throws(PerfettoError) in
            try writeAll(fd: fd, bytes)
            if let chunksDir {
                let path = "\(chunksDir)/\(chunkId).bin"
                do {
                    try Data(bytes).write(to: URL(fileURLWithPath: path))
                } catch {
                    throw .io(errno: EIO, "cannot write \(path): \(error.localizedDescription)")
                }
            }
        }
    } else {
        sink = .fileDescriptor(fd)
    }
    let writer = try TraceWriter(processId: scenario.processId, sink: sink)
    try scenario.write(to: writer)
    guard rename(tempPath, options.outputPath) == 0 else {
        throw PerfettoError.io(errno: errno, "cannot rename to \(options.outputPath): \(String(cString: strerror(errno)))")
    }
    completed = true
    let chunks = options.chunkSize != nil ? ", \(writer.chunkCount) chunks" : ""
    print("\(scenario.name): \(writer.packetCount) packets\(chunks) -> \(options.outputPath)")
}

do {
    try run(try parse(Array(CommandLine.arguments.dropFirst())))
} catch let error as PerfettoError {
    FileHandle.standardError.write(Data("pmm-scenario: \(error)\n".utf8))
    if case .invalidArgument = error { FileHandle.standardError.write(Data(usage.utf8 + [10])) }
    exit(2)
} catch {
    FileHandle.standardError.write(Data("pmm-scenario: \(error.localizedDescription)\n".utf8))
    exit(1)
}
