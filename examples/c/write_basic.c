/*
 * write_basic: writes the `basic` golden scenario through libperfetto_mm.so's C ABI.
 *
 *   write_basic OUT.perfetto [OUT_CHUNKED.perfetto]
 *
 * OUT.perfetto is written with a buffer writer (the whole trace in memory, then
 * taken). With a second path, the same calls also go through a callback writer with
 * 256-byte chunks, each appended to that file: both files must be identical to
 * basic.perfetto, micromegas' own bytes for these calls.
 */
#include <stdio.h>
#include <string.h>

#include "perfetto_mm.h"

#define S(literal) literal, strlen(literal)

struct span {
    uint64_t begin, end;
    const char *name, *target, *filename;
    uint32_t line;
};

struct thread {
    const char *stream_id;
    int32_t thread_id;
    const char *thread_name;
    const struct span *spans;
    size_t span_count;
};

static const struct span main_spans[] = {
    {1000, 9000, "frame", "game", "src/game.rs", 10},
    {1100, 4000, "update", "game", "src/game.rs", 12},
    {1200, 2000, "physics", "game::physics", "src/physics.rs", 40},
    {2100, 3900, "ai", "game::ai", "src/ai.rs", 7},
    {4100, 8800, "render", "render", "src/render.rs", 101},
    {10000, 15000, "frame", "game", "src/game.rs", 10},
    {10100, 12000, "update", "game", "src/game.rs", 12},
};

static const struct span worker_spans[] = {
    {1500, 6000, "load_chunk", "io", "src/io.rs", 55},
    {1600, 3000, "decompress", "io::lz4", "src/io.rs", 80},
    {3100, 5900, "parse", "io", "src/parse.rs", 3},
    {7000, 7500, "render", "render", "src/render.rs", 101},
};

static const struct thread threads[] = {
    {"0b4c7a9e-1f2d-4e3c-8a5b-6c7d8e9f0a1b", 4242, "main-4242", main_spans, 7},
    {"7e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b", 4243, "worker-4243", worker_spans, 4},
};

static const struct span async_spans[] = {
    {1500, 9000, "load_asset", "assets", "src/assets.rs", 88},
    {2000, 4000, "http_request", "net", "src/net.rs", 21},
    {3000, 12000, "load_asset", "assets", "src/assets.rs", 88},
};

static const char process_id[] = "34d7c06d-3163-4111-863e-c5fc09d22d51";

#define CHECK(call)                                                              \
    do {                                                                         \
        pmm_status status_ = (call);                                             \
        if (status_ != PMM_OK) {                                                 \
            fprintf(stderr, "%s failed (%d): %s\n", #call, (int)status_,         \
                    pmm_last_error());                                           \
            return status_;                                                      \
        }                                                                        \
    } while (0)

/* The calls of the `basic` scenario (span_types = both). */
static pmm_status write_scenario(pmm_writer *w) {
    size_t t, i;
    CHECK(pmm_writer_emit_process_descriptor(w, S("telemetry-generator")));
    for (t = 0; t < 2; t++)
        CHECK(pmm_writer_emit_thread_descriptor(w, S(threads[t].stream_id), threads[t].thread_id,
                                                S(threads[t].thread_name)));
    CHECK(pmm_writer_emit_async_track_descriptor(w));
    for (t = 0; t < 2; t++) {
        CHECK(pmm_writer_set_current_thread(w, S(threads[t].stream_id)));
        for (i = 0; i < threads[t].span_count; i++) {
            const struct span *s = &threads[t].spans[i];
            CHECK(pmm_writer_emit_span(w, s->begin, s->end, S(s->name), S(s->target), S(s->filename),
                                       s->line));
        }
    }
    for (i = 0; i < 3; i++) {
        const struct span *s = &async_spans[i];
        CHECK(pmm_writer_emit_async_span_begin(w, s->begin, S(s->name), S(s->target), S(s->filename),
                                               s->line));
        CHECK(pmm_writer_emit_async_span_end(w, s->end, S(s->name), S(s->target), S(s->filename),
                                             s->line));
    }
    CHECK(pmm_writer_flush(w));
    return PMM_OK;
}

/* A pmm_write_fn appending each chunk to a FILE*. */
static int32_t append_chunk(void *ctx, const uint8_t *data, size_t len) {
    return fwrite(data, 1, len, (FILE *)ctx) == len ? 0 : 1;
}

int main(int argc, char **argv) {
    pmm_writer *w = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    FILE *out;
    pmm_status status;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s OUT.perfetto [OUT_CHUNKED.perfetto]\n", argv[0]);
        return 2;
    }

    CHECK(pmm_writer_new_buffer(S(process_id), 0, &w));
    status = write_scenario(w);
    if (status == PMM_OK) status = pmm_writer_take_buffer(w, &data, &len);
    pmm_writer_free(w);
    if (status != PMM_OK) return 1;
    out = fopen(argv[1], "wb");
    if (!out || fwrite(data, 1, len, out) != len || fclose(out) != 0) {
        perror(argv[1]);
        pmm_buffer_free(data);
        return 1;
    }
    pmm_buffer_free(data);
    printf("libperfetto_mm %s: wrote %zu bytes to %s\n", pmm_version(), len, argv[1]);

    if (argc == 3) {
        out = fopen(argv[2], "wb");
        if (!out) {
            perror(argv[2]);
            return 1;
        }
        CHECK(pmm_writer_new_callback(S(process_id), 256, append_chunk, out, &w));
        status = write_scenario(w);
        pmm_writer_free(w);
        if (fclose(out) != 0 || status != PMM_OK) return 1;
        printf("wrote %s in 256-byte chunks\n", argv[2]);
    }
    return 0;
}
