/*
 * perfetto_mm.h: the C ABI of libperfetto_mm.so, micromegas' Perfetto trace writer.
 *
 * C99; usable from C++. Every exported name starts with `pmm_`.
 *
 * The writer produces exactly the bytes of micromegas' own Rust writer for the same
 * calls: a Perfetto `Trace` made of framed `TracePacket`s, with interned names,
 * categories (the span `target`) and source locations.
 *
 * Conventions
 * - Every call that can fail returns a pmm_status: PMM_OK (0) or an error code below.
 *   On error, pmm_last_error() gives a message for this thread. No call aborts the
 *   process on bad input: NULL handles, NULL pointers, invalid UTF-8, wrong call order
 *   and failing sinks all return an error code.
 * - Strings are passed as a pointer and a byte length, need not be NUL-terminated and
 *   must be UTF-8. A NULL pointer is accepted only with length 0 (the empty string).
 *   The library copies what it keeps; the caller's strings may change after the call.
 *   A length no buffer can have (one reaching past the top of user address space,
 *   SIZE_MAX among them) is PMM_ERR_INVALID_ARGUMENT before any byte is read; any other
 *   length is read as given, so it must be the buffer's. The same holds for byte buffers
 *   (pmm_validator_feed()) and for pmm_generator_options.thread_count.
 * - Thread safety: a writer is not thread-safe; use each writer from one thread at a
 *   time (the library's own worker thread in pmm_generator_finish() is internal: it
 *   never outlives the call). Different writers may be used from different threads at once. A caller that
 *   shares a writer between threads must serialize every call on it with one lock,
 *   counting calls on a generator over it as calls on the writer (they write into it),
 *   and must not call pmm_writer_free() or pmm_generator_free() while another thread is
 *   in a call on them (take the lock first). pmm_last_error() is per thread: read it
 *   on the thread whose call failed (the Python package does all of this).
 * - Output parameters: a call that returns an error leaves what its output pointers
 *   point to as it was (stats, counts, examples, a taken buffer and its length), except
 *   the `*out` of a call creating a handle, which is set to NULL (when `out` is not NULL).
 * - Ownership: a writer is owned by the caller from creation until pmm_writer_free().
 *   Memory returned by pmm_writer_take_buffer() is owned by the caller and released
 *   with pmm_buffer_free(). Every other pointer the library returns stays owned by
 *   the library (see each function). Using a handle after its free function, or
 *   freeing it twice, is undefined behaviour, as with free(); every free function
 *   accepts NULL.
 */
#ifndef PERFETTO_MM_H
#define PERFETTO_MM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Arrow C Data and C Stream Interfaces ------------------------------------------
   The structures exactly as the Arrow specification defines them, under its guard
   macros, so this header coexists with arrow/c/abi.h or nanoarrow.h. */

#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
  const char* format;
  const char* name;
  const char* metadata;
  int64_t flags;
  int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;
  void (*release)(struct ArrowSchema*);
  void* private_data;
};

struct ArrowArray {
  int64_t length;
  int64_t null_count;
  int64_t offset;
  int64_t n_buffers;
  int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;
  void (*release)(struct ArrowArray*);
  void* private_data;
};

#endif /* ARROW_C_DATA_INTERFACE */

#ifndef ARROW_C_STREAM_INTERFACE
#define ARROW_C_STREAM_INTERFACE

struct ArrowArrayStream {
  int (*get_schema)(struct ArrowArrayStream*, struct ArrowSchema* out);
  int (*get_next)(struct ArrowArrayStream*, struct ArrowArray* out);
  const char* (*get_last_error)(struct ArrowArrayStream*);
  void (*release)(struct ArrowArrayStream*);
  void* private_data;
};

#endif /* ARROW_C_STREAM_INTERFACE */

/* ---- Status codes ---------------------------------------------------------------- */

typedef int32_t pmm_status;

#define PMM_OK 0
/* A NULL handle or pointer, a NULL string with a non-zero length, a bad size. */
#define PMM_ERR_INVALID_ARGUMENT 1
/* A string argument is not valid UTF-8. Nothing was written. */
#define PMM_ERR_INVALID_UTF8 2
/* A call in the wrong order: a span before pmm_writer_set_current_thread(), an async
   span before pmm_writer_emit_async_track_descriptor(), taking the buffer of a writer
   that has no buffer sink. Nothing was written; the writer can still be used. Also any
   call on a finished generator, or on one that failed (see the generator section), and
   pmm_validator_feed() after pmm_validator_finish() or pmm_validator_get_example() before. */
