/* The CPU-time clocks of a program with one thread: a busy loop consumes CPU time, a sleep
 * does not; the thread's clock never runs ahead of the process's; clock_nanosleep on the
 * process's own CPU clock ends at once for a deadline reached and otherwise waits until a
 * signal (nothing else runs to advance it); on the thread's clock it is EINVAL.
 * Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static long long ns(clockid_t clock) {
    struct timespec t;
    if (clock_gettime(clock, &t) != 0) return -1;
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static volatile int alarms, profs, vtalrms;
static void on_alarm(int signal) { (void)signal; alarms++; }
static void on_prof(int signal) { (void)signal; profs++; }
static void on_vtalrm(int signal) { (void)signal; vtalrms++; }
static volatile int usr1s;
static void on_usr1(int signal) { (void)signal; usr1s++; }

/* Spins until *counter reaches goal, or 5 s of wall time pass. */
static void spin_until(volatile int *counter, int goal) {
    long long start = ns(CLOCK_MONOTONIC);
    while (*counter < goal && ns(CLOCK_MONOTONIC) - start < 5000000000LL) {
    }
}

int main(void) {
    /* The wall clock first, so the CPU time measured lies within the wall time measured. */
    long long wall_start = ns(CLOCK_MONOTONIC);
    long long cpu_start = ns(CLOCK_PROCESS_CPUTIME_ID);
    check("the process CPU clock reads", cpu_start >= 0);
    /* Spin until 20 ms of CPU time (a loaded host may give us little of the wall time), or
     * give up after 5 s of wall time. */
    volatile unsigned long spins = 0;
    while (ns(CLOCK_PROCESS_CPUTIME_ID) - cpu_start < 20000000 &&
           ns(CLOCK_MONOTONIC) - wall_start < 5000000000LL)
        spins++;
    long long busy = ns(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    check("a busy loop consumes CPU time: 20 ms within 5 s", busy >= 20000000);
    check("and no more than the wall time it took",
          busy <= ns(CLOCK_MONOTONIC) - wall_start + 1000000);
    long long thread = ns(CLOCK_THREAD_CPUTIME_ID), process = ns(CLOCK_PROCESS_CPUTIME_ID);
    check("the thread clock is not ahead of the process clock", thread > 0 && thread <= process);

    struct rusage usage;
    check("getrusage(RUSAGE_SELF)", getrusage(RUSAGE_SELF, &usage) == 0);
    long long user_and_system = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000LL +
                                usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
    check("counts the busy loop's CPU time", user_and_system >= 10000);
    long peak_before = usage.ru_maxrss;
    check("and a resident set", peak_before > 0);
    volatile char *block = malloc(16 << 20);
    for (int offset = 0; offset < 16 << 20; offset += 4096) block[offset] = 1;
    free((void *)block);
    getrusage(RUSAGE_SELF, &usage);
    /* Not "raised by 16 MiB": Linux carries the peak across execve, so a program forked from a
     * large test harness may start with a peak above what it touches here. Not "16 MiB or more"
     * either: Linux counts resident pages per CPU and folds them in by batches, so its peak can
     * lag by a batch on every CPU the program ran on (a CI machine's Linux reported under 16). */
    check("16 MiB touched: ru_maxrss covers most of them, and it stays after free",
          usage.ru_maxrss >= 12 * 1024 && usage.ru_maxrss >= peak_before);
    check("RUSAGE_THREAD", getrusage(RUSAGE_THREAD, &usage) == 0);
    check("RUSAGE_CHILDREN: no children, no time",
          getrusage(RUSAGE_CHILDREN, &usage) == 0 && usage.ru_utime.tv_sec == 0 &&
          usage.ru_utime.tv_usec == 0);
    check("a bad who: EINVAL", getrusage(7, &usage) == -1 && errno == EINVAL);

    struct sysinfo info;
    check("sysinfo", sysinfo(&info) == 0);
    check("sysinfo: RAM, some of it free",
          (unsigned long long)info.totalram * info.mem_unit > (1 << 20) &&
          info.freeram > 0 && info.freeram <= info.totalram);
    check("sysinfo: up for a second or more, one process or more",
          info.uptime >= 1 && info.procs >= 1);
    check("sysconf(_SC_PHYS_PAGES) from it", sysconf(_SC_PHYS_PAGES) > 0);

    struct tms ticks;
    clock_t ticks_before = times(&ticks);
    check("times: the busy loop in ticks", ticks.tms_utime + ticks.tms_stime >= 1);
    long long before = ns(CLOCK_PROCESS_CPUTIME_ID);
    struct timespec nap = {0, 200000000};
    nanosleep(&nap, NULL);
    check("200 ms asleep: under 50 ms of CPU time",
          ns(CLOCK_PROCESS_CPUTIME_ID) - before < 50000000);
    clock_t ticks_after = times(NULL);
    long per_second = sysconf(_SC_CLK_TCK);
    check("times' return value counts the 200 ms",
          per_second == 100 && ticks_after - ticks_before >= 19 && ticks_after - ticks_before < 100);

    struct timespec resolution;
    check("clock_getres on the CPU clocks",
          clock_getres(CLOCK_PROCESS_CPUTIME_ID, &resolution) == 0 &&
          clock_getres(CLOCK_THREAD_CPUTIME_ID, &resolution) == 0 && resolution.tv_sec == 0);

    struct timespec past = {0, 1};
    check("sleep until a CPU time already reached: at once",
          clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, TIMER_ABSTIME, &past, NULL) == 0);
    struct timespec second = {1, 0};
    check("sleep on the thread's own CPU clock: EINVAL (from the C library)",
          clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &second, NULL) == EINVAL);
    check("the raw syscall on CLOCK_THREAD_CPUTIME_ID: EOPNOTSUPP",
          syscall(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &second, NULL) == -1 &&
          errno == EOPNOTSUPP);
    clockid_t own_thread;
    check("pthread_getcpuclockid", pthread_getcpuclockid(pthread_self(), &own_thread) == 0);
    check("the raw syscall on the thread's own clock id: EINVAL",
          syscall(SYS_clock_nanosleep, own_thread, 0, &second, NULL) == -1 && errno == EINVAL);
    struct timespec reading;
    check("that clock id reads", clock_gettime(own_thread, &reading) == 0 &&
          (reading.tv_sec > 0 || reading.tv_nsec > 0));

    struct sigaction action = {0};
    action.sa_handler = on_alarm;
    sigaction(SIGALRM, &action, NULL);
    /* Repeating, so a sleep that starts late is still interrupted. */
    struct itimerval every = {{0, 100000}, {0, 100000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &every, NULL);
    struct timespec left = {0, 0};
    long long wall = ns(CLOCK_MONOTONIC);
    int result = clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &second, &left);
    setitimer(ITIMER_REAL, &off, NULL);
    check("a CPU-time sleep waits until a signal: EINTR", result == EINTR && alarms >= 1);
    check("after the signal, not a second later", ns(CLOCK_MONOTONIC) - wall < 900000000);
    check("with most of its time left", left.tv_sec == 1 || left.tv_nsec > 900000000);
    /* The CPU-time interval timers: ITIMER_VIRTUAL does not run while the program sleeps;
     * ITIMER_PROF repeats while it runs. SA_RESTART, so the sleep is not cut short. */
    struct sigaction cpu_action = {0};
    cpu_action.sa_flags = SA_RESTART;
    cpu_action.sa_handler = on_vtalrm;
    sigaction(SIGVTALRM, &cpu_action, NULL);
    cpu_action.sa_handler = on_prof;
    sigaction(SIGPROF, &cpu_action, NULL);
    struct itimerval virtual_once = {{0, 0}, {0, 50000}};
    check("setitimer(ITIMER_VIRTUAL)", setitimer(ITIMER_VIRTUAL, &virtual_once, NULL) == 0);
    struct timespec fifth = {0, 200000000};
    nanosleep(&fifth, NULL);
    struct itimerval left_virtual;
    getitimer(ITIMER_VIRTUAL, &left_virtual);
    check("200 ms asleep: ITIMER_VIRTUAL has not fired",
          vtalrms == 0 && left_virtual.it_value.tv_usec > 0);
    spin_until(&vtalrms, 1);
    check("running, it fires once", vtalrms == 1);
    getitimer(ITIMER_VIRTUAL, &left_virtual);
    check("and is disarmed", left_virtual.it_value.tv_sec == 0 && left_virtual.it_value.tv_usec == 0);

    struct itimerval every_20ms = {{0, 20000}, {0, 20000}}, stop = {{0, 0}, {0, 0}};
    check("setitimer(ITIMER_PROF) repeating", setitimer(ITIMER_PROF, &every_20ms, NULL) == 0);
    spin_until(&profs, 3);
    setitimer(ITIMER_PROF, &stop, NULL);
    check("ITIMER_PROF fires again and again while the program runs", profs >= 3);

    /* A POSIX timer on the process's CPU-time clock. */
    cpu_action.sa_handler = on_usr1;
    sigaction(SIGUSR1, &cpu_action, NULL);
    struct sigevent event = {0};
    event.sigev_notify = SIGEV_SIGNAL;
    event.sigev_signo = SIGUSR1;
    timer_t timer;
    check("timer_create(CLOCK_PROCESS_CPUTIME_ID)",
          timer_create(CLOCK_PROCESS_CPUTIME_ID, &event, &timer) == 0);
    struct itimerspec in_30ms = {{0, 0}, {0, 30000000}};
    check("timer_settime", timer_settime(timer, 0, &in_30ms, NULL) == 0);
    nanosleep(&fifth, NULL);
    struct itimerspec timer_left;
    timer_gettime(timer, &timer_left);
    check("200 ms asleep: the CPU-time timer has not fired",
          usr1s == 0 && timer_left.it_value.tv_nsec > 0);
    spin_until(&usr1s, 1);
    check("running, it fires", usr1s == 1);
    timer_delete(timer);
    return failures;
}
