/*
 * async_oom: running out of memory while async events are paired (records, span index)
 * or ordered and placed (pmm_generator_finish), or while the validator assembles a packet
 * cut across pieces, is PMM_ERR_OUT_OF_MEMORY, not the end of the process. The address space is limited (RLIMIT_AS, as `ulimit -v` does) just above
 * what the process uses once its 2,000,000 events are built. Not run under valgrind,
 * which has an address space of its own.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "arrow_build.h"

static const char pid[] = "34d7c06d-3163-4111-863e-c5fc09d22d51";
enum { BATCHES = 8, ROWS = 250000 };

/* Bytes of address space in use (VmSize). */
static long long address_space(void) {
    char line[256];
    long long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

static int limit_to(long long bytes) {
    struct rlimit r;
    if (getrlimit(RLIMIT_AS, &r) != 0) return -1;
    r.rlim_cur = bytes < 0 ? r.rlim_max : (rlim_t)bytes;
    return setrlimit(RLIMIT_AS, &r);
}

/* Takes every free byte under the current limit, in 1 MiB blocks (the memory the events
   were in is free in malloc's heap once the library has released them), then gives back
   `keep_free` bytes of it. Returns the blocks held (freed by release_ballast). */
static void **ballast;
static size_t ballast_count;

static void hold_ballast(long long keep_free) {
    size_t cap = 1 << 16, give_back = (size_t)(keep_free >> 20);
    ballast = (void **)malloc(cap * sizeof *ballast);
    if (!ballast) exit(2);
    ballast_count = 0;
    while (ballast_count < cap && (ballast[ballast_count] = malloc(1 << 20)) != NULL) ballast_count++;
    while (give_back-- > 0 && ballast_count > 0) free(ballast[--ballast_count]);
}

static void release_ballast(void) {
    while (ballast_count > 0) free(ballast[--ballast_count]);
    free(ballast);
}

/* 1,000,000 async spans as begin/end events: span i begins at 10 i and ends at 10 i + 500. */
static ab_stream *async_events(ab_counts *counts) {
    static const char *const names[] = {"time", "event_type", "span_id", "parent_span_id", "name", "target",
                                        "filename", "line"};
    static const char *const formats[] = {"l", "i", "l", "l", "i", "i", "i", "l"};
    static const char *const values[] = {NULL, "u", NULL, NULL, "u", "u", "u", NULL};
    ab_stream *s = ab_new(counts);
    int b, c;
    ab_set_fields(s, 8, names, formats, values);
    for (b = 0; b < BATCHES; b++) {
        struct ArrowArray *batch = ab_add_batch(s, ROWS, 8);
        int64_t *time = (int64_t *)ab_alloc(s, ROWS * 8), *id = (int64_t *)ab_alloc(s, ROWS * 8);
        int64_t *zero = (int64_t *)ab_alloc(s, ROWS * 8);
        struct ArrowArray *type = ab_dictionary(s, ROWS, "begin");
        int32_t *types = (int32_t *)type->buffers[1];
        int64_t i;
        /* The dictionary {"begin", "end"}: two "begin" entries, the second cut to "end". */
        type->dictionary = ab_strings(s, 2, "begin", 0);
        memcpy((char *)type->dictionary->buffers[2] + 5, "end", 3);
        ((int32_t *)type->dictionary->buffers[1])[2] = 8;
        for (i = 0; i < ROWS; i++) {
            int64_t event = (int64_t)b * ROWS + i, span = event / 2;
            types[i] = (int32_t)(event % 2);
            time[i] = 10 * span + (event % 2 ? 500 : 0);
            id[i] = span + 1;
        }
        batch->children[0] = ab_int64s(s, ROWS, time);
        batch->children[1] = type;
        batch->children[2] = ab_int64s(s, ROWS, id);
        batch->children[3] = ab_int64s(s, ROWS, zero);
        for (c = 4; c < 7; c++) batch->children[c] = ab_dictionary(s, ROWS, "x");
        batch->children[7] = ab_int64s(s, ROWS, zero);
    }
    return s;
}

static int32_t discard(void *context, const uint8_t *data, size_t len) {
    (void)context, (void)data, (void)len;
    return 0;
}

static pmm_generator *new_generator(void) {
    pmm_writer *w = NULL;
    pmm_generator *g = NULL;
    pmm_generator_options options;
    memset(&options, 0, sizeof options);
    options.exe = "exe";
    options.exe_len = 3;
    options.span_types = PMM_SPANS_ASYNC;
    options.async_layout = PMM_LAYOUT_LANES;
    options.range_end_ns = INT64_MAX;
    if (pmm_writer_new_callback(pid, strlen(pid), 0, discard, NULL, &w) != PMM_OK ||
        pmm_generator_new(w, &options, &g) != PMM_OK) {
        fprintf(stderr, "cannot create a generator: %s\n", pmm_last_error());
        exit(2);
    }
    pmm_writer_free(w);
    return g;
}

/* Adds the events with the address space limited to `headroom` bytes above its use, then
   finishes with `finish_headroom` bytes free (-1: no limit). Returns the two statuses. */
static void run(long long headroom, long long finish_headroom, pmm_status *added, pmm_status *finished,
                uint64_t *spans) {
    ab_counts counts;
    struct ArrowArrayStream stream;
    pmm_generator_stats stats;
    pmm_generator *g = new_generator();
    memset(&counts, 0, sizeof counts);
    memset(&stats, 0, sizeof stats);
    ab_export(async_events(&counts), &stream);
    if (headroom >= 0 && limit_to(address_space() + headroom) != 0) { perror("setrlimit"); exit(2); }
    *added = pmm_generator_add_async_events(g, &stream);
    limit_to(-1);
    if (stream.release) stream.release(&stream);
    if (finish_headroom >= 0) {
        if (limit_to(address_space() + finish_headroom) != 0) { perror("setrlimit"); exit(2); }
        hold_ballast(finish_headroom);
    }
    *finished = pmm_generator_finish(g, &stats);
    if (finish_headroom >= 0) release_ballast();
    limit_to(-1);
    *spans = stats.async_spans;
    pmm_generator_free(g);
}

/* The validator buffers a packet cut across pieces as its bytes arrive: a header claiming
   64 MiB followed by 3 bytes takes no 64 MiB (it reserved the claimed length, an abort
   under such a limit), and a real 48 MiB packet that cannot be buffered is
   PMM_ERR_OUT_OF_MEMORY, then PMM_ERR_CALL_ORDER, not an abort. Returns the failures. */
static int validator_cases(void) {
    enum { PIECE = 1 << 20, PACKET = 48 << 20 };
    static const uint8_t claim[] = {0x0A, 0x80, 0x80, 0x80, 0x20, 1, 2, 3}; /* length 64 MiB */
    /* A 48 MiB TracePacket: one unknown length-delimited field (1000) of zeros. */
    static const uint8_t packet_header[] = {0x0A, 0x86, 0x80, 0x80, 0x18, 0xC2, 0x3E, 0x80, 0x80, 0x80, 0x18};
    pmm_validation_stats stats;
    pmm_validator *v = NULL;
    pmm_status status = PMM_OK;
    uint8_t *zeros = (uint8_t *)calloc(1, PIECE);
    int failed = 0, limited;
    size_t fed;
    if (!zeros) exit(2);
    for (limited = 0; limited < 2; limited++) {
        if (pmm_validator_new(&v) != PMM_OK) exit(2);
        if (limit_to(address_space() + (8 << 20)) != 0) { perror("setrlimit"); exit(2); }
        status = pmm_validator_feed(v, claim, sizeof claim);
        limit_to(-1);
        memset(&stats, 0, sizeof stats);
        if (status != PMM_OK || pmm_validator_finish(v, &stats) != PMM_OK || stats.problems[PMM_PROBLEM_TRUNCATED] != 1) {
            fprintf(stderr, "FAIL: claimed 64 MiB packet under a limit: %d, truncated %llu (%s)\n", status,
                    (unsigned long long)stats.problems[PMM_PROBLEM_TRUNCATED], pmm_last_error());
            failed++;
        }
        pmm_validator_free(v);
        /* The 48 MiB packet: read whole without a limit; 16 MiB above use with one. */
        if (pmm_validator_new(&v) != PMM_OK) exit(2);
        if (limited && limit_to(address_space() + (16 << 20)) != 0) { perror("setrlimit"); exit(2); }
        status = pmm_validator_feed(v, packet_header, sizeof packet_header);
        /* The packet's payload: the field's 6-byte header (fed above), then its 48 MiB. */
        for (fed = 0; status == PMM_OK && fed < (size_t)PACKET; fed += PIECE) status = pmm_validator_feed(v, zeros, PIECE);
        if (limited) {
            pmm_status again = pmm_validator_feed(v, zeros, 1);
            limit_to(-1);
            if (status != PMM_ERR_OUT_OF_MEMORY || again != PMM_ERR_CALL_ORDER) {
                fprintf(stderr, "FAIL: 48 MiB packet under a limit: %d then %d (%s)\n", status, again, pmm_last_error());
                failed++;
            }
        } else if (status != PMM_OK || pmm_validator_finish(v, &stats) != PMM_OK || stats.packets != 1 ||
                   stats.problems_total != 0) {
            fprintf(stderr, "FAIL: 48 MiB packet: %d, %llu packets, %llu problems (%s)\n", status,
                    (unsigned long long)stats.packets, (unsigned long long)stats.problems_total, pmm_last_error());
            failed++;
        }
        pmm_validator_free(v);
    }
    free(zeros);
    return failed;
}

int main(void) {
    int failed = validator_cases();
    pmm_status added, finished;
    uint64_t spans;
    /* Without a limit: every span written. */
    run(-1, -1, &added, &finished, &spans);
    if (added != PMM_OK || finished != PMM_OK || spans != 1000000) {
        fprintf(stderr, "FAIL: unlimited run: %d %d, %llu spans (%s)\n", added, finished, (unsigned long long)spans,
                pmm_last_error());
        failed++;
    }
    /* 16 MB above the events: the 1,000,000 records (52 MB) do not fit while pairing. */
    run(16 << 20, -1, &added, &finished, &spans);
    if (added != PMM_ERR_OUT_OF_MEMORY || strstr(pmm_last_error(), "out of memory") == NULL ||
        finished != PMM_ERR_CALL_ORDER) {
        fprintf(stderr, "FAIL: pairing out of memory: %d then %d (%s)\n", added, finished, pmm_last_error());
        failed++;
    }
    /* Paired, then 8 MB above that for finish (its arrays take ~48 MB). */
    run(-1, 8 << 20, &added, &finished, &spans);
    if (added != PMM_OK || finished != PMM_ERR_OUT_OF_MEMORY || strstr(pmm_last_error(), "out of memory") == NULL) {
        fprintf(stderr, "FAIL: finish out of memory: %d then %d (%s)\n", added, finished, pmm_last_error());
        failed++;
    }
    printf("async_oom: %s\n", failed ? "FAILED" : "7 cases passed");
    return failed ? 1 : 0;
}
