/* signalfd: blocked signals are read as signalfd_siginfo records, several at once; a
 * non-blocking read with none pending is EAGAIN; a blocking read waits for a timer's signal;
 * the mask can be changed; a short buffer is EINVAL. Prints "ok NAME" or "FAIL NAME". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <unistd.h>

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

int main(void) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigaddset(&mask, SIGALRM);
    sigprocmask(SIG_BLOCK, &mask, 0);
    int fd = signalfd(-1, &mask, SFD_CLOEXEC);
    check("signalfd", fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC);

    raise(SIGUSR1);
    raise(SIGUSR2);
    struct signalfd_siginfo records[4];
    ssize_t got = read(fd, records, sizeof records);
    check("two pending signals, two records", got == 2 * (ssize_t)sizeof records[0] &&
          records[0].ssi_signo == SIGUSR1 && records[1].ssi_signo == SIGUSR2 && records[0].ssi_pid == (unsigned)getpid());

    fcntl(fd, F_SETFL, O_NONBLOCK);
    check("nothing pending, non-blocking: EAGAIN", read(fd, records, sizeof records) == -1 && errno == EAGAIN);
    fcntl(fd, F_SETFL, 0);

    struct itimerval soon = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &soon, 0);
    got = read(fd, records, sizeof records[0]);
    check("a blocking read waits for the timer's signal", got == sizeof records[0] && records[0].ssi_signo == SIGALRM);

    sigset_t only_usr2;
    sigemptyset(&only_usr2);
    sigaddset(&only_usr2, SIGUSR2);
    check("the mask can change", signalfd(fd, &only_usr2, 0) == fd);
    raise(SIGUSR1);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    check("a signal outside the mask is not read", read(fd, records, sizeof records) == -1 && errno == EAGAIN);
    sigset_t pending;
    sigpending(&pending);
    check("it stays pending", sigismember(&pending, SIGUSR1));
    check("a short buffer is EINVAL", read(fd, records, 16) == -1 && errno == EINVAL);
    check("signalfd on another fd is EINVAL", signalfd(1, &mask, 0) == -1 && errno == EINVAL);

    printf("%d failures\n", failures);
    return failures;
}
