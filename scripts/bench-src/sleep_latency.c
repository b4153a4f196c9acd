/* Sleep wake-up latency: COUNT x nanosleep(USEC microseconds), each timed with CLOCK_MONOTONIC;
 * the oversleep is the time slept minus the time asked for. Meant for wall-time runs (under
 * -icount, guest time is virtual).
 * Usage: sleep_latency [COUNT [USEC [SLACK_NS]]]   (default 200 x 1000 us; with SLACK_NS, first
 * prctl(PR_SET_TIMERSLACK, SLACK_NS): Linux lets a sleep run late by the task's timer slack,
 * 50 us by default). Prints one line of key=value figures, in nanoseconds; exit 1 if a sleep
 * failed or ended early. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/prctl.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Insertion sort: glibc's qsort asks for sysinfo (the machine's memory size) first, which Pith
 * does not implement yet and would log. */
static void sort(int64_t *values, long count)
{
    for (long i = 1; i < count; i++) {
        int64_t value = values[i];
        long j = i;
        for (; j > 0 && values[j - 1] > value; j--)
            values[j] = values[j - 1];
        values[j] = value;
    }
}

int main(int argc, char **argv)
{
    long count = argc > 1 ? strtol(argv[1], NULL, 10) : 200;
    long usec = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
    long slack = argc > 3 ? strtol(argv[3], NULL, 10) : -1;
    if (count <= 0 || usec <= 0 || usec >= 1000000) {
        fprintf(stderr, "sleep_latency: COUNT must be positive and USEC in 1..999999\n");
        return 2;
    }
    int slack_set = slack > 0 ? prctl(PR_SET_TIMERSLACK, slack, 0, 0, 0) == 0 : 0;
    int64_t *over = calloc(count, sizeof *over);
    if (!over)
        return 2;
    struct timespec request = {0, usec * 1000};
    long bad = 0;
    uint64_t start = now_ns();
    for (long i = 0; i < count; i++) {
        uint64_t t0 = now_ns();
        if (nanosleep(&request, NULL) != 0)
            bad++;
        uint64_t t1 = now_ns();
        over[i] = (int64_t)(t1 - t0) - usec * 1000;
        if (over[i] < 0)
            bad++;
    }
    uint64_t total = now_ns() - start;
    int64_t sum = 0;
    for (long i = 0; i < count; i++)
        sum += over[i];
    sort(over, count);
    printf("BENCH-SLEEP count=%ld usec=%ld slack_set=%d mean_ns=%lld median_ns=%lld min_ns=%lld "
           "p99_ns=%lld max_ns=%lld total_ns=%llu bad=%ld\n",
           count, usec, slack_set, (long long)(sum / count), (long long)over[count / 2],
           (long long)over[0], (long long)over[(count * 99) / 100],
           (long long)over[count - 1], (unsigned long long)total, bad);
    return bad ? 1 : 0;
}