#define PMM_ERR_CALL_ORDER 3
/* The sink callback returned non-zero. The writer is stopped. */
#define PMM_ERR_SINK 4
/* Writing to the file descriptor failed: the writer is stopped. Also reading one
   (pmm_validate_fd()). */
#define PMM_ERR_IO 5
/* Memory could not be allocated. The writer is stopped. */
#define PMM_ERR_OUT_OF_MEMORY 6
/* The writer stopped on an earlier error (SINK, IO, OUT_OF_MEMORY) and refuses every
   call but pmm_writer_free(). Its output is incomplete. */
#define PMM_ERR_WRITER_STOPPED 7
/* Input data (an Arrow stream, a scenario) is malformed or of an unsupported type. */
#define PMM_ERR_INVALID_DATA 8

/* ---- Library --------------------------------------------------------------------- */

/* The release version of the library and of the Python package that bundles it (their
   one definition: the Python build reads it from here). pmm_version() returns it. */
#define PMM_VERSION "0.2.0"

/* The version of the ABI this header declares. It changes whenever a function's
   signature, a struct's layout or a constant's value or meaning changes, not when a
   function is added. A caller built against this header checks at load time that
   pmm_abi_version() returns the same value (the Python package does). */
#define PMM_ABI_VERSION 2

/* The library version (PMM_VERSION when the library was built), NUL-terminated. Static
   storage: never free it. */
const char *pmm_version(void);

/* The library's PMM_ABI_VERSION. */
int32_t pmm_abi_version(void);

/* The message of the last failed pmm_ call on the calling thread, NUL-terminated, or ""
   when no call failed on this thread yet. A successful call leaves it unchanged, so read
   it only after a call returned an error. Owned by the library; valid until the next
   failing pmm_ call on the same thread, or the thread's exit. Each thread has its own:
   failures on other threads never change it. A message may quote the input (a stream id,
   a string value), which is passed with a length and may hold NUL bytes: each NUL byte of
   the message is shown as the two characters backslash and '0' ("stream 'a\0b'"), so
   the string up to its terminating NUL is the whole message. UTF-8. */
const char *pmm_last_error(void);

/* ---- Writer ---------------------------------------------------------------------- */

/* An opaque trace writer. */
typedef struct pmm_writer pmm_writer;

/* A sink callback: receives `len` bytes at `data` (owned by the library, valid only
   during the call) and returns 0 on success. Any other value stops the writer and the
   call that triggered it returns PMM_ERR_SINK. `ctx` is the pointer given at creation.
   The callback must not call back into the same writer. */
typedef int32_t (*pmm_write_fn)(void *ctx, const uint8_t *data, size_t len);

/* A writer that keeps the whole trace in memory; get it with pmm_writer_take_buffer().
   `initial_capacity` bytes are allocated up front (0 for a small default).
   `process_id` names the process (micromegas' process uuid text); *out receives the
   writer, owned by the caller. */
pmm_status pmm_writer_new_buffer(const char *process_id, size_t process_id_len,
                                 size_t initial_capacity, pmm_writer **out);

/* A writer that hands its bytes to `write_fn` in whole packets. With chunk_size > 0
   each call is one chunk: whole packets adding up to at least chunk_size bytes (the
   last chunk may be smaller), so every chunk parses alone as a Trace; the k-th call
   (from 0) is the chunk with chunk_id k. With chunk_size 0, pieces of 64 KiB or more.
   pmm_writer_flush() ends the current chunk. */
pmm_status pmm_writer_new_callback(const char *process_id, size_t process_id_len,
                                   size_t chunk_size, pmm_write_fn write_fn, void *ctx,
                                   pmm_writer **out);

/* A writer that writes to the open file descriptor `fd` (which it never closes), in
   pieces of at least `chunk_size` bytes (0 for 1 MiB) ending on packet boundaries.
   write(2) is retried on EINTR and short writes; any other failure is PMM_ERR_IO, and
   what reached the descriptor may then end inside a packet. A pipe or socket whose
   reader has gone raises SIGPIPE, as write(2) does: a caller that ignores or blocks
   SIGPIPE gets PMM_ERR_IO (errno 32, EPIPE) instead. */
