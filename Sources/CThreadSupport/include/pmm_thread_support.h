/*
 * Atomic loads and stores for the core's two-thread phase (a worker publishes how far
 * it got; the calling thread reads it): the compiler's __atomic builtins (C11 memory
 * orders) on a plain `long`, which Swift code accesses only through these functions, and
 * the number of CPUs the calling thread may run on, and whether an allocation of a given
 * size can be made now. Not part of the public C ABI.
 */
#ifndef PMM_THREAD_SUPPORT_H
#define PMM_THREAD_SUPPORT_H

#include <stddef.h>

/* Publishes `value` at `p`: every write made before it is visible to a reader that sees it. */
static inline void pmm_store_release(long *p, long value) { __atomic_store_n(p, value, __ATOMIC_RELEASE); }

/* The value at `p`, with every write made before it was stored. */
static inline long pmm_load_acquire(const long *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

/* Stores and loads in one total order (sequentially consistent): a thread that stores to
 * one value and then loads another, while a second thread stores to the second and then
 * loads the first, cannot have both loads miss the other's store (a waiter announcing
 * itself and a publisher checking for waiters never both miss). */
static inline void pmm_store_seq_cst(long *p, long value) { __atomic_store_n(p, value, __ATOMIC_SEQ_CST); }
static inline long pmm_load_seq_cst(const long *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }

/* A hint to the CPU that this thread is spinning on a value another thread will change. */
static inline void pmm_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* How many CPUs the calling thread may run on (its affinity mask; 1 when unknown). Hidden:
 * internal to libperfetto_mm.so, not part of its ABI (include/perfetto_mm.h). */
__attribute__((visibility("hidden"))) int pmm_usable_cpu_count(void);

/* Whether `bytes` can be allocated now: malloc'ed and freed at once (1: yes, 0: no). Hidden. */
__attribute__((visibility("hidden"))) int pmm_can_allocate(size_t bytes);

#endif
