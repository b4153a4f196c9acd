/* POSIX timers and sigtimedwait: a periodic timer_create timer's signals, taken synchronously
 * with sigtimedwait, carry the timer's id and value; timer_gettime reports it; a deleted timer
 * sends nothing (sigtimedwait times out with EAGAIN); a SIGEV_NONE timer only counts down.
 * Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

int main(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, 0);

    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_SIGNAL;
    event.sigev_signo = SIGUSR1;
    event.sigev_value.sival_int = 42;
    timer_t timer;
    check("timer_create", timer_create(CLOCK_MONOTONIC, &event, &timer) == 0);
    struct itimerspec every = {{0, 10 * 1000000}, {0, 20 * 1000000}};
    check("timer_settime", timer_settime(timer, 0, &every, 0) == 0);
    struct itimerspec now;
    check("timer_gettime reports the interval", timer_gettime(timer, &now) == 0 && now.it_interval.tv_nsec == 10 * 1000000);

    int got = 0;
    for (int i = 0; i < 3; i++) {
        siginfo_t info;
        struct timespec limit = {2, 0};
        int signal = sigtimedwait(&set, &info, &limit);
        got += signal == SIGUSR1 && info.si_code == SI_TIMER && info.si_value.sival_int == 42;
    }
    check("three expirations, each with SI_TIMER and the value", got == 3);
    check("timer_getoverrun", timer_getoverrun(timer) >= 0);
    check("timer_delete", timer_delete(timer) == 0);
    struct timespec short_wait = {0, 50 * 1000000};
    siginfo_t info;
    while (sigtimedwait(&set, &info, &(struct timespec){0, 0}) == SIGUSR1) {
        /* drain one that may have been pending at the delete */
    }
    check("after timer_delete, sigtimedwait times out", sigtimedwait(&set, &info, &short_wait) == -1 && errno == EAGAIN);

    raise(SIGUSR1);
    /* (Its si_code depends on the kernel's version: SI_TKILL on 6.1, SI_USER on newer ones.) */
    check("a pending signal is taken at once", sigtimedwait(&set, &info, &short_wait) == SIGUSR1);

    /* An absolute time on the monotonic clock: 30 ms from now, not at once. */
    timer_t absolute;
    event.sigev_notify = SIGEV_SIGNAL;
    check("timer_create(CLOCK_MONOTONIC)", timer_create(CLOCK_MONOTONIC, &event, &absolute) == 0);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct itimerspec at = {{0, 0}, start};
    at.it_value.tv_nsec += 30 * 1000000;
    if (at.it_value.tv_nsec >= 1000000000) { at.it_value.tv_sec++; at.it_value.tv_nsec -= 1000000000; }
    timer_settime(absolute, TIMER_ABSTIME, &at, 0);
    struct timespec two_seconds = {2, 0}, end;
    int fired = sigtimedwait(&set, &info, &two_seconds);
    clock_gettime(CLOCK_MONOTONIC, &end);
    long long waited_ms = (end.tv_sec - start.tv_sec) * 1000LL + (end.tv_nsec - start.tv_nsec) / 1000000;
    check("TIMER_ABSTIME on CLOCK_MONOTONIC fires at that time", fired == SIGUSR1 && waited_ms >= 25);
    timer_delete(absolute);

    event.sigev_notify = SIGEV_NONE;
    timer_t quiet;
    struct itimerspec once = {{0, 0}, {5, 0}}, left;
    check("a SIGEV_NONE timer counts down", timer_create(CLOCK_REALTIME, &event, &quiet) == 0 &&
          timer_settime(quiet, 0, &once, 0) == 0 && timer_gettime(quiet, &left) == 0 &&
          left.it_value.tv_sec <= 5 && (left.it_value.tv_sec > 0 || left.it_value.tv_nsec > 0));

    printf("%d failures\n", failures);
    return failures;
}
