/* The CThreadSupport target: inline atomics (include/pmm_thread_support.h) and the CPU count. */
#define _GNU_SOURCE
#include "pmm_thread_support.h"

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
