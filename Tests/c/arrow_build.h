/*
 * arrow_build.h: builds Arrow C streams by hand, valid or hostile, for the C tests and the
 * fuzzer. Header-only C99.
 *
 * Every byte a stream points to lives in its arena and is freed by the stream's release
 * callback. That is stricter than the C Stream Interface (where batches may outlive their
 * stream) and holds for the library, which releases each batch before its stream: a
 * consumer reading a batch after releasing the stream would read freed memory
 * (AddressSanitizer and valgrind report it), and one that never releases it leaks
 * (reported too). `ab_counts` (owned by the caller) counts the releases.
 */
#ifndef ARROW_BUILD_H
#define ARROW_BUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perfetto_mm.h"

typedef struct ab_counts {
    int streams;  /* stream releases */
    int schemas;  /* schema releases */
    int batches;  /* batch releases */
    int delivered_schemas, delivered_batches;
} ab_counts;

typedef struct ab_stream {
    void **allocations;
    size_t n_allocations, cap_allocations;
    struct ArrowSchema schema;
    struct ArrowArray batches[8];
    int n_batches, next;
    int fail_schema; /* get_schema returns this when non-zero */
    int fail_at;     /* get_next fails at this batch index (-1: never) */
    int silent;      /* get_last_error returns "" (no message) when non-zero */
    ab_counts *counts;
} ab_stream;

static inline void *ab_alloc(ab_stream *s, size_t bytes) {
    void *p;
    if (s->n_allocations == s->cap_allocations) {
        size_t cap = s->cap_allocations ? 2 * s->cap_allocations : 64;
        void **grown = (void **)realloc(s->allocations, cap * sizeof *grown);
        if (!grown) { fprintf(stderr, "arrow_build: out of memory\n"); abort(); }
        s->allocations = grown;
        s->cap_allocations = cap;
    }
    p = calloc(1, bytes ? bytes : 1);
    if (!p) { fprintf(stderr, "arrow_build: out of memory\n"); abort(); }
    s->allocations[s->n_allocations++] = p;
    return p;
}

static inline void ab_release_schema(struct ArrowSchema *schema) {
    ab_counts *counts = (ab_counts *)schema->private_data;
    counts->schemas++;
    schema->release = NULL;
}

static inline void ab_release_array(struct ArrowArray *array) {
    ab_counts *counts = (ab_counts *)array->private_data;
    counts->batches++;
    array->release = NULL;
}

static inline int ab_get_schema(struct ArrowArrayStream *stream, struct ArrowSchema *out) {
    ab_stream *s = (ab_stream *)stream->private_data;
    if (s->fail_schema) return s->fail_schema;
    *out = s->schema;
    out->release = ab_release_schema;
    out->private_data = s->counts;
    s->counts->delivered_schemas++;
    return 0;
}

static inline int ab_get_next(struct ArrowArrayStream *stream, struct ArrowArray *out) {
    ab_stream *s = (ab_stream *)stream->private_data;
    if (s->next == s->fail_at) return 5; /* EIO */
    if (s->next >= s->n_batches) {
        memset(out, 0, sizeof *out);
        return 0;
    }
    *out = s->batches[s->next++];
    out->release = ab_release_array;
    out->private_data = s->counts;
    s->counts->delivered_batches++;
    return 0;
}

static const char *ab_last_error(struct ArrowArrayStream *stream) {
    ab_stream *s = (ab_stream *)stream->private_data;
    return s->silent ? "" : "the test producer failed on purpose";
}

static inline void ab_release_stream(struct ArrowArrayStream *stream) {
    ab_stream *s = (ab_stream *)stream->private_data;
    size_t i;
    s->counts->streams++;
    for (i = 0; i < s->n_allocations; i++) free(s->allocations[i]);
    free(s->allocations);
    free(s);
    stream->release = NULL;
}

/* A new empty stream description: a struct schema with no columns and no batches. */
static inline ab_stream *ab_new(ab_counts *counts) {
    ab_stream *s = (ab_stream *)calloc(1, sizeof *s);
    if (!s) abort();
    s->counts = counts;
    s->fail_at = -1;
    s->schema.format = "+s";
    s->schema.name = "";
    return s;
}

/* Hands `s` over as `out`; from then on the consumer owns it. */
static inline void ab_export(ab_stream *s, struct ArrowArrayStream *out) {
    out->get_schema = ab_get_schema;
    out->get_next = ab_get_next;
    out->get_last_error = ab_last_error;
    out->release = ab_release_stream;
    out->private_data = s;
}

/* Sets the schema's columns (names and formats; dictionary value formats where non-NULL). */
static inline void ab_set_fields(ab_stream *s, int n, const char *const *names, const char *const *formats,
                          const char *const *dictionary_formats) {
    int i;
    s->schema.n_children = n;
    s->schema.children = (struct ArrowSchema **)ab_alloc(s, (size_t)(n ? n : 1) * sizeof(struct ArrowSchema *));
    for (i = 0; i < n; i++) {
        struct ArrowSchema *child = (struct ArrowSchema *)ab_alloc(s, sizeof *child);
        child->format = formats[i];
        child->name = names[i];
        child->flags = ARROW_FLAG_NULLABLE;
        child->release = ab_release_schema;
        child->private_data = s->counts;
        if (dictionary_formats && dictionary_formats[i]) {
            struct ArrowSchema *d = (struct ArrowSchema *)ab_alloc(s, sizeof *d);
            d->format = dictionary_formats[i];
            d->name = "";
            d->release = ab_release_schema;
            d->private_data = s->counts;
            child->dictionary = d;
        }
        s->schema.children[i] = child;
    }
}

