/// Trace content beyond micromegas' own: log entries as instant events, counter tracks
/// and values, tracks with explicit merge keys, and async slice begins with span ids
/// as debug annotations and flows. None of it is written unless asked for, so traces
/// without it keep micromegas' bytes.
public enum ArgName: Int, CaseIterable, Sendable {
    case level, target, message, spanId, parentSpanId

    /// The annotation's name as shown in Perfetto (`args.<name>` in trace SQL).
    public var text: StaticString {
        switch self {
        case .level: return "level"
        case .target: return "target"
        case .message: return "message"
        case .spanId: return "span_id"
        case .parentSpanId: return "parent_span_id"
        }
    }

    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
    }
}

/// CounterDescriptor.unit values.
public enum CounterUnit: UInt8, Sendable {
    case unspecified = 0, timeNs = 1, count = 2, sizeBytes = 3
}

/// micromegas' log levels (its `Level`): 1 fatal ... 6 trace.
public enum LogLevel {
    static let names: [StaticString] = ["fatal", "error", "warn", "info", "debug", "trace"]

    /// The name of `level`, or nil outside 1...6.
    public static func name(_ level: Int64) -> StaticString? {
        guard level >= 1, level <= 6 else { return nil }
        return names[Int(level) - 1]
    }
}

extension TraceWriter {
    /// A log entry's event name is its message cut to at most this many bytes (at a
    /// UTF-8 character boundary); the whole message is then in the `message` arg.
    public static let logNameMaxBytes = 100
    /// Distinct log names interned at most; later new names are written inline
    /// (TrackEvent.name), so memory stays bounded however many distinct messages come.
    public static let maxInternedLogNames = 4096

    // MARK: - Descriptors

    /// A named track under `parent` with a counter descriptor and/or an explicit merge key.
    func emitTrackDescriptor(uuid: UInt64, name: UnsafeRawBufferPointer, parent: UInt64,
                                    extras: PacketEncoder.TrackExtras) throws(PerfettoError) {
        try checkRunning()
        guard UTF8Validation.isValid(name) else { throw .invalidUTF8("track name") }
        if let key = extras.mergeKey, !UTF8Validation.isValid(key) { throw .invalidUTF8("sibling_merge_key") }
        try writePacket { (sequence) throws(PerfettoError) in
            try PacketEncoder.writeTrackDescriptor(uuid: uuid, name: name, parent: parent, extras: extras,
                                                   sequence: sequence, into: buffer)
        }
    }

    /// `emitTrackDescriptor` with Swift strings.
    public func emitTrackDescriptor(uuid: UInt64, name: String, parent: UInt64, counter: CounterUnit?,
                                    mergeKey: String?) throws(PerfettoError) {
        try withBytes(name) { (name) throws(PerfettoError) in
            if let mergeKey {
                try withBytes(mergeKey) { (key) throws(PerfettoError) in
                    try emitTrackDescriptor(uuid: uuid, name: name, parent: parent,
                                            extras: .init(counter: counter, mergeKey: key))
                }
            } else {
                try emitTrackDescriptor(uuid: uuid, name: name, parent: parent, extras: .init(counter: counter))
            }
        }
    }

    // MARK: - Counters

    /// One counter value on counter track `track`.
    @inline(__always)
    public func emitCounterValue(track: UInt64, timestamp: UInt64, value: Double) throws(PerfettoError) {
        try checkRunning()
        try writePacket { (sequence) throws(PerfettoError) in
            try PacketEncoder.writeCounter(timestamp: timestamp, track: track, value: value, sequence: sequence,
                                           into: buffer)
        }
    }

    // MARK: - Log entries

