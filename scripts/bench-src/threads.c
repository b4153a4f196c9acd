/* Thread costs, timed with the TSC (guest instructions under -icount shift=0) and
 * CLOCK_MONOTONIC:
 *  - create: pthread_create + pthread_join of a thread that returns at once, per pair;
 *  - wake: futex ping-pong between two threads, per hand-over: one FUTEX_WAKE, the woken
 *    thread running and returning from its FUTEX_WAIT (half a round trip);
 *  - switch: two threads calling sched_yield in turn, per switch (each yield hands the CPU
 *    to the other thread: run it with one CPU, as both guests have).
 * Usage: threads [N]   (default N = 2000 of each). Prints one line of key=value figures; exit 1
 * if a count came out wrong. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "tsc.h"

#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *nothing(void *argument) { return argument; }

static long n;
static volatile unsigned turn; /* whose turn in the ping-pong: 0 main, 1 the other thread */
static long handovers;

static void futex_wait(volatile unsigned *word, unsigned value)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void futex_wake(volatile unsigned *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Waits for `mine`, then passes the turn on, n times. */
static void ping_pong(unsigned mine)
{
    for (long i = 0; i < n; i++) {
        while (turn != mine)
            futex_wait(&turn, !mine);
        __atomic_add_fetch(&handovers, 1, __ATOMIC_SEQ_CST);
        turn = !mine;
        futex_wake(&turn);
    }
}

static void *pong(void *unused)
{
    (void)unused;
    ping_pong(1);
    return NULL;
}

static volatile int yield_started;
static long yields;
static void *yielder(void *unused)
{
    (void)unused;
    yield_started = 1;
    for (long i = 0; i < n; i++) {
        __atomic_add_fetch(&yields, 1, __ATOMIC_SEQ_CST);
        sched_yield();
    }
    return NULL;
}

int main(int argc, char **argv)
{
    n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
    if (n <= 0) {
        fprintf(stderr, "threads: N must be a positive number, not %s\n", argv[1]);
        return 2;
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    int pinned = sched_setaffinity(0, sizeof one, &one) == 0;

    long made = 0;
    uint64_t create_ns0 = now_ns(), create_tsc0 = bench_rdtsc();
    for (long i = 0; i < n; i++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, nothing, NULL) == 0 && pthread_join(thread, NULL) == 0)
            made++;
    }
    uint64_t create_tsc = bench_rdtsc() - create_tsc0, create_ns = now_ns() - create_ns0;

    pthread_t other;
    pthread_create(&other, NULL, pong, NULL);
    uint64_t wake_ns0 = now_ns(), wake_tsc0 = bench_rdtsc();
    ping_pong(0);
    pthread_join(other, NULL);
    uint64_t wake_tsc = bench_rdtsc() - wake_tsc0, wake_ns = now_ns() - wake_ns0;

    pthread_create(&other, NULL, yielder, NULL);
    while (!yield_started)
        sched_yield();
    uint64_t switch_ns0 = now_ns(), switch_tsc0 = bench_rdtsc();
    for (long i = 0; i < n; i++) {
        __atomic_add_fetch(&yields, 1, __ATOMIC_SEQ_CST);
        sched_yield();
    }
    uint64_t switch_tsc = bench_rdtsc() - switch_tsc0, switch_ns = now_ns() - switch_ns0;
    pthread_join(other, NULL);

    long bad = (made != n) + (handovers != 2 * n) + (yields != 2 * n);
    printf("BENCH-THREADS n=%ld pinned=%d create_tsc=%llu create_ns=%llu wake_tsc=%llu "
           "wake_ns=%llu switch_tsc=%llu switch_ns=%llu bad=%ld\n",
           n, pinned, (unsigned long long)create_tsc, (unsigned long long)create_ns,
           (unsigned long long)wake_tsc, (unsigned long long)wake_ns,
           (unsigned long long)switch_tsc, (unsigned long long)switch_ns, bad);
    return bad ? 1 : 0;
}