/* A new array with `n_buffers` buffer slots (all NULL) in the arena. */
static inline struct ArrowArray *ab_array(ab_stream *s, int64_t length, int64_t offset, int n_buffers) {
    struct ArrowArray *a = (struct ArrowArray *)ab_alloc(s, sizeof *a);
    a->length = length;
    a->offset = offset;
    a->n_buffers = n_buffers;
    a->buffers = (const void **)ab_alloc(s, (size_t)(n_buffers > 0 ? n_buffers : 1) * sizeof(void *));
    a->release = ab_release_array;
    a->private_data = s->counts;
    return a;
}

/* Appends a batch (a struct array of `n_columns` children) of `length` rows; returns it. */
static inline struct ArrowArray *ab_add_batch(ab_stream *s, int64_t length, int n_columns) {
    struct ArrowArray *b = &s->batches[s->n_batches++];
    memset(b, 0, sizeof *b);
    b->length = length;
    b->n_buffers = 1;
    b->buffers = (const void **)ab_alloc(s, sizeof(void *));
    b->n_children = n_columns;
    b->children = (struct ArrowArray **)ab_alloc(s, (size_t)(n_columns ? n_columns : 1) * sizeof(struct ArrowArray *));
    return b;
}

/* An int64 column of `rows` values from `values`. */
static inline struct ArrowArray *ab_int64s(ab_stream *s, int64_t rows, const int64_t *values) {
    struct ArrowArray *a = ab_array(s, rows, 0, 2);
    int64_t *data = (int64_t *)ab_alloc(s, (size_t)rows * 8);
    if (rows) memcpy(data, values, (size_t)rows * 8);
    a->buffers[1] = data;
    return a;
}

/* A utf8 (large: large_utf8) column of `rows` strings, all `text`. */
static inline struct ArrowArray *ab_strings(ab_stream *s, int64_t rows, const char *text, int large) {
    struct ArrowArray *a = ab_array(s, rows, 0, 3);
    size_t len = strlen(text), width = large ? 8 : 4;
    uint8_t *offsets = (uint8_t *)ab_alloc(s, (size_t)(rows + 1) * width);
    char *data = (char *)ab_alloc(s, (size_t)rows * len);
    int64_t i;
    for (i = 0; i <= rows; i++) {
        int64_t o = i * (int64_t)len;
        if (large) memcpy(offsets + i * 8, &o, 8);
        else { int32_t o32 = (int32_t)o; memcpy(offsets + i * 4, &o32, 4); }
        if (i < rows) memcpy(data + i * (int64_t)len, text, len);
    }
    a->buffers[1] = offsets;
    a->buffers[2] = data;
    return a;
}

/* A dictionary<int32, utf8> column of `rows` rows, all index 0 of the dictionary {text}. */
static inline struct ArrowArray *ab_dictionary(ab_stream *s, int64_t rows, const char *text) {
    struct ArrowArray *a = ab_array(s, rows, 0, 2);
    int32_t *indices = (int32_t *)ab_alloc(s, (size_t)rows * 4);
    a->buffers[1] = indices;
    a->dictionary = ab_strings(s, 1, text, 0);
    return a;
}

/* The thread_spans columns: begin, end (int64), name, target, filename (utf8 or, with
   `dictionary`, dictionary<int32, utf8>), line (int64). */
static const char *const ab_thread_names[] = {"begin", "end", "name", "target", "filename", "line"};

/* A valid thread_spans stream of one batch of `rows` spans, [10 i, 10 i + 5]. */
static inline ab_stream *ab_thread_spans(ab_counts *counts, int64_t rows, int dictionary) {
    static const char *const plain[] = {"l", "l", "u", "u", "u", "l"};
    static const char *const dict[] = {"l", "l", "i", "i", "i", "l"};
    static const char *const values[] = {NULL, NULL, "u", "u", "u", NULL};
    ab_stream *s = ab_new(counts);
    struct ArrowArray *b;
    int64_t *begin = (int64_t *)ab_alloc(s, (size_t)(rows ? rows : 1) * 8);
    int64_t *end = (int64_t *)ab_alloc(s, (size_t)(rows ? rows : 1) * 8);
    int64_t *line = (int64_t *)ab_alloc(s, (size_t)(rows ? rows : 1) * 8);
    int64_t i;
    for (i = 0; i < rows; i++) {
        begin[i] = 10 * i;
        end[i] = 10 * i + 5;
        line[i] = i;
    }
    ab_set_fields(s, 6, ab_thread_names, dictionary ? dict : plain, dictionary ? values : NULL);
    b = ab_add_batch(s, rows, 6);
    b->children[0] = ab_int64s(s, rows, begin);
    b->children[1] = ab_int64s(s, rows, end);
    for (i = 2; i < 5; i++)
        b->children[i] = dictionary ? ab_dictionary(s, rows, "text") : ab_strings(s, rows, "text", 0);
    b->children[5] = ab_int64s(s, rows, line);
    return s;
}

#endif /* ARROW_BUILD_H */
