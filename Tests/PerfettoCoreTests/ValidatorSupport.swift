import Testing
@testable import PerfettoCore
import ScenarioSupport

/// The validator's report on a whole trace in memory; an error it throws (running out of
/// memory) is recorded as a test failure.
func validatedReport(_ bytes: [UInt8]) -> ValidationReport {
    do {
        return try bytes.withUnsafeBytes { (b) throws(PerfettoError) in try TraceValidator.validate(b) }
    } catch {
        Issue.record("the validator threw \(error)")
        return ValidationReport()
    }
}

/// Protobuf bytes built by hand, for traces the writer would never produce.
enum PB {
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v
        var out: [UInt8] = []
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
        return out
    }

    static func int(_ number: UInt64, _ v: UInt64) -> [UInt8] { varint(number << 3) + varint(v) }

    static func bytes(_ number: UInt64, _ b: [UInt8]) -> [UInt8] {
        varint(number << 3 | 2) + varint(UInt64(b.count)) + b
    }

    static func string(_ number: UInt64, _ s: String) -> [UInt8] { bytes(number, Array(s.utf8)) }

    static func fixed64(_ number: UInt64, _ v: UInt64) -> [UInt8] {
        varint(number << 3 | 1) + (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) }
    }
}

/// Hand-made TracePackets (each framed as a Trace.packet record).
enum TP {
    /// The sequence fields: sequence id and flags (1 cleared, 2 needs state).
    static func sequence(_ flags: UInt64?, seq: UInt64 = 1) -> [UInt8] {
        PB.int(10, seq) + (flags.map { PB.int(13, $0) } ?? [])
    }

    static func packet(_ fields: [UInt8]) -> [UInt8] { PB.bytes(1, fields) }

    static func processTrack(_ uuid: UInt64, pid: Int32, flags: UInt64? = 2, seq: UInt64 = 1) -> [UInt8] {
        packet(PB.bytes(60, PB.int(1, uuid) + PB.bytes(3, PB.int(1, UInt64(UInt32(bitPattern: pid)))
                                                           + PB.string(6, "proc")))
               + sequence(flags, seq: seq))
    }

    static func threadTrack(_ uuid: UInt64, pid: Int32, tid: Int32, parent: UInt64, flags: UInt64? = 2) -> [UInt8] {
        packet(PB.bytes(60, PB.int(1, uuid)
                            + PB.bytes(4, PB.int(1, UInt64(UInt32(bitPattern: pid))) + PB.int(2, UInt64(UInt32(bitPattern: tid))))
                            + PB.int(5, parent))
               + sequence(flags))
    }

    static func namedTrack(_ uuid: UInt64, name: String, parent: UInt64? = nil, counter: Bool = false,
                           flags: UInt64? = 2) -> [UInt8] {
        packet(PB.bytes(60, PB.int(1, uuid) + PB.string(2, name) + (parent.map { PB.int(5, $0) } ?? [])
                            + (counter ? PB.bytes(8, []) : []))
               + sequence(flags))
    }

    /// A first packet clearing the sequence's state (an empty named track).
    static func clear(seq: UInt64 = 1) -> [UInt8] {
        packet(PB.bytes(60, PB.int(1, 0xC1EA) + PB.string(2, "clear")) + sequence(3, seq: seq))
    }

    /// A track event with an inline name (field 23) and category (22), no interning.
    static func event(_ type: UInt64?, ts: UInt64?, track: UInt64?, name: String? = nil, category: String? = nil,
                      extra: [UInt8] = [], packetExtra: [UInt8] = [], flags: UInt64? = 2, seq: UInt64 = 1) -> [UInt8] {
        var e: [UInt8] = []
        if let category { e += PB.string(22, category) }
        if let type { e += PB.int(9, type) }
        if let track { e += PB.int(11, track) }
        if let name { e += PB.string(23, name) }
        e += extra
        return packet(PB.bytes(11, e) + (ts.map { PB.int(8, $0) } ?? []) + packetExtra + sequence(flags, seq: seq))
    }

    /// InternedData with event names (field 2).
    static func internedNames(_ entries: [(UInt64, String)]) -> [UInt8] {
        PB.bytes(12, entries.flatMap { PB.bytes(2, PB.int(1, $0.0) + PB.string(2, $0.1)) })
    }

    /// A slice begin then end on `track`.
    static func slice(_ track: UInt64, _ begin: UInt64, _ end: UInt64, _ name: String, category: String = "c") -> [UInt8] {
        event(1, ts: begin, track: track, name: name, category: category)
            + event(2, ts: end, track: track, name: name, category: category)
    }
}

/// A deliberately simple model of Perfetto's slice rebuilding, independent of the
/// validator's streaming one: all events of a track in memory, sorted, replayed.
/// Returns, for spans written begin-then-end in `spans` order on one track, how many
/// Perfetto shows with a wrong end, and how many misplaced_end_event it counts.
func simplePerfettoModel(_ spans: [Scenario.Span]) -> (wrong: Int, misplaced: Int) {
    struct Ev { var ts: UInt64; var order: Int; var isEnd: Bool; var span: Int }
    var events: [Ev] = []
    for (i, s) in spans.enumerated() {
        events.append(Ev(ts: s.begin, order: 2 * i, isEnd: false, span: i))
        events.append(Ev(ts: s.end, order: 2 * i + 1, isEnd: true, span: i))
    }
    events.sort { ($0.ts, $0.order) < ($1.ts, $1.order) }
    var shown = [UInt64?](repeating: nil, count: spans.count)
    var stack: [(span: Int, end: UInt64?)] = []
    var misplaced = 0
    for e in events {
        // Close what the event passes.
        var i = stack.count - 1
        var openAbove = false
        while i >= 0 {
            if let end = stack[i].end {
                if openAbove {
                    if e.ts > end {
                        misplaced += 1
                        for j in (i + 1)..<stack.count { shown[stack[j].span] = end }
                        stack.removeSubrange(i...)
                        openAbove = false
                    }
                } else if end <= e.ts {
                    stack.removeLast()
                }
            } else {
                openAbove = true
            }
            i -= 1
        }
        let s = spans[e.span]
        if !e.isEnd {
            if stack.count < 512 { stack.append((e.span, nil)) }
            continue
        }
        // The topmost open slice with the same name and category.
        if let k = stack.lastIndex(where: { $0.end == nil && spans[$0.span].name == s.name
                                            && spans[$0.span].target == s.target }) {
            stack[k].end = e.ts
            shown[stack[k].span] = e.ts
            if k == stack.count - 1 { stack.removeLast() }
        }
    }
    let wrong = spans.indices.filter { shown[$0] != spans[$0].end }.count
    return (wrong, misplaced)
}
