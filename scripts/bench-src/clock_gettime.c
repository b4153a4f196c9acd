/* clock_gettime(CLOCK_MONOTONIC) per call, next to two plain function calls and an empty loop.
 * Both plain calls are functions the compiler may neither inline nor analyse (noipa), with
 * clock_gettime's interface (a clock id and a struct timespec to fill):
 *  - `plain` fills the timespec from two volatile reads: a call returning a memory read;
 *  - `work` does what a vDSO's clock read does, minus its sequence-count retry and its
 *    indirect call: reads the TSC (lfence; rdtsc) and a base time from volatile memory, scales
 *    the cycles since the base (multiply, shift) and splits nanoseconds into seconds, as
 *    Linux's vDSO does (lib/vdso/gettimeofday.c, do_hres; it splits with a subtraction loop
 *    that usually runs zero times, this with a division the compiler turns into a multiply).
 * Each loop adds the result's tv_nsec to a sum, so nothing is optimised away, and the clock
 * loop checks that the time never goes backwards.
 * Usage: clock_gettime [N]   (default 1000000). Prints one line of key=value figures; vdso=1
 * when the kernel passed a vDSO (AT_SYSINFO_EHDR), through which glibc then reads the clock. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/auxv.h>
#include "tsc.h"

static volatile long fake_seconds = 1;
static volatile long fake_nanoseconds = 2;

/* A base time as a vDSO data page holds one: seconds, shifted nanoseconds, the TSC at the base,
 * and the TSC -> shifted-nanoseconds factor (here 1 GHz: mult = 1 << shift). */
static volatile struct {
    uint64_t seconds, shifted_nanoseconds, cycle_last;
    uint32_t mult, shift;
} base = {1, 0, 0, 1u << 24, 24};

__attribute__((noipa)) static int plain_clock(clockid_t clock, struct timespec *ts)
{
    (void)clock;
    ts->tv_sec = fake_seconds;
    ts->tv_nsec = fake_nanoseconds;
    return 0;
}

__attribute__((noipa)) static int work_clock(clockid_t clock, struct timespec *ts)
{
    (void)clock;
    uint32_t low, high;
    __asm__ volatile("lfence\n\trdtsc" : "=a"(low), "=d"(high));
    uint64_t cycles = ((uint64_t)high << 32) | low;
    uint64_t seconds = base.seconds;
    uint64_t ns = base.shifted_nanoseconds + (cycles - base.cycle_last) * base.mult;
    ns >>= base.shift;
    seconds += ns / 1000000000ull; /* a multiply and shifts; the vDSO loops, usually 0 times */
    ns %= 1000000000ull;
    ts->tv_sec = (time_t)seconds;
    ts->tv_nsec = (long)ns;
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct span {
    uint64_t tsc, ns;
};

#define TIMED(span, body)                                                      \
    do {                                                                       \
        uint64_t ns0_ = now_ns(), tsc0_ = bench_rdtsc();                       \
        body;                                                                  \
        uint64_t tsc1_ = bench_rdtsc(), ns1_ = now_ns();                       \
        (span).tsc = tsc1_ - tsc0_;                                            \
        (span).ns = ns1_ - ns0_;                                               \
    } while (0)

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    if (n <= 0) {
        fprintf(stderr, "clock_gettime: N must be a positive number, not %s\n", argv[1]);
        return 2;
    }
    struct timespec ts;
    unsigned long sum = 0;
    struct span empty, plain, work, clock;
    base.cycle_last = bench_rdtsc();

    TIMED(empty, for (long i = 0; i < n; i++) __asm__ volatile("" : : : "memory"));
    TIMED(plain, for (long i = 0; i < n; i++) {
        plain_clock(CLOCK_MONOTONIC, &ts);
        sum += ts.tv_nsec;
    });
    TIMED(work, for (long i = 0; i < n; i++) {
        work_clock(CLOCK_MONOTONIC, &ts);
        sum += ts.tv_nsec;
    });
    long bad = 0;
    struct timespec last = {0, 0};
    TIMED(clock, for (long i = 0; i < n; i++) {
        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0 || ts.tv_sec < last.tv_sec ||
            (ts.tv_sec == last.tv_sec && ts.tv_nsec < last.tv_nsec))
            bad++;
        last = ts;
        sum += ts.tv_nsec;
    });

    printf("BENCH-CLOCK n=%ld vdso=%d clock_tsc=%llu clock_ns=%llu plain_tsc=%llu plain_ns=%llu "
           "work_tsc=%llu work_ns=%llu empty_tsc=%llu empty_ns=%llu bad=%ld sum=%lu\n",
           n, getauxval(AT_SYSINFO_EHDR) != 0,
           (unsigned long long)clock.tsc, (unsigned long long)clock.ns,
           (unsigned long long)plain.tsc, (unsigned long long)plain.ns,
           (unsigned long long)work.tsc, (unsigned long long)work.ns,
           (unsigned long long)empty.tsc, (unsigned long long)empty.ns, bad, sum);
    return bad ? 1 : 0;
}
