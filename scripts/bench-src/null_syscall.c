/* Null system call: N calls of syscall(SYS_getppid), timed with the TSC and CLOCK_MONOTONIC,
 * next to an empty loop of N iterations (the loop overhead to subtract).
 * Usage: null_syscall [N]   (default 10000000). Prints one line of key=value figures. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "tsc.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 10000000;
    if (n <= 0) {
        fprintf(stderr, "null_syscall: N must be a positive number, not %s\n", argv[1]);
        return 2;
    }
    long parent = syscall(SYS_getppid);

    /* The empty loop: the same counter and branch, with a compiler barrier so it is kept. */
    uint64_t empty_ns0 = now_ns();
    uint64_t empty_tsc0 = bench_rdtsc();
    for (long i = 0; i < n; i++)
        __asm__ volatile("" : : : "memory");
    uint64_t empty_tsc1 = bench_rdtsc();
    uint64_t empty_ns1 = now_ns();

    long bad = 0;
    uint64_t loop_ns0 = now_ns();
    uint64_t loop_tsc0 = bench_rdtsc();
    for (long i = 0; i < n; i++) {
        if (syscall(SYS_getppid) != parent)
            bad++;
        __asm__ volatile("" : : : "memory");
    }
    uint64_t loop_tsc1 = bench_rdtsc();
    uint64_t loop_ns1 = now_ns();

    printf("BENCH-NULL-SYSCALL n=%ld loop_tsc=%llu loop_ns=%llu empty_tsc=%llu empty_ns=%llu bad=%ld ppid=%ld\n",
           n, (unsigned long long)(loop_tsc1 - loop_tsc0), (unsigned long long)(loop_ns1 - loop_ns0),
           (unsigned long long)(empty_tsc1 - empty_tsc0), (unsigned long long)(empty_ns1 - empty_ns0),
           bad, parent);
    return bad ? 1 : 0;
}