pmm_status pmm_writer_new_fd(const char *process_id, size_t process_id_len, int fd,
                             size_t chunk_size, pmm_writer **out);

/* Destroys the writer. Bytes not yet flushed to a callback or fd sink are discarded:
   call pmm_writer_flush() first. NULL is accepted and ignored. */
void pmm_writer_free(pmm_writer *writer);

/* The process track descriptor, named `exe`. */
pmm_status pmm_writer_emit_process_descriptor(pmm_writer *writer, const char *exe, size_t exe_len);

/* A thread track descriptor for the stream `stream_id`, child of the process track. */
pmm_status pmm_writer_emit_thread_descriptor(pmm_writer *writer, const char *stream_id,
                                             size_t stream_id_len, int32_t thread_id,
                                             const char *thread_name, size_t thread_name_len);

/* Makes the thread track of `stream_id` the track of the following spans. The writer
   does not check that the stream was described: spans on a stream never given to
   pmm_writer_emit_thread_descriptor() go to a track no descriptor names
   (PMM_PROBLEM_TRACK_UNDESCRIBED). */
pmm_status pmm_writer_set_current_thread(pmm_writer *writer, const char *stream_id,
                                         size_t stream_id_len);

/* The "Async Operations" track descriptor. Only the first call writes it. */
pmm_status pmm_writer_emit_async_track_descriptor(pmm_writer *writer);

/* A slice [begin_ns, end_ns] on the current thread track: a begin and an end packet,
   written as given (end_ns < begin_ns is not checked; Perfetto then misplaces the end). */
pmm_status pmm_writer_emit_span(pmm_writer *writer, uint64_t begin_ns, uint64_t end_ns,
                                const char *name, size_t name_len,
                                const char *target, size_t target_len,
                                const char *filename, size_t filename_len, uint32_t line);

/* The begin packet of an async span on the "Async Operations" track. */
pmm_status pmm_writer_emit_async_span_begin(pmm_writer *writer, uint64_t timestamp_ns,
                                            const char *name, size_t name_len,
                                            const char *target, size_t target_len,
                                            const char *filename, size_t filename_len,
                                            uint32_t line);

/* The end packet of an async span; pass the same strings as its begin. */
pmm_status pmm_writer_emit_async_span_end(pmm_writer *writer, uint64_t timestamp_ns,
                                          const char *name, size_t name_len,
                                          const char *target, size_t target_len,
                                          const char *filename, size_t filename_len,
                                          uint32_t line);

/* Hands buffered bytes to the sink and ends the current chunk. No effect on a buffer
   writer. */
pmm_status pmm_writer_flush(pmm_writer *writer);

/* Buffer writers only: moves the trace written so far to the caller. *data receives
   memory owned by the caller (release it with pmm_buffer_free(); it may be NULL when
   *len is 0) and *len its size. The writer continues with an empty buffer. */
pmm_status pmm_writer_take_buffer(pmm_writer *writer, uint8_t **data, size_t *len);

/* Releases memory returned by pmm_writer_take_buffer(). NULL is accepted. */
void pmm_buffer_free(uint8_t *data);

