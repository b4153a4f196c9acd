/* Page-fault cost: mmap N anonymous read-write pages, write one byte to each (the first touch:
 * a page fault, a zeroed page mapped in), then write to each again (mapped: no fault), timing
 * both passes with the TSC and CLOCK_MONOTONIC. first - second is the fault's own cost.
 * Usage: page_fault [N]   (default N = 16384 pages). The region is advised MADV_NOHUGEPAGE, so
 * Linux faults it 4 KiB at a time even where transparent huge pages are on.
 * Prints one line of key=value figures; exit 1 if a page did not read back as written or zero. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/mman.h>
#include "tsc.h"

#define PAGE 4096

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 16384;
    if (n <= 0) {
        fprintf(stderr, "page_fault: N must be a positive number, not %s\n", argv[1]);
        return 2;
    }
    volatile unsigned char *p = mmap(NULL, (size_t)n * PAGE, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("page_fault: mmap");
        return 2;
    }
    /* A hint: Pith has no huge pages and may ignore it; its result is only reported. */
    int advised = madvise((void *)p, (size_t)n * PAGE, MADV_NOHUGEPAGE) == 0;

    uint64_t first_ns0 = now_ns();
    uint64_t first_tsc0 = bench_rdtsc();
    for (long i = 0; i < n; i++)
        p[i * PAGE] = 1;
    uint64_t first_tsc1 = bench_rdtsc();
    uint64_t first_ns1 = now_ns();

    uint64_t second_ns0 = now_ns();
    uint64_t second_tsc0 = bench_rdtsc();
    for (long i = 0; i < n; i++)
        p[i * PAGE] = 2;
    uint64_t second_tsc1 = bench_rdtsc();
    uint64_t second_ns1 = now_ns();

    /* Untimed: every page holds what was written, and the rest of it reads as zero. */
    long bad = 0;
    for (long i = 0; i < n; i++)
        if (p[i * PAGE] != 2 || p[i * PAGE + 1] != 0 || p[i * PAGE + PAGE - 1] != 0)
            bad++;

    printf("BENCH-PAGE-FAULT n=%ld nohugepage_advised=%d first_tsc=%llu first_ns=%llu "
           "second_tsc=%llu second_ns=%llu bad=%ld\n",
           n, advised, (unsigned long long)(first_tsc1 - first_tsc0),
           (unsigned long long)(first_ns1 - first_ns0),
           (unsigned long long)(second_tsc1 - second_tsc0),
           (unsigned long long)(second_ns1 - second_ns0), bad);
    return bad ? 1 : 0;
}
