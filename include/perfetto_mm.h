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
 * - Thread safety: a writer is not thread-safe; use each writer from one thread at a
 *   time. Different writers may be used from different threads at once.
 * - Ownership: a writer is owned by the caller from creation until pmm_writer_free().
 *   Memory returned by pmm_writer_take_buffer() is owned by the caller and released
 *   with pmm_buffer_free(). Every other pointer the library returns stays owned by
 *   the library (see each function).
 */
#ifndef PERFETTO_MM_H
#define PERFETTO_MM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes ---------------------------------------------------------------- */

typedef int32_t pmm_status;

#define PMM_OK 0
/* A NULL handle or pointer, a NULL string with a non-zero length, a bad size. */
#define PMM_ERR_INVALID_ARGUMENT 1
/* A string argument is not valid UTF-8. Nothing was written. */
#define PMM_ERR_INVALID_UTF8 2
/* A call in the wrong order: a span before pmm_writer_set_current_thread(), an async
   span before pmm_writer_emit_async_track_descriptor(), taking the buffer of a writer
   that has no buffer sink. Nothing was written; the writer can still be used. */
#define PMM_ERR_CALL_ORDER 3
/* The sink callback returned non-zero. The writer is stopped. */
#define PMM_ERR_SINK 4
/* Writing to the file descriptor failed. The writer is stopped. */
#define PMM_ERR_IO 5
/* Memory could not be allocated. The writer is stopped. */
#define PMM_ERR_OUT_OF_MEMORY 6
/* The writer stopped on an earlier error (SINK, IO, OUT_OF_MEMORY) and refuses every
   call but pmm_writer_free(). Its output is incomplete. */
#define PMM_ERR_WRITER_STOPPED 7
/* Input data (an Arrow stream, a scenario) is malformed or of an unsupported type. */
#define PMM_ERR_INVALID_DATA 8

/* ---- Library --------------------------------------------------------------------- */

/* The library version, e.g. "0.1.0". Static storage: never free it. */
const char *pmm_version(void);

/* The message of the last failed pmm_ call on the calling thread, NUL-terminated, or ""
   when no call failed yet. Owned by the library; valid until the next failing pmm_
   call on the same thread. */
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
   pieces of at least `chunk_size` bytes (0 for 1 MiB) ending on packet boundaries. */
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

/* Makes the thread track of `stream_id` the track of the following spans. */
pmm_status pmm_writer_set_current_thread(pmm_writer *writer, const char *stream_id,
                                         size_t stream_id_len);

/* The "Async Operations" track descriptor. Only the first call writes it. */
pmm_status pmm_writer_emit_async_track_descriptor(pmm_writer *writer);

/* A slice [begin_ns, end_ns] on the current thread track: a begin and an end packet. */
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

#ifdef __cplusplus
}
#endif

#endif /* PERFETTO_MM_H */