    /// One log entry as an instant event on `track`: name = `message` cut to
    /// `logNameMaxBytes`, category = target, args `level`, `target` (and `message` when
    /// the name is cut). `message` must be valid UTF-8 (the caller checks it).
    public func emitLogEntry(track: UInt64, timestamp: UInt64, message: UnsafeRawBufferPointer, target: UInt32,
                             level: Int64, pool: StringPool) throws(PerfettoError) {
        try checkRunning()
        var new = PacketEncoder.NewEntries()
        var ids = PacketEncoder.EventIds(category: 0, name: 0, location: 0, line: 0)
        var event = PacketEncoder.RichEvent(type: 3, timestamp: timestamp, track: track)  // TYPE_INSTANT
        var argNames = PacketEncoder.Few<PacketEncoder.NewArgName>()
        let cut = Self.cutLength(message, Self.logNameMaxBytes)
        let name = UnsafeRawBufferPointer(rebasing: message[0..<cut])
        do {
            if cachedPool !== pool { resetPoolCache(pool) }
            let t = Int(target)
            ids.category = t < pooledCategoryIids.count ? pooledCategoryIids[t] : 0
            if ids.category == 0 {
                let bytes = pool.bytes(target)
                (ids.category, new.hasCategory) = try internValid(bytes, extra: 0, in: categories)
                new.category = bytes
                store(ids.category, at: t, in: &pooledCategoryIids)
            }
            let hash = names.hash(name, extra: 0)
            ids.name = names.lookup(name, extra: 0, hash: hash)
            if ids.name == 0 && internedLogNames < Self.maxInternedLogNames {
                ids.name = try names.insert(name, extra: 0, hash: hash)
                internedLogNames += 1
                new.hasName = true
                new.name = name
            }
        } catch {
            stopOnError(error)
            throw error
        }
        event.category = ids.category
        if ids.name != 0 { event.nameIid = ids.name } else { event.inlineName = name }
        var levelArg = PacketEncoder.DebugArg(nameIid: argName(.level, &argNames))
        if let levelName = LogLevel.name(level) {
            levelArg.string = UnsafeRawBufferPointer(start: levelName.utf8Start, count: levelName.utf8CodeUnitCount)
        } else {
            levelArg.int = level
        }
        event.args.append(levelArg)
        event.args.append(PacketEncoder.DebugArg(nameIid: argName(.target, &argNames), string: pool.bytes(target)))
        if cut < message.count {
            event.args.append(PacketEncoder.DebugArg(nameIid: argName(.message, &argNames), string: message))
        }
        try writePacket { (sequence) throws(PerfettoError) in
            try PacketEncoder.writeRichEvent(event, ids: ids, new: new, newArgNames: argNames, sequence: sequence,
                                             into: buffer)
        }
    }

    /// The length of `bytes` cut to at most `limit` bytes without splitting a UTF-8 character.
    static func cutLength(_ bytes: UnsafeRawBufferPointer, _ limit: Int) -> Int {
        guard bytes.count > limit else { return bytes.count }
        var n = limit
        // Back off continuation bytes (10xxxxxx) so the cut starts a character.
        while n > 0 && bytes[n] & 0xC0 == 0x80 { n -= 1 }
        return n
    }

    /// The iid of annotation name `name`, interning it (and recording it in `new`) on first use.
    @inline(__always)
    func argName(_ name: ArgName, _ new: inout PacketEncoder.Few<PacketEncoder.NewArgName>) -> UInt64 {
        let existing = argNameIids[name.rawValue]
        if existing != 0 { return existing }
        argNameCount += 1
        argNameIids[name.rawValue] = argNameCount
        new.append(PacketEncoder.NewArgName(iid: argNameCount, name: name.bytes))
        return argNameCount
    }

    // MARK: - Async slices with args and flows

    /// An async slice's begin packet with optional span id args and flows, then (if
    /// `end` is given) its end packet. Strings come from `pool`, as `emitPooledSlice`.
    public func emitPooledRichSlice(track: UInt64, begin: UInt64, end: UInt64, name: UInt32, target: UInt32,
                                    filename: UInt32, line: UInt32, pool: StringPool, spanIds: (Int64, Int64)?,
                                    flowIds: UnsafeBufferPointer<UInt64>?, terminatingFlowId: UInt64) throws(PerfettoError) {
        try checkRunning()
        var new = PacketEncoder.NewEntries()
        let ids = try pooledIds(name: name, target: target, filename: filename, line: line, pool: pool, new: &new)
        var event = PacketEncoder.RichEvent(type: 1, timestamp: begin, track: track)
        event.category = ids.category
        event.nameIid = ids.name
        event.location = ids.location
        var argNames = PacketEncoder.Few<PacketEncoder.NewArgName>()
        if let (spanId, parentSpanId) = spanIds {
            event.args.append(PacketEncoder.DebugArg(nameIid: argName(.spanId, &argNames), string: nil, int: spanId))
            event.args.append(PacketEncoder.DebugArg(nameIid: argName(.parentSpanId, &argNames), string: nil,
                                                     int: parentSpanId))
        }
        event.flowIds = flowIds
        event.terminatingFlowId = terminatingFlowId
        try writePacket { (sequence) throws(PerfettoError) in
            try PacketEncoder.writeRichEvent(event, ids: ids, new: new, newArgNames: argNames, sequence: sequence,
                                             into: buffer)
        }
        try writePacket { (sequence) throws(PerfettoError) in
            try PacketEncoder.writeEvent(type: 2, timestamp: end, trackUUID: track, ids: ids,
                                         new: PacketEncoder.NewEntries(), sequence: sequence, into: buffer)
        }
    }
}

