/* The vDSO: clock_gettime, gettimeofday, time, clock_getres and getcpu without a syscall.
 * The kernel maps it into every program with the time page (vvar) one page below it, and
 * points AT_SYSINFO_EHDR at it. Built by kernel/build.rs with the C compiler; the kernel maps
 * the resulting ELF as is, so it must need no relocations. */
#include <stdint.h>

/* The time page, written by kernel/src/vdso.rs: keep the two layouts in step. */
struct pith_vvar {
    uint64_t tsc_at_boot;
    /* ns = ((tsc - tsc_at_boot) * mult) >> 32 */
    uint64_t mult;
    uint64_t realtime_at_boot_ns;
};

/* The linker script puts the time page at -4096 from the vDSO's start; hidden, so the access
 * is RIP-relative and needs no relocation. */
extern const volatile struct pith_vvar pith_vvar __attribute__((visibility("hidden")));

struct timespec64 { int64_t tv_sec; int64_t tv_nsec; };
struct timeval64 { int64_t tv_sec; int64_t tv_usec; };

static inline uint64_t read_tsc(void) {
    uint32_t low, high;
    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
    return ((uint64_t)high << 32) | low;
}

static inline uint64_t monotonic_ns(void) {
    uint64_t ticks = read_tsc() - pith_vvar.tsc_at_boot;
    return (uint64_t)(((unsigned __int128)ticks * pith_vvar.mult) >> 32);
}

static inline long fallback(long number, long a, long b) {
    long result;
    __asm__ volatile("syscall" : "=a"(result) : "a"(number), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return result;
}

int __vdso_clock_gettime(int clock, struct timespec64 *time) {
    uint64_t ns;
    switch (clock) {
    case 0: case 5: case 8: case 11: /* REALTIME, REALTIME_COARSE, REALTIME_ALARM, TAI */
        ns = pith_vvar.realtime_at_boot_ns + monotonic_ns();
        break;
    case 1: case 4: case 6: case 7: case 9: /* MONOTONIC, _RAW, _COARSE, BOOTTIME, BOOTTIME_ALARM */
        ns = monotonic_ns();
        break;
    default: /* the CPU-time clocks and bad ids: the kernel answers (and checks) */
        return (int)fallback(228, clock, (long)time);
    }
    time->tv_sec = (int64_t)(ns / 1000000000u);
    time->tv_nsec = (int64_t)(ns % 1000000000u);
    return 0;
}

int __vdso_gettimeofday(struct timeval64 *time, void *zone) {
    if (zone) /* the timezone struct: let the kernel fill it */
        return (int)fallback(96, (long)time, (long)zone);
    if (time) {
        uint64_t ns = pith_vvar.realtime_at_boot_ns + monotonic_ns();
        time->tv_sec = (int64_t)(ns / 1000000000u);
        time->tv_usec = (int64_t)((ns % 1000000000u) / 1000);
    }
    return 0;
}

long __vdso_time(long *out) {
    long seconds = (long)((pith_vvar.realtime_at_boot_ns + monotonic_ns()) / 1000000000u);
    if (out)
        *out = seconds;
    return seconds;
}

int __vdso_clock_getres(int clock, struct timespec64 *resolution) {
    return (int)fallback(229, clock, (long)resolution);
}

long __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused) {
    (void)unused;
    if (cpu) *cpu = 0; /* one CPU */
    if (node) *node = 0;
    return 0;
}

/* Linux's vDSO also exports the names without the prefix. */
int clock_gettime(int, struct timespec64 *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval64 *, void *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
int clock_getres(int, struct timespec64 *) __attribute__((weak, alias("__vdso_clock_getres")));
long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
