import Foundation
import PerfettoCore

/// Reads scenario JSON files (docs/byte-format.md, Scenarios).
public enum ScenarioJSON {
    private struct SpanDTO: Decodable {
        var begin: UInt64
        var end: UInt64
        var name: String
        var target: String
        var filename: String
        var line: UInt32
    }

    private struct ThreadDTO: Decodable {
        var stream_id: String
        var thread_id: Int32
        var thread_name: String
        var spans: [SpanDTO]
    }

    private struct ScenarioDTO: Decodable {
        var name: String?
        var process_id: String
        var exe: String
        var span_types: String
        var threads: [ThreadDTO]
        var async_spans: [SpanDTO]
    }

    /// Decodes a scenario; a malformed document gives `PerfettoError.invalidData` naming the problem.
    public static func decode(_ data: Data) throws -> Scenario {
        let dto: ScenarioDTO
        do {
            dto = try JSONDecoder().decode(ScenarioDTO.self, from: data)
        } catch let error as DecodingError {
            throw PerfettoError.invalidData("scenario JSON: \(describe(error))")
        }
        guard let spanTypes = SpanTypes(rawValue: dto.span_types) else {
            throw PerfettoError.invalidData("scenario JSON: span_types must be thread, async or both, got \"\(dto.span_types)\"")
        }
        func span(_ s: SpanDTO) -> Scenario.Span {
            Scenario.Span(begin: s.begin, end: s.end, name: s.name, target: s.target, filename: s.filename, line: s.line)
        }
        return Scenario(
            name: dto.name ?? "", processId: dto.process_id, exe: dto.exe, spanTypes: spanTypes,
            threads: dto.threads.map {
                Scenario.Thread(streamId: $0.stream_id, threadId: $0.thread_id, threadName: $0.thread_name,
                                spans: $0.spans.map(span))
            },
            asyncSpans: dto.async_spans.map(span))
    }

    /// Reads and decodes the scenario file at `path`.
    public static func load(path: String) throws -> Scenario {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw PerfettoError.invalidArgument("cannot read scenario file \(path): \(error.localizedDescription)")
        }
        return try decode(data)
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let p = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return p.isEmpty ? "top level" : String(p.drop(while: { $0 == "." }))
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing key \"\(key.stringValue)\" at \(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(context.debugDescription) at \(path(context))"
        @unknown default: return "\(error)"
        }
    }
}