extension TraceWriter {
    /// The pool-cached iids of (`name`, `target`) with `location` (a source-location
    /// iid the caller got from this writer), or nil when one is not resolved yet, the
    /// pool is not the cached one, or `spanArgs` and their names are not interned yet:
    /// then `emitPooledRichSlice` is the way.
    @inline(__always)
    func knownIds(name: UInt32, target: UInt32, location: UInt64, line: UInt32, pool: StringPool,
                  spanArgs: Bool) -> PacketEncoder.EventIds? {
        guard cachedPool === pool, location != 0 else { return nil }
        if spanArgs, argNameIids[ArgName.spanId.rawValue] == 0 || argNameIids[ArgName.parentSpanId.rawValue] == 0 {
            return nil
        }
        let n = Int(name), t = Int(target)
        guard n < pooledNameIids.count, t < pooledCategoryIids.count else { return nil }
        let ids = PacketEncoder.EventIds(category: pooledCategoryIids[t], name: pooledNameIids[n], location: location,
                                         line: line)
        return ids.name != 0 && ids.category != 0 ? ids : nil
    }

    /// `emitPooledRichSlice` with `ids` from `knownIds` (nothing new to intern): the same bytes.
    /// `trackField`: `PacketEncoder.trackField(track)`.
    @inline(__always)
    func emitKnownRichSlice(track: UInt64, trackField: PacketEncoder.PackedField, begin: UInt64, end: UInt64,
                            ids: PacketEncoder.EventIds, spanIds: (Int64, Int64)?, flowIds: UnsafeBufferPointer<UInt64>?,
                            terminatingFlowId: UInt64) throws(PerfettoError) {
        try checkRunning()
        var args: (UInt64, Int64, UInt64, Int64)?
        if let (spanId, parentSpanId) = spanIds {
            // knownIds checked that both names are interned; the table has one entry per
            // `ArgName`, so they are read without bounds checks.
            args = argNameIids.withUnsafeBufferPointer { names in
                (names[ArgName.spanId.rawValue], spanId, names[ArgName.parentSpanId.rawValue], parentSpanId)
            }
        }
        // Both packets at once when neither is the sequence's first and the begin cannot fill
        // a chunk (the chunker never cuts between them then): the same bytes, packets and chunks.
        let flowCount = flowIds?.count ?? 0
        if packetCount > 0, flowCount < Int(Int32.max),
           chunker.chunkSize - buffer.count > PacketEncoder.laneSliceBound(flowCount: flowCount) {
            do {
                try PacketEncoder.writeLaneSlice(begin: begin, end: end, track: trackField, ids: ids, args: args,
                                                 flowIds: flowIds, terminatingFlowId: terminatingFlowId, into: buffer)
                packetCount += 2
                try chunker.packetEnded(buffer)
            } catch {
                stopOnError(error)
                throw error
            }
            return
        }
        try emitKnownRichSliceApart(track: track, begin: begin, end: end, ids: ids, args: args, flowIds: flowIds,
                                    terminatingFlowId: terminatingFlowId)
    }

    /// `emitKnownRichSlice`'s two packets one by one (the first of the sequence, or a chunk may be cut after the begin).
    @inline(never)
    func emitKnownRichSliceApart(track: UInt64, begin: UInt64, end: UInt64, ids: PacketEncoder.EventIds,
                                 args: (UInt64, Int64, UInt64, Int64)?, flowIds: UnsafeBufferPointer<UInt64>?,
                                 terminatingFlowId: UInt64) throws(PerfettoError) {
        var fields = PacketEncoder.LaneEndFields(packetEnd: -1, length: 0, category: 0..<0, rest: 0..<0)
        try writePacket { (sequence) throws(PerfettoError) in
            fields = try PacketEncoder.writeLaneBegin(timestamp: begin, track: track, ids: ids, args: args,
                                                      flowIds: flowIds, terminatingFlowId: terminatingFlowId,
                                                      sequence: sequence, into: buffer)
        }
        try writePacket { (sequence) throws(PerfettoError) in
            // The end repeats the begin's fields: copied while the begin packet is the last
            // one in the buffer (not when a chunk was cut between the two).
            if buffer.count == fields.packetEnd {
                try PacketEncoder.writeLaneEnd(after: fields, timestamp: end, sequence: sequence, into: buffer)
            } else {
                try PacketEncoder.writeLaneEnd(timestamp: end, track: track, ids: ids, sequence: sequence, into: buffer)
            }
        }
    }

    /// The source-location iid of (`filename`, `line`) (pool ids) if the pool caches it, else 0.
    @inline(__always)
    func knownLocationIid(filename: UInt32, line: UInt32, pool: StringPool) -> UInt64 {
        guard cachedPool === pool else { return 0 }
        return pooledLocationIids.get(UInt64(filename) << 32 | UInt64(line))
    }
}