/* ---- Trace generator ----------------------------------------------------------------

   Writes a process's trace from Arrow data, in the packet order of micromegas: the
   process and thread descriptors (at creation), each thread's spans (one
   pmm_generator_add_thread_spans() call per thread, in thread-list order), then the
   async spans (paired from the events of pmm_generator_add_async_events(), laid out
   and written by pmm_generator_finish()). Thread spans are streamed batch by batch;
   memory grows only with the number of async spans.

   Arrow streams: every function taking a `struct ArrowArrayStream *` takes ownership
   of it, whatever the outcome (even when it returns an error): the library moves the
   struct out (setting the caller's `release` to NULL) and releases the stream when
   done. The caller's struct memory itself stays the caller's. A call refused before
   reading (a finished or failed generator, a stream id not in the thread list, invalid
   UTF-8) or ignored (its span type not requested) releases the stream without calling
   get_schema or get_next, so the stream cannot fail the generator then.

   A stream whose get_schema or get_next callback returns non-zero is PMM_ERR_INVALID_DATA
   (a failure of the generator, below), with a message quoting the stream's
   get_last_error() text and the code.

   Validation: a violation of any of these is PMM_ERR_INVALID_DATA, never a crash:
   - the schema: format "+s", n_children >= 0 with a non-NULL children array, and the
     types of the columns read;
   - every array read (the batch, each column read, each dictionary): length and offset
     >= 0 and their sums free of overflow; n_buffers exactly what the format has (struct
     1, integers and dictionary indices 2, utf8 and large_utf8 3, utf8_view 3 or more);
     n_children as the format has (the schema's column count for a batch, 0 otherwise);
     a non-NULL buffers array (each column and dictionary: the batch's is never read);
     a column at least as long as the batch needs; a validity bitmap when null_count > 0;
     a batch with null_count <= 0 (a null row of the batch itself is refused);
   - every buffer's extent (offset + length elements) within what memory can hold (the
     top of user address space, 2^47 bytes on x86-64): an impossible length or offset,
     such as an int64 offset of 2^59, is refused before any read;
   - each row read: string offsets (0 <= start <= end, within memory), utf8_view views
     (length >= 0, a data buffer that exists, offset + length within that buffer's size,
     which utf8_view carries), dictionary indices (0 <= index < dictionary length), UTF-8.
   What cannot be validated: the C Data Interface carries no buffer sizes (but
   utf8_view's), so a plausible but wrong pointer, length or offset (a buffer shorter than
   the array says) is read as given, as the interface requires producers never to do.
   Buffers need not be aligned.

   NULL buffers: where the Arrow specification lets a producer leave a buffer NULL, these
   are accepted (in the buffers array, which must itself be non-NULL but the batch's):
   - the batch's own buffers (its struct validity) and its buffers array: never read;
   - a validity bitmap (buffers[0]) when null_count is 0 (a bitmap given is then not
     read) or negative (-1, not computed: a bitmap given is read): every row valid;
   - in a batch of 0 rows, every other buffer of its columns (values, offsets or views,
     string data, dictionary indices; with no index buffer the dictionary is not read and
     may be NULL);
   - the data buffer of a utf8 or large_utf8 array (column or dictionary) while every
     string read is empty (start offset = end offset);
   - the offsets or views and data of a dictionary of length 0 (non-null rows then have
     an index out of range: only null rows can use it);
   - utf8_view: a data buffer no view longer than 12 bytes points into, and the sizes
     buffer (the last) when there is no data buffer (n_buffers 3).
   Any other NULL buffer read (the values of a column with rows, the offsets of a
   non-empty dictionary, the data behind a non-empty string) is PMM_ERR_INVALID_DATA,
   naming the column.

   Memory does not grow with a claimed length: dictionary entries are mapped when an
   index first references them, so memory follows the rows and strings actually read. A
   failed allocation of the buffers that grow with the data (the trace buffer, string
   and interning tables, dictionary id caches, the async span records and their index)
   is PMM_ERR_OUT_OF_MEMORY. pmm_generator_finish() orders and
   places the async spans in Swift arrays, whose allocation failing would end the
   process: it first allocates (and gives back) the most they take, about 48 bytes a span
   (56 for thread-lanes, 24 for micromegas), and returns PMM_ERR_OUT_OF_MEMORY when that
   fails.

   Failure: an error other than PMM_ERR_INVALID_ARGUMENT or PMM_ERR_INVALID_UTF8 (which
   read and write nothing) or PMM_ERR_CALL_ORDER fails the generator: its trace is
   incomplete, and every later call but pmm_generator_free() returns PMM_ERR_CALL_ORDER
   with a message naming the first error ("the generator failed on an earlier error: ...").

   Threads: a generator, like its writer, is used from one thread at a time. */

typedef struct pmm_generator pmm_generator;

/* Span types (pmm_generator_options.span_types). */
#define PMM_SPANS_THREAD 1
#define PMM_SPANS_ASYNC 2
#define PMM_SPANS_BOTH 3

/* Async layouts (pmm_generator_options.async_layout). */
/* Overlapping async spans spread over lane tracks named "Async Operations", on each of
   which slices nest or are disjoint, so Perfetto shows every span correctly. With both
   lanes layouts, thread spans nested 512 deep or deeper (Perfetto's limit) go on "depth
   band" tracks under their thread (docs/async-spans.md, Thread spans). */
