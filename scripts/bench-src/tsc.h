/* The guest's time-stamp counter, read in order with the instructions around it.
 * Under QEMU `-icount shift=0` it advances by one per guest instruction (1 GHz nominal). */
#ifndef BENCH_TSC_H
#define BENCH_TSC_H
#include <stdint.h>

static inline uint64_t bench_rdtsc(void)
{
    uint32_t low, high;
    __asm__ volatile("lfence\n\trdtsc\n\tlfence" : "=a"(low), "=d"(high) : : "memory");
    return ((uint64_t)high << 32) | low;
}
#endif
