/* Sleeping and timer signals: nanosleep and clock_nanosleep sleep as long as asked (within a
 * generous bound: the machines are noisy), an alarm interrupts a sleep with EINTR and the time
 * left, a periodic ITIMER_REAL interrupts a busy loop, and sigsuspend waits for a signal with a
 * temporary mask. Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static volatile int alarms;
static void on_alarm(int signal) { (void)signal; alarms++; }

int main(void) {
    long long start = now_ms();
    struct timespec fifty = {0, 50 * 1000000};
    check("nanosleep returns 0", nanosleep(&fifty, 0) == 0);
    long long slept = now_ms() - start;
    check("nanosleep sleeps at least as long as asked", slept >= 50);
    check("nanosleep does not oversleep by seconds", slept < 2000);

    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += 30 * 1000000;
    if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
    check("clock_nanosleep(TIMER_ABSTIME)", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, 0) == 0);
    struct timespec after;
    clock_gettime(CLOCK_MONOTONIC, &after);
    check("it wakes after the deadline", after.tv_sec > until.tv_sec || (after.tv_sec == until.tv_sec && after.tv_nsec >= until.tv_nsec));
    struct timespec bad = {0, 1000000000};
    check("a bad timespec is EINVAL", nanosleep(&bad, 0) == -1 && errno == EINVAL);

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    sigaction(SIGALRM, &action, 0);
    struct itimerval once = {{0, 0}, {0, 40000}};
    setitimer(ITIMER_REAL, &once, 0);
    struct timespec long_sleep = {5, 0}, left = {0, 0};
    int result = nanosleep(&long_sleep, &left);
    check("an alarm interrupts a sleep with EINTR", result == -1 && errno == EINTR && alarms == 1);
    check("and reports the time left", left.tv_sec >= 3 && left.tv_sec <= 5);

    struct itimerval periodic = {{0, 10000}, {0, 10000}};
    setitimer(ITIMER_REAL, &periodic, 0);
    alarms = 0;
    /* Busy until five have come (a loaded host may coalesce a few), for at most 3 s. */
    long long busy_start = now_ms();
    while (alarms < 5 && now_ms() - busy_start < 3000) {
    }
    struct itimerval off = {{0, 0}, {0, 0}}, before_off;
    setitimer(ITIMER_REAL, &off, &before_off);
    check("a periodic timer interrupts a busy loop", alarms >= 5);
    check("getitimer-style old value has the interval", before_off.it_interval.tv_usec == 10000);

    sigset_t block, empty;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, 0);
    alarm(1);
    alarms = 0;
    sigemptyset(&empty);
    result = sigsuspend(&empty);
    sigset_t now;
    sigprocmask(SIG_SETMASK, 0, &now);
    check("sigsuspend waits for the signal", result == -1 && errno == EINTR && alarms == 1);
    check("and puts the caller's mask back", sigismember(&now, SIGALRM));
    check("alarm(0) reports nothing left", alarm(0) == 0);

    printf("%d failures\n", failures);
    return failures;
}
