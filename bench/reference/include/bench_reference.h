/* Benchmark references for pmm-bench (not part of the shipped library). */
#ifndef BENCH_REFERENCE_H
#define BENCH_REFERENCE_H

#include <stddef.h>

/* Bytes the allocator has handed out and not had back (malloc'd and mmapped blocks). */
size_t bench_heap_bytes_in_use(void);

#endif
