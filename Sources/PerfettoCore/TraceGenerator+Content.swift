import CArrowABI

/// Log entries and measures (docs/lake-format.md `log_entries`, `measures`), streamed:
/// each entry or value is written as it is read, so memory does not grow with them.
extension TraceGenerator {
    /// The name of the process-level track of log entries.
    public static let logTrackName = "Logs"

    /// The uuid of the `Logs` track.
    public static func logTrackUUID(_ writer: TraceWriter) -> UInt64 {
        XXH64.hash("logs_track", seed: writer.processTrackUUID)
    }

    /// The uuid of the counter track of metric (name, unit).
    public static func counterTrackUUID(name: String, unit: String, _ writer: TraceWriter) -> UInt64 {
        let uuid = XXH64.hash("counter_track\u{1F}" + name + "\u{1F}" + unit, seed: writer.processTrackUUID)
        return uuid == 0 ? 1 : uuid
    }

    /// A metric's track name and counter unit: Perfetto's unit where it has one (ns,
    /// bytes, count), else the unit in the name, e.g. `frame_time (ms)`.
    public static func counterTrack(name: String, unit: String) -> (name: String, unit: CounterUnit) {
        switch unit {
        case "": return (name, .unspecified)
        case "ns", "nanoseconds": return (name, .timeNs)
        case "bytes", "byte", "B": return (name, .sizeBytes)
        case "count": return (name, .count)
        default: return ("\(name) (\(unit))", .unspecified)
        }
    }

    // MARK: - Log entries

    /// Writes the log entries of `stream` (columns time, target, level, msg; others
    /// ignored) with time in the range, as instant events on the `Logs` track, in stream
    /// order. The track is described before its first entry. Takes ownership of the stream.
    public func addLogEntries(stream: UnsafeMutablePointer<ArrowArrayStream>?) throws(PerfettoError) {
        try failingOnError { () throws(PerfettoError) in try writeLogEntries(stream: stream) }
    }

    private func writeLogEntries(stream: UnsafeMutablePointer<ArrowArrayStream>?) throws(PerfettoError) {
        let label = "log entries"
        try admit(stream, label: label)
        let reader = try ArrowStreamReader(moving: stream, label: label)
        let columns = try LogEntryColumns(reader)
        let (time, target, level, msg) = (columns.time, columns.target, columns.level, columns.msg)
        let track = Self.logTrackUUID(writer)
        while let batch = try reader.next() {
            let times = try TimeColumn(batch: batch, field: reader.fields[time], index: time, label: label)
            let targets = try StringColumn(batch: batch, field: reader.fields[target], index: target, label: label,
                                           pool: pool)
            let levels = try IntegerColumn(batch: batch, field: reader.fields[level], index: level, label: label,
                                           timesOnly: false)
            let messages = try TextColumn(batch: batch, field: reader.fields[msg], index: msg, label: label)
            var written = 0
            for row in 0..<batch.length {
                let t = try times.required(row)
                guard t >= rangeBegin, t <= rangeEnd else { continue }
                if !logTrackDescribed {
                    try writer.emitTrackDescriptor(uuid: track, name: Self.logTrackName, parent: writer.processTrackUUID,
                                                   counter: nil, mergeKey: nil)
                    logTrackDescribed = true
                }
                try writer.emitLogEntry(track: track, timestamp: UInt64(t), message: try messages.bytes(row),
                                        target: try targets.id(row), level: try levels.required(row), pool: pool)
                written += 1
            }
            stats.logEntries += written
            stats.logEntriesOutsideRange += batch.length - written
        }
    }

    // MARK: - Measures

    /// Writes the measures of `stream` (columns time, name, unit, value: float64; others
    /// ignored) with time in the range, as counter values. Each metric (name, unit) is a
    /// counter track under the process, described when its first value in the range is
    /// read (so in order of first appearance). Takes ownership of the stream.
    public func addMeasures(stream: UnsafeMutablePointer<ArrowArrayStream>?) throws(PerfettoError) {
        try failingOnError { () throws(PerfettoError) in try writeMeasures(stream: stream) }
    }

    private func writeMeasures(stream: UnsafeMutablePointer<ArrowArrayStream>?) throws(PerfettoError) {
        let label = "measures"
        try admit(stream, label: label)
        let reader = try ArrowStreamReader(moving: stream, label: label)
        let columns = try MeasureColumns(reader)
        let (time, name, unit, value) = (columns.time, columns.name, columns.unit, columns.value)
        while let batch = try reader.next() {
            let times = try TimeColumn(batch: batch, field: reader.fields[time], index: time, label: label)
            let names = try StringColumn(batch: batch, field: reader.fields[name], index: name, label: label, pool: pool)
            let units = try StringColumn(batch: batch, field: reader.fields[unit], index: unit, label: label, pool: pool)
            let values = try DoubleColumn(batch: batch, field: reader.fields[value], index: value, label: label)
            var written = 0
            for row in 0..<batch.length {
                let t = try times.required(row)
                guard t >= rangeBegin, t <= rangeEnd else { continue }
                let key = UInt64(try names.id(row)) << 32 | UInt64(try units.id(row))
                var track = counterTracks.get(key)
                if track == 0 { track = try describeCounterTrack(key) }
                try writer.emitCounterValue(track: track, timestamp: UInt64(t), value: try values.required(row))
                written += 1
            }
            stats.measures += written
            stats.measuresOutsideRange += batch.length - written
        }
    }

    /// `shown` (metric `name`'s track name), or, when an earlier metric's track has that
    /// name (`x` in bytes and `x` with no unit are both shown as `x`), the metric name with
    /// its unit, `x (no unit)` for none, then numbered: two counter tracks never share a name.
    func uniqueCounterTrackName(_ shown: String, name: String, unit: String) -> String {
        if counterTrackNames.insert(shown).inserted { return shown }
        let withUnit = "\(name) (\(unit.isEmpty ? "no unit" : unit))"
        if counterTrackNames.insert(withUnit).inserted { return withUnit }
        var n = 2
        while !counterTrackNames.insert("\(withUnit) \(n)").inserted { n += 1 }
        return "\(withUnit) \(n)"
    }

    private func describeCounterTrack(_ key: UInt64) throws(PerfettoError) -> UInt64 {
        let name = pool.string(UInt32(truncatingIfNeeded: key >> 32))
        let unit = pool.string(UInt32(truncatingIfNeeded: key))
        let uuid = Self.counterTrackUUID(name: name, unit: unit, writer)
        let track = Self.counterTrack(name: name, unit: unit)
        try writer.emitTrackDescriptor(uuid: uuid, name: uniqueCounterTrackName(track.name, name: name, unit: unit),
                                       parent: writer.processTrackUUID, counter: track.unit, mergeKey: nil)
        counterTracks.set(key, uuid)
        stats.counterTracks += 1
        return uuid
    }
}