#define PMM_LAYOUT_LANES 0
/* micromegas' own layout: one track, only spans with both events in the range and
   begin < end; byte-identical to micromegas' server-side generation. */
#define PMM_LAYOUT_MICROMEGAS 1
/* Lanes under the thread tracks: each async span on a lane under the thread track of the
   stream its begin event came from (lanes per thread as PMM_LAYOUT_LANES); spans begun on
   a stream that is not a listed thread, or with no begin, on process-level lanes. */
#define PMM_LAYOUT_THREAD_LANES 2

/* Generator flags (pmm_generator_options.flags), for the lanes layouts. By default each
   lane track carries sibling_merge_behavior BY_SIBLING_MERGE_KEY with one key per lane
   group, each async slice the debug annotations span_id and parent_span_id, and a flow
   joins each async span to its parent span when both are in the trace. */
#define PMM_FLAG_NO_SPAN_ARGS 1 /* no span_id / parent_span_id annotations */
#define PMM_FLAG_NO_FLOWS 2     /* no parent -> child flows */

/* A thread of the process. Strings are borrowed for the duration of the call. */
typedef struct pmm_thread {
    const char *stream_id;
    size_t stream_id_len;
    int32_t thread_id;
    const char *thread_name; /* the display name */
    size_t thread_name_len;
} pmm_thread;

typedef struct pmm_generator_options {
    const char *exe; /* the process name */
    size_t exe_len;
    const pmm_thread *threads; /* thread_count entries, distinct stream ids; may be NULL when 0 */
    size_t thread_count;
    int32_t span_types;   /* PMM_SPANS_* */
    int32_t async_layout; /* PMM_LAYOUT_* */
    int64_t range_begin_ns; /* inclusive; >= 0 */
    int64_t range_end_ns;   /* inclusive; >= range_begin_ns */
    uint32_t flags;         /* PMM_FLAG_* or 0; ignored by PMM_LAYOUT_MICROMEGAS */
} pmm_generator_options;

/* What the generation wrote and what the async matcher decided. */
typedef struct pmm_generator_stats {
    uint64_t thread_spans;              /* written */
    uint64_t thread_spans_outside_range; /* read and skipped */
    uint64_t async_spans;               /* written */
    uint64_t async_tracks;              /* lane tracks used */
    uint64_t async_events;              /* read, inside the range */
    uint64_t async_events_outside_range; /* read and ignored */
    uint64_t async_complete;            /* both events, end >= begin */
    uint64_t async_open_at_end;         /* no end: ends at the range end */
    uint64_t async_begun_before_range;  /* no begin: begins at the range begin */
    uint64_t async_duplicates;          /* extra begin/end events (earliest wins) */
    uint64_t async_dropped;             /* end before begin: not written */
    uint64_t log_entries;               /* written (instant events on the Logs track) */
    uint64_t log_entries_outside_range; /* read and skipped */
    uint64_t measures;                  /* written (counter values) */
    uint64_t measures_outside_range;    /* read and skipped */
    uint64_t counter_tracks;            /* one per metric (name, unit) with a value in the range */
} pmm_generator_stats;

/* A generator writing to `writer` (any sink); writes the descriptors now. The
   generator keeps the writer alive until pmm_generator_free(), even if the caller
   frees its writer handle first. `options` and its strings are read during the call
   only. *out receives the generator, owned by the caller. Options out of their domain
   (an unknown span type, layout or flag bit, range_begin_ns < 0 or after range_end_ns,
   a stream id listed twice) are PMM_ERR_INVALID_ARGUMENT, and nothing is written.
   The options and strings are checked first; then a writer already stopped (an earlier
   PMM_ERR_SINK, PMM_ERR_IO or PMM_ERR_OUT_OF_MEMORY on it, through the writer's own
   calls or another generator's) is PMM_ERR_WRITER_STOPPED, and nothing is written.
   Writing the descriptors can stop the writer: that error (PMM_ERR_SINK, PMM_ERR_IO
   or PMM_ERR_OUT_OF_MEMORY) is returned, and the descriptors before it were written.
   On any error *out is NULL. */
pmm_status pmm_generator_new(pmm_writer *writer, const pmm_generator_options *options,
                             pmm_generator **out);

