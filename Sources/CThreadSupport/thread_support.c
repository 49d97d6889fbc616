/* The CThreadSupport target: inline atomics (include/pmm_thread_support.h), the CPU count and
   the allocation probe. */
#define _GNU_SOURCE
#include "pmm_thread_support.h"

#include <stdlib.h>

#if defined(__linux__)
#include <sched.h>
#else
#include <unistd.h>
#endif

int pmm_usable_cpu_count(void) {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  int count = CPU_COUNT(&set);
  return count > 0 ? count : 1;
#else
  long count = sysconf(_SC_NPROCESSORS_ONLN);
  return count > 0 ? (int)count : 1;
#endif
}

int pmm_can_allocate(size_t bytes) {
  /* Through a volatile: a malloc freed unused may be removed by the compiler, and the test with it. */
  void *volatile p = malloc(bytes);
  int ok = p != NULL;
  free(p);
  return ok;
}
