/* futex(2) in a program with one thread, and the scheduler calls such a program makes:
 * value mismatch (EAGAIN), relative and absolute timeouts (ETIMEDOUT), a timer's signal
 * interrupting a timed wait (EINTR), wakes with nobody waiting, FUTEX_WAKE_OP's store,
 * FUTEX_CMP_REQUEUE's check, PI locks, bad arguments; getcpu, sched_{get,set}affinity, niceness
 * and scheduling policy.
 * Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* From include/uapi/linux/futex.h, which musl-gcc's headers lack. */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#define FUTEX_CMP_REQUEUE_PRIVATE 132
#define FUTEX_WAKE_OP_PRIVATE 133
#define FUTEX_LOCK_PI_PRIVATE 134
#define FUTEX_UNLOCK_PI_PRIVATE 135
#define FUTEX_TRYLOCK_PI_PRIVATE 136
#define FUTEX_WAIT_BITSET_PRIVATE 137
#define FUTEX_WAKE_BITSET_PRIVATE 138
#define FUTEX_CLOCK_REALTIME 256
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu
#define FUTEX_OP_SET 0
#define FUTEX_OP_ADD 1
#define FUTEX_OP_CMP_EQ 0
#define FUTEX_OP(op, oparg, cmp, cmparg) \
    ((((op) & 0xf) << 28) | (((cmp) & 0xf) << 24) | (((oparg) & 0xfff) << 12) | ((cmparg) & 0xfff))

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static long futex(uint32_t *word, int op, uint32_t value, const struct timespec *timeout,
                  uint32_t *word2, uint32_t value3) {
    return syscall(SYS_futex, word, op, value, timeout, word2, value3);
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static volatile int alarms;
static void on_alarm(int signal) { (void)signal; alarms++; }

int main(void) {
    static uint32_t word = 7, word2 = 1;
    check("wait on a changed value: EAGAIN",
          futex(&word, FUTEX_WAIT_PRIVATE, 8, NULL, NULL, 0) == -1 && errno == EAGAIN);

    struct timespec ten_ms = {0, 10000000};
    long long start = now_ns();
    long result = futex(&word, FUTEX_WAIT_PRIVATE, 7, &ten_ms, NULL, 0);
    long long waited = now_ns() - start;
    check("relative wait times out", result == -1 && errno == ETIMEDOUT);
    check("after at least its timeout", waited >= 10000000);

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += 5000000;
    if (deadline.tv_nsec >= 1000000000) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000; }
    result = futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 7, &deadline, NULL, FUTEX_BITSET_MATCH_ANY);
    struct timespec after;
    clock_gettime(CLOCK_MONOTONIC, &after);
    check("absolute monotonic wait times out", result == -1 && errno == ETIMEDOUT);
    check("not before its deadline", after.tv_sec > deadline.tv_sec ||
          (after.tv_sec == deadline.tv_sec && after.tv_nsec >= deadline.tv_nsec));

    struct timespec past;
    clock_gettime(CLOCK_REALTIME, &past);
    past.tv_sec -= 1;
    check("a realtime deadline in the past times out at once",
          futex(&word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 7, &past, NULL,
                FUTEX_BITSET_MATCH_ANY) == -1 && errno == ETIMEDOUT);

    struct sigaction action = {0};
    action.sa_handler = on_alarm; /* no SA_RESTART */
    sigaction(SIGALRM, &action, NULL);
    /* Repeating, so a wait that starts late is still interrupted. */
    struct itimerval every = {{0, 20000}, {0, 20000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &every, NULL);
    struct timespec long_wait = {5, 0};
    start = now_ns();
    result = futex(&word, FUTEX_WAIT_PRIVATE, 7, &long_wait, NULL, 0);
    int interrupted = result == -1 && errno == EINTR;
    setitimer(ITIMER_REAL, &off, NULL);
    check("a signal interrupts a timed wait: EINTR", interrupted);
    check("its handler ran", alarms >= 1);
    check("well before the timeout", now_ns() - start < 4000000000LL);

    check("wake with nobody waiting: 0", futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 0);
    check("wake_bitset with an empty bitset: EINVAL",
          futex(&word, FUTEX_WAKE_BITSET_PRIVATE, 1, NULL, NULL, 0) == -1 && errno == EINVAL);
    check("wait_bitset with an empty bitset: EINVAL",
          futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 7, NULL, NULL, 0) == -1 && errno == EINVAL);
    /* FUTEX_OP(FUTEX_OP_ADD, 4, FUTEX_OP_CMP_EQ, 1): *word2 += 4, wakes nobody. */
    check("wake_op: 0 woken",
          futex(&word, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &word2,
                FUTEX_OP(FUTEX_OP_ADD, 4, FUTEX_OP_CMP_EQ, 1)) == 0);
    check("wake_op did its operation", word2 == 5);
    check("cmp_requeue on a changed value: EAGAIN",
          futex(&word, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1, &word2, 8) == -1 && errno == EAGAIN);
    check("cmp_requeue: 0 moved",
          futex(&word, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1, &word2, 7) == 0);
    check("misaligned word: EINVAL",
          futex((uint32_t *)((char *)&word + 1), FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == -1 &&
          errno == EINVAL);
    check("unmapped word: EFAULT",
          futex((uint32_t *)4096, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0) == -1 && errno == EFAULT);
    struct timespec bad = {0, 1000000000};
    check("bad timeout: EINVAL",
          futex(&word, FUTEX_WAIT_PRIVATE, 7, &bad, NULL, 0) == -1 && errno == EINVAL);
    check("a bad timeout is checked before the word: EINVAL, not EAGAIN",
          futex(&word, FUTEX_WAIT_PRIVATE, 8, &bad, NULL, 0) == -1 && errno == EINVAL);
    check("FUTEX_CLOCK_REALTIME with a wake: ENOSYS",
          futex(&word, FUTEX_WAKE_PRIVATE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0) == -1 &&
          errno == ENOSYS);
    check("requeue of a negative count: EINVAL",
          futex(&word, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)-1L, &word2, 7) == -1 &&
          errno == EINVAL);
    /* FUTEX_OP(FUTEX_OP_SET, -1, ...): the 12-bit argument is signed. */
    check("wake_op with a negative argument",
          futex(&word, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &word2,
                FUTEX_OP(FUTEX_OP_SET, 0xfff, FUTEX_OP_CMP_EQ, 0)) == 0 && word2 == 0xffffffffu);
    check("wake_op with an unknown comparison: ENOSYS, after the store",
          futex(&word, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &word2,
                FUTEX_OP(FUTEX_OP_SET, 3, 9, 0)) == -1 && errno == ENOSYS && word2 == 3);

    /* Priority-inheritance futexes, as glibc's PTHREAD_PRIO_INHERIT mutexes use them. */
    static uint32_t pi;
    uint32_t tid = (uint32_t)syscall(SYS_gettid);
    check("unlock_pi of a lock not ours: EPERM",
          futex(&pi, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0) == -1 && errno == EPERM);
    check("lock_pi of a free lock takes it", futex(&pi, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0) == 0 &&
          pi == tid);
    check("lock_pi again: EDEADLK",
          futex(&pi, FUTEX_LOCK_PI_PRIVATE, 0, NULL, NULL, 0) == -1 && errno == EDEADLK);
    check("unlock_pi by the owner frees it",
          futex(&pi, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0) == 0 && pi == 0);
    check("trylock_pi of a free lock takes it",
          futex(&pi, FUTEX_TRYLOCK_PI_PRIVATE, 0, NULL, NULL, 0) == 0 && pi == tid);
    futex(&pi, FUTEX_UNLOCK_PI_PRIVATE, 0, NULL, NULL, 0);

    /* Pin to the first CPU allowed (Pith's one CPU is 0; a Linux runner's cpuset may not
     * hold CPU 0), and getcpu must say so. */
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    int first = 0;
    while (first < CPU_SETSIZE && !CPU_ISSET(first, &set)) first++;
    CPU_ZERO(&set);
    CPU_SET(first, &set);
    check("pin to one cpu", sched_setaffinity(0, sizeof set, &set) == 0);
    CPU_ZERO(&set);
    check("and read it back", sched_getaffinity(0, sizeof set, &set) == 0 &&
          CPU_COUNT(&set) == 1 && CPU_ISSET(first, &set));
    unsigned cpu = 99, node = 99;
    check("getcpu once pinned: that cpu",
          syscall(SYS_getcpu, &cpu, &node, NULL) == 0 && cpu == (unsigned)first);

    /* Niceness and policy, raised only (what an unprivileged Linux process may do). The
     * policy calls go straight to the kernel: musl's wrappers answer ENOSYS by design. */
    errno = 0;
    int nice_now = getpriority(PRIO_PROCESS, 0);
    check("getpriority: nice 0", nice_now == 0 && errno == 0);
    check("setpriority to nice 5", setpriority(PRIO_PROCESS, 0, 5) == 0);
    check("read back", getpriority(PRIO_PROCESS, getpid()) == 5);
    check("raw getpriority is 20 - nice", syscall(SYS_getpriority, PRIO_PROCESS, 0) == 15);
    check("setpriority past 19 clamps", setpriority(PRIO_PROCESS, 0, 50) == 0 &&
          getpriority(PRIO_PROCESS, 0) == 19);
    check("getpriority of no such process: ESRCH",
          getpriority(PRIO_PROCESS, 999999) == -1 && errno == ESRCH);
    check("SCHED_OTHER to start with", syscall(SYS_sched_getscheduler, 0) == SCHED_OTHER);
    check("SCHED_FIFO priorities 1..99",
          sched_get_priority_min(SCHED_FIFO) == 1 && sched_get_priority_max(SCHED_FIFO) == 99);
    check("SCHED_OTHER priority 0 only",
          sched_get_priority_min(SCHED_OTHER) == 0 && sched_get_priority_max(SCHED_OTHER) == 0);
    struct sched_param param = {0};
    check("SCHED_BATCH", syscall(SYS_sched_setscheduler, 0, SCHED_BATCH, &param) == 0 &&
          syscall(SYS_sched_getscheduler, 0) == SCHED_BATCH);
    param.sched_priority = 5;
    check("SCHED_OTHER with priority 5: EINVAL",
          syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &param) == -1 && errno == EINVAL);
    param.sched_priority = 0;
    check("back to SCHED_OTHER", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &param) == 0 &&
          syscall(SYS_sched_getparam, 0, &param) == 0 && param.sched_priority == 0);

    /* membarrier: what a runtime registers and asks for (MEMBARRIER_CMD_* values). */
    long commands = syscall(SYS_membarrier, 0, 0, 0);
    check("membarrier query: the expedited commands", commands >= 0 && (commands & 0x7e) == 0x7e);
    check("private expedited before registering: EPERM",
          syscall(SYS_membarrier, 8, 0, 0) == -1 && errno == EPERM);
    check("register, then private expedited",
          syscall(SYS_membarrier, 16, 0, 0) == 0 && syscall(SYS_membarrier, 8, 0, 0) == 0);
    check("membarrier with flags: EINVAL", syscall(SYS_membarrier, 8, 1, 0) == -1 && errno == EINVAL);

    /* Process group and session (under Pith the program leads both: ids equal its pid). */
    check("getpgrp is getpgid(0) and getpgid(getpid())",
          getpgrp() >= 0 && getpgrp() == getpgid(0) && getpgid(getpid()) == getpgrp());
    /* 0 is a valid answer on Linux: a session led from outside the caller's pid namespace,
     * as under a CI runner's sandbox. */
    check("getsid(0) is getsid(getpid())", getsid(0) >= 0 && getsid(0) == getsid(getpid()));
    check("getpgid of no such process: ESRCH", getpgid(999999) == -1 && errno == ESRCH);
    check("setpgid to a negative group: EINVAL", setpgid(0, -1) == -1 && errno == EINVAL);
    return failures;
}
