/* poll, ppoll and select on what there is: stdin (a pipe with "abc" then its end), stdout, a
 * signalfd, a bad fd; timeouts; ppoll's temporary mask letting a timer's signal in (EINTR).
 * Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/signalfd.h>
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

/* The lowest free descriptor is surely closed: the harness that runs the native side may
 * leave any other number open. */
static int closed_fd(void) {
    int fd = dup(1);
    close(fd);
    return fd;
}

static volatile int alarms;
static void on_alarm(int signal) { (void)signal; alarms++; }

int main(void) {
    struct pollfd in = {0, POLLIN, 0};
    /* The harness writes "abc" and closes the pipe: wait for the data. */
    check("stdin becomes readable", poll(&in, 1, 5000) == 1 && (in.revents & POLLIN));
    char buffer[16];
    ssize_t got = read(0, buffer, sizeof buffer);
    check("and has the data", got == 3 && memcmp(buffer, "abc", 3) == 0);
    check("at its end: POLLHUP", poll(&in, 1, 5000) == 1 && (in.revents & POLLHUP));

    struct pollfd out = {1, POLLOUT, 0};
    check("stdout is writable", poll(&out, 1, 0) == 1 && (out.revents & POLLOUT));
    struct pollfd bad = {closed_fd(), POLLIN, 0};
    check("a closed fd is POLLNVAL", poll(&bad, 1, 0) == 1 && bad.revents == POLLNVAL);
    struct pollfd ignored = {-1, POLLIN, 0};
    check("a negative fd is skipped", poll(&ignored, 1, 0) == 0 && ignored.revents == 0);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, 0);
    int sfd = signalfd(-1, &mask, 0);
    struct pollfd signals = {sfd, POLLIN, 0};
    long long start = now_ms();
    check("nothing pending: poll times out", poll(&signals, 1, 50) == 0);
    check("after its timeout", now_ms() - start >= 50);
    raise(SIGUSR1);
    check("a pending signal makes the signalfd readable", poll(&signals, 1, 0) == 1 && (signals.revents & POLLIN));
    struct signalfd_siginfo record;

    fd_set readable, writable;
    FD_ZERO(&readable);
    FD_ZERO(&writable);
    FD_SET(sfd, &readable);
    FD_SET(1, &writable);
    struct timeval zero = {0, 0};
    check("select", select(sfd + 1, &readable, &writable, 0, &zero) == 2 && FD_ISSET(sfd, &readable) && FD_ISSET(1, &writable));
    FD_ZERO(&readable);
    int closed = closed_fd();
    FD_SET(closed, &readable);
    check("select on a closed fd is EBADF", select(closed + 1, &readable, 0, 0, &zero) == -1 && errno == EBADF);
    check("reading the signalfd takes the signal", read(sfd, &record, sizeof record) == sizeof record && record.ssi_signo == SIGUSR1);

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_alarm;
    sigaction(SIGALRM, &action, 0);
    sigset_t block_alarm, empty;
    sigemptyset(&block_alarm);
    sigaddset(&block_alarm, SIGALRM);
    sigprocmask(SIG_BLOCK, &block_alarm, 0);
    struct itimerval soon = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &soon, 0);
    sigemptyset(&empty);
    struct pollfd nothing = {sfd, 0, 0};
    struct timespec long_wait = {5, 0};
    int result = ppoll(&nothing, 1, &long_wait, &empty);
    sigset_t after;
    sigprocmask(SIG_SETMASK, 0, &after);
    check("ppoll's mask lets the timer's signal in: EINTR", result == -1 && errno == EINTR && alarms == 1);
    check("and the caller's mask comes back", sigismember(&after, SIGALRM));

    printf("%d failures\n", failures);
    return failures;
}