/* Time columns (begin, end, time) of the streams below: timestamp[s|ms|us|ns] with
   any time zone or none (the instant is UTC either way), or int64 nanoseconds since
   the epoch; converted exactly to nanoseconds; a value outside the int64-nanosecond
   range is PMM_ERR_INVALID_DATA, naming the column. */

/* Writes the spans of thread `stream_id` (one of the options' threads) from `stream`:
   record batches with columns begin, end (time columns), name, target,
   filename (utf8, large_utf8, utf8_view, or a dictionary of any integer index over one
   of those; null reads as "") and line
   (an integer type; null reads as 0), other columns ignored. Spans with begin <=
   range end and end >= range begin are written, in stream order. Such a span with a
   negative begin (before 1970) is PMM_ERR_INVALID_DATA ("negative begin time"), which
   fails the generator, the spans before it already written; a span with a negative
   begin ending before range_begin_ns is outside the range (skipped). Takes ownership of
   `stream`. Ignored (the stream released) when thread spans are not requested. A
   thread's spans may also come in several calls (groups of its batches), other threads'
   calls between them or not: the depth bands of the lanes layouts count the spans of the
   thread still open from its calls before. */
pmm_status pmm_generator_add_thread_spans(pmm_generator *generator, const char *stream_id,
                                          size_t stream_id_len, struct ArrowArrayStream *stream);

/* Reads async events from `stream`: columns time (a time column), event_type
   ("begin" or "end"), span_id, parent_span_id (integers), name, target, filename,
   line, and depth if present; events outside the range are ignored. May be called
   several times. Takes ownership of `stream`. Ignored when async spans are not
   requested. */
pmm_status pmm_generator_add_async_events(pmm_generator *generator, struct ArrowArrayStream *stream);

/* Writes the log entries of `stream` with time in the range, in stream order, as
   instant events on a process-level track named "Logs" (described before its first
   entry): columns time (a time column, as above), target and msg (string types as
   above; null reads as ""), level (an integer type: 1 fatal, 2 error, 3 warn, 4 info,
   5 debug, 6 trace), other columns ignored. Event name = msg cut to 100 bytes (at a
   UTF-8 character boundary), category = target, debug annotations `level` (its name;
   the number outside 1..6), `target`, and `message` (the whole msg) when the name is
   cut. Names are interned, up to 4096 distinct log names; later new ones are written
   inline (TrackEvent.name), so memory does not grow with the number of entries. May be
   called several times, at any point before pmm_generator_finish(); the entries'
   packets come where the call is made. Takes ownership of `stream`. */
pmm_status pmm_generator_add_log_entries(pmm_generator *generator, struct ArrowArrayStream *stream);

/* Writes the measures of `stream` with time in the range, in stream order, as counter
   values (TYPE_COUNTER, double_counter_value): columns time (a time column, as above),
   name and unit (string types), value (float64), other columns ignored. Each metric
   (name, unit) is a counter track under the process, described when its first value in
   the range is read: unit "ns", "bytes" and "count" become the CounterDescriptor unit,
   any other non-empty unit goes in the track name, e.g. "frame_time (ms)". Perfetto
   draws a counter from its values in time order; values are written as given. May be
   called several times before pmm_generator_finish(). Takes ownership of `stream`. */
pmm_status pmm_generator_add_measures(pmm_generator *generator, struct ArrowArrayStream *stream);

/* The statistics so far (for progress reports). PMM_ERR_CALL_ORDER once the generator
   failed. */
pmm_status pmm_generator_get_stats(const pmm_generator *generator, pmm_generator_stats *stats);

/* Pairs and lays out the async spans, writes them, flushes the writer and fills
   `stats` (may be NULL). No call but pmm_generator_get_stats() and
   pmm_generator_free() is accepted afterwards.
   With the lanes layouts, 16,384 async spans or more and a second CPU to run on, each
   span's parent and lane are found on one worker thread the library starts while the
   calling thread writes the spans already placed (the bytes are the same). The worker
   runs with the asynchronous signals blocked (faults are not), calls back into nothing
   (no sink, no Arrow callback) and has ended when this call returns; if no thread can be
   started, the calling thread does all the work. */
pmm_status pmm_generator_finish(pmm_generator *generator, pmm_generator_stats *stats);

/* Destroys the generator (and releases its hold on the writer). NULL is ignored. */
void pmm_generator_free(pmm_generator *generator);

