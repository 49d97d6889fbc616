import Foundation
import Testing
@testable import PerfettoCore
import ScenarioSupport

/// The validator's report must not depend on how the trace is cut into pieces: each input
/// fed whole, then in random pieces of 1 byte to 2 MiB (and byte by byte, when small),
/// gives the same report, over the golden traces, the trace fuzzer's corpus and traces
/// with packets around the carry's kept capacity (1 MiB) and the packet limit (64 MiB).
struct ValidatorPieceStressTests {
    static let corpusDirectory = Fixtures.goldenDirectory.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz/trace_corpus")

    struct Rng {
        var state: UInt64
        mutating func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 11) % UInt64(n))
        }
        /// 1 ... 2 MiB, log-uniform: small pieces as often as big ones.
        mutating func pieceSize() -> Int {
            let bits = next(22)
            return 1 + next(1 << bits)
        }
    }

    /// Everything a report says, as text.
    static func text(_ r: ValidationReport) -> String { "\(r)" }

    static func whole(_ bytes: [UInt8]) throws -> ValidationReport {
        let v = TraceValidator()
        try bytes.withUnsafeBytes { b in try v.feed(b) }
        return v.finish()
    }

    static func inPieces(_ bytes: [UInt8], _ size: () -> Int) throws -> ValidationReport {
        let v = TraceValidator()
        try bytes.withUnsafeBytes { b in
            var p = 0
            while p < b.count {
                let n = Swift.min(size(), b.count - p)
                try v.feed(UnsafeRawBufferPointer(rebasing: b[p..<(p + n)]))
                p += n
            }
        }
        return v.finish()
    }

    static func check(_ bytes: [UInt8], _ label: String, rng: inout Rng, splits: Int = 4) throws {
        let expected = text(try whole(bytes))
        for k in 0..<splits {
            let got = text(try inPieces(bytes) { rng.pieceSize() })
            #expect(got == expected, "\(label), random split \(k)")
        }
        if bytes.count <= 200_000 {
            #expect(text(try inPieces(bytes) { 1 }) == expected, "\(label), byte by byte")
        }
        // Pieces cut right after each record header byte and mid-varint: sizes 1...12 in turn.
        var i = 0
        #expect(text(try inPieces(bytes) { i += 1; return 1 + i % 12 }) == expected, "\(label), 1...12")
    }

    @Test func goldenTraces() throws {
        var rng = Rng(state: 1)
        for name in Fixtures.goldenNames {
            try Self.check(try Fixtures.golden(name), name, rng: &rng)
        }
    }

    @Test func fuzzCorpus() throws {
        var rng = Rng(state: 2)
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpusDirectory.path).sorted()
        #expect(files.count > 100)
        for file in files {
            let bytes = Array(try Data(contentsOf: Self.corpusDirectory.appendingPathComponent(file)))
            try Self.check(bytes, file, rng: &rng, splits: 3)
        }
    }

    /// A packet of `payload` bytes of one unknown length-delimited field (valid protobuf),
    /// framed as a Trace.packet record.
    static func bigPacket(_ payload: Int) -> [UInt8] {
        // Field 900, wire type 2: the tag is 2 bytes, the length varint up to 4.
        let tag = PB.varint(900 << 3 | 2)
        var inner = payload - tag.count - 1
        while tag.count + PB.varint(UInt64(inner)).count + inner > payload { inner -= 1 }
        var fields = tag + PB.varint(UInt64(inner)) + [UInt8](repeating: 0x5A, count: inner)
        fields += [UInt8](repeating: 0, count: payload - fields.count)  // never: sizes chosen to fit
        return PB.bytes(1, fields)
    }

    static let thread: UInt64 = 0x7711
    static let header = TP.clear() + TP.processTrack(0x55, pid: 5) + TP.threadTrack(thread, pid: 5, tid: 6, parent: 0x55)

    /// Packets just under, at and over 1 MiB (the carry's kept capacity) and a few MiB,
    /// between slices.
    @Test func bigPackets() throws {
        var rng = Rng(state: 3)
        var trace = Self.header
        var t: UInt64 = 0
        for size in [(1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20, 5, (2 << 20) + 7] {
            trace += Self.bigPacket(size) + TP.slice(Self.thread, t, t + 10, "s")
            t += 20
        }
        try Self.check(trace, "big packets", rng: &rng, splits: 6)
        // Cut short inside the last big packet: `truncated`, the same however it is cut.
        try Self.check(Array(trace[..<(trace.count - 1_000)]), "big packets, cut", rng: &rng, splits: 3)
    }

    /// A packet of exactly 64 MiB is read; one byte more is skipped unread and reported
    /// (`packet_too_large`), whether the piece holding it is the whole trace or not.
    @Test(arguments: [0, 1])
    func packetsAtTheLimit(_ over: Int) throws {
        var rng = Rng(state: 4 + UInt64(over))
        let trace = Self.header + Self.bigPacket(TraceFramer.maxPacketSize + over) + TP.slice(Self.thread, 0, 10, "s")
        let whole = try Self.whole(trace)
        #expect(whole.count(.packetTooLarge) == over, "\(Self.text(whole))")
        #expect(whole.slices == 1)
        #expect(whole.problemCount == over)
        for k in 0..<2 {
            #expect(Self.text(try Self.inPieces(trace) { rng.pieceSize() }) == Self.text(whole), "split \(k)")
        }
    }
}
