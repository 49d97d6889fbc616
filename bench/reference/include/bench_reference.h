/* Benchmark references for pmm-bench, not part of the shipped library: a minimal C
 * encoder of the standard writer workload (docs/benchmarks.md), producing the same bytes
 * as the writer, in two variants, and the heap figure of the async held-bytes line. */
#ifndef BENCH_REFERENCE_H
#define BENCH_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

/* Bytes the allocator has handed out and not had back (malloc'd and mmapped blocks). */
size_t bench_heap_bytes_in_use(void);

typedef struct {
    const uint8_t *ptr;
    size_t len;
} bench_str;

/* A span: times and indices into the workload's pools (location = (file, line) pair). */
typedef struct {
    uint64_t begin, end;
    uint16_t name, target, location;
} bench_span;

typedef struct {
    uint64_t process_uuid, async_uuid;
    bench_str exe;
    size_t thread_count;
    const uint64_t *thread_uuids;
    const int32_t *thread_ids;
    const bench_str *thread_names;
    const bench_str *names, *targets, *files;
    size_t name_count, target_count, file_count, location_count;
    const uint32_t *location_file, *location_line;
    const size_t *thread_span_counts;
    const bench_span *const *thread_spans;
    size_t async_count;
    const bench_span *async_spans;
} bench_workload;

/* Strings interned by hashing their bytes on every call (the writer's situation). */
#define BENCH_INTERN_PER_CALL 0
/* Strings given as pool indices resolved to ids once (the generator's situation). */
#define BENCH_PRE_RESOLVED 1

/* Encodes the workload into out (capacity cap; no growth: returns 0 if too small) and
 * returns the byte count; *thread_seconds is the time from the start to the end of the
 * thread spans (CLOCK_MONOTONIC). */
size_t bench_reference_encode(const bench_workload *w, int mode, uint8_t *out, size_t cap,
                              double *thread_seconds);

#endif