/* ---- Trace validation ----------------------------------------------------------------

   Checks any Perfetto trace the way Perfetto's trace processor reads it, streaming
   (memory bounded by the open slices, tracks, interned entries and open flows, not by
   the trace's size): framing (every record a whole Trace.packet, no trailing or cut
   packet), sequences (incremental state cleared before it is needed, interned ids
   defined before use and never redefined with another value, SEQ_NEEDS_INCREMENTAL_STATE
   where ids are used), track references (every event's track and every parent
   described, thread pids equal to their process's) and slice nesting as Perfetto's
   SliceTracker rebuilds it (events by timestamp, file order for ties; one stack per
   track; an end closes the topmost open slice of its name and category;
   misplaced_end_event; depth limit 512). It counts the slices Perfetto would show with
   another duration than the trace's own begin/end pairing (file order).

   A trace's problems are not errors: the calls return PMM_OK and report them in
   pmm_validation_stats and as examples. Errors are bad arguments, I/O errors reading a
   descriptor (PMM_ERR_IO) and memory (PMM_ERR_OUT_OF_MEMORY). */

/* Problem kinds: indices into pmm_validation_stats.problems and pmm_validation_example.kind. */
#define PMM_PROBLEM_TRUNCATED 1                     /* the trace ends inside a packet */
#define PMM_PROBLEM_FRAMING 2                       /* a record that is not Trace.packet; reading stops */
#define PMM_PROBLEM_MALFORMED_PACKET 3              /* a packet that is not valid protobuf (skipped) */
#define PMM_PROBLEM_PACKET_TOO_LARGE 4              /* a packet over 64 MiB, skipped unread */
#define PMM_PROBLEM_SEQUENCE_NOT_CLEARED 5          /* needs incremental state never cleared: dropped */
#define PMM_PROBLEM_NEEDS_INCREMENTAL_STATE_MISSING 6 /* interned ids used without the flag */
#define PMM_PROBLEM_INTERNED_ID_UNDEFINED 7         /* an interned id used before its definition */
#define PMM_PROBLEM_INTERNED_ID_REDEFINED 8         /* an interned id redefined with another value */
#define PMM_PROBLEM_TRACK_UNDESCRIBED 9             /* events on a track uuid never described */
#define PMM_PROBLEM_PARENT_UNDESCRIBED 10           /* a parent_uuid never described */
#define PMM_PROBLEM_THREAD_PID_MISMATCH 11          /* a thread's pid differs from its process's */
#define PMM_PROBLEM_TRACK_REDESCRIBED 12            /* a track uuid described twice, differently */
#define PMM_PROBLEM_EVENT_WITHOUT_TIMESTAMP 13
#define PMM_PROBLEM_EVENT_WITHOUT_TYPE 14           /* a TrackEvent Perfetto rejects */
#define PMM_PROBLEM_COUNTER_ON_NON_COUNTER_TRACK 15 /* or a counter event without a value */
#define PMM_PROBLEM_SLICE_ON_COUNTER_TRACK 16
#define PMM_PROBLEM_MISPLACED_END_EVENT 17          /* Perfetto's misplaced_end_event stat */
#define PMM_PROBLEM_UNMATCHED_END 18                /* a slice end that closes nothing */
#define PMM_PROBLEM_DEPTH_LIMIT 19                  /* a slice begun at depth >= 512: never ends */
#define PMM_PROBLEM_WRONG_DURATION 20               /* a slice shown with a wrong duration */
#define PMM_PROBLEM_FLOW_UNCONNECTED 21             /* a flow id on a single event */
/* Size of pmm_validation_stats.problems (index 0 is unused). */
#define PMM_PROBLEM_KIND_COUNT 22

/* At most this many examples of each kind are kept (the first ones found). */
#define PMM_VALIDATION_EXAMPLES_PER_KIND 5

typedef struct pmm_validation_stats {
    int32_t is_trace;              /* 0 when empty or the first record is not a Trace.packet */
    uint64_t problems_total;       /* the sum of problems[] */
    uint64_t wrong_duration_slices; /* problems[PMM_PROBLEM_WRONG_DURATION] */
    uint64_t misplaced_end_events;  /* problems[PMM_PROBLEM_MISPLACED_END_EVENT] */
    uint64_t bytes;
    uint64_t packets;
    uint64_t track_descriptors;
    uint64_t track_events;
    uint64_t slices;               /* TYPE_SLICE_BEGIN events */
    uint64_t slice_ends;           /* TYPE_SLICE_END events */
    uint64_t instants;             /* TYPE_INSTANT: zero-duration slices */
    uint64_t counters;             /* TYPE_COUNTER values (not slices) */
    uint64_t flows;                /* distinct flow ids */
    uint64_t debug_annotations;
    uint64_t slice_tracks;         /* tracks carrying slices */
    uint64_t open_at_end;          /* slices never ended (Perfetto shows them as not ended) */
    uint64_t max_depth;            /* deepest slice stack */
    /* Events replayed out of timestamp order because they arrived behind the validator's
       streaming window (a slice begin later than 256 begins after its turn on its track):
       that track's nesting results are approximate. A limit of the validator, not a problem. */
    uint64_t out_of_order_events;
    uint64_t problems[PMM_PROBLEM_KIND_COUNT]; /* count per PMM_PROBLEM_* kind */
} pmm_validation_stats;

typedef struct pmm_validation_example {
    int32_t kind;           /* PMM_PROBLEM_* */
    uint64_t packet_offset; /* byte offset of the packet's record in the trace */
    /* message_len bytes of UTF-8, then a NUL. Every byte of the message is kept: one that
       quotes a name of the trace may hold NUL bytes itself, so read message_len bytes, not
       up to the first NUL. Owned by the validator, valid until pmm_validator_free(). */
    const char *message;
    size_t message_len;
} pmm_validation_example;

/* A streaming validator: feed it the trace in pieces, then finish. */
typedef struct pmm_validator pmm_validator;

/* *out receives a new validator, owned by the caller (pmm_validator_free()). */
pmm_status pmm_validator_new(pmm_validator **out);

/* Validates the next `len` bytes of the trace (pieces may cut packets anywhere). The
   bytes are read during the call only. PMM_ERR_CALL_ORDER after pmm_validator_finish().
   A packet cut across pieces is buffered as its bytes arrive (at most 64 MiB, whatever
   length its header claims); PMM_ERR_OUT_OF_MEMORY when that buffer cannot grow, after
   which every feed is PMM_ERR_CALL_ORDER (pmm_validator_finish() reports the bytes read). */
pmm_status pmm_validator_feed(pmm_validator *validator, const uint8_t *data, size_t len);

/* Ends the input (a packet cut short is reported as PMM_PROBLEM_TRUNCATED) and fills
   `stats` (may be NULL). Later calls fill the same stats. */
pmm_status pmm_validator_finish(pmm_validator *validator, pmm_validation_stats *stats);

/* The number of examples kept (after pmm_validator_finish(); 0 before). */
pmm_status pmm_validator_example_count(const pmm_validator *validator, size_t *count);

/* Example `index` (0-based, in the order found) into *example; its message stays owned
   by the validator. PMM_ERR_CALL_ORDER before pmm_validator_finish(), and
   PMM_ERR_INVALID_ARGUMENT for an index >= pmm_validator_example_count(). */
pmm_status pmm_validator_get_example(const pmm_validator *validator, size_t index,
                                     pmm_validation_example *example);

/* Destroys the validator and its examples' messages. NULL is ignored. */
void pmm_validator_free(pmm_validator *validator);

/* Validates the whole trace in `data` (NULL only with len 0) and fills `stats` (may be
   NULL). With `out` non-NULL, *out receives the finished validator, owned by the caller,
   for its examples (pmm_validator_free()); with NULL nothing is kept. */
pmm_status pmm_validate_buffer(const uint8_t *data, size_t len, pmm_validation_stats *stats,
                               pmm_validator **out);

/* Validates what is readable from the open descriptor `fd`, to end of file, in 1 MiB
   reads (a pipe or socket works too); `fd` is not closed. Otherwise as
   pmm_validate_buffer(). On a read error returns PMM_ERR_IO and *out is NULL. */
pmm_status pmm_validate_fd(int fd, pmm_validation_stats *stats, pmm_validator **out);

/* The name of a problem kind ("misplaced_end_event", ...), static storage; NULL for an
   unknown kind. */
const char *pmm_problem_name(int32_t kind);

#ifdef __cplusplus
}
#endif

#endif /* PERFETTO_MM_H */
