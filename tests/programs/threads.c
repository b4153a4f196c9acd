/* Threads as pthreads use them: 64 threads on a mutex, a condition variable and a barrier;
 * __thread variables; the monotonic clock across threads; futex waits with timeouts and
 * wakes from another thread; signals to one thread; preemption of a thread that never makes
 * a syscall; each thread's SSE state; robust and priority-inheriting mutexes; /proc's thread
 * count. Prints "ok NAME" or "FAIL NAME" and exits with the number of failures.
 *
 * With an argument it shows how a program ends instead: "exit_group" (a thread's exit(7)
 * ends the program while main waits), "main_exits" (main's pthread_exit leaves the other
 * thread running, and the program's status is that of the last thread). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* include/uapi/linux/futex.h (musl has no linux/ headers). */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

/* glibc 2.36 names the SIGEV_THREAD_ID field only by its internal name. */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define THREADS 64

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    fflush(stdout);
    if (!ok) failures++;
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static pid_t thread_id(void) { return (pid_t)syscall(SYS_gettid); }

/* --- a mutex, 64 threads --- */
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static long long last_seen;
static int clock_went_back;

static void *count_up(void *unused) {
    (void)unused;
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&counter_lock);
        counter++;
        long long now = now_ns();
        if (now < last_seen) clock_went_back = 1;
        last_seen = now;
        pthread_mutex_unlock(&counter_lock);
        if (i % 100 == 0) sched_yield();
    }
    return NULL;
}

/* --- a condition variable --- */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_opened = PTHREAD_COND_INITIALIZER;
static pthread_cond_t all_waiting = PTHREAD_COND_INITIALIZER;
static int gate_open, waiting, passed;

static void *wait_at_gate(void *unused) {
    (void)unused;
    pthread_mutex_lock(&gate_lock);
    waiting++;
    pthread_cond_signal(&all_waiting);
    while (!gate_open) pthread_cond_wait(&gate_opened, &gate_lock);
    passed++;
    pthread_mutex_unlock(&gate_lock);
    return NULL;
}

/* --- a barrier, three rounds --- */
static pthread_barrier_t barrier;
static int arrived[3];
static int early[3];

static void *meet(void *unused) {
    (void)unused;
    for (int round = 0; round < 3; round++) {
        __atomic_add_fetch(&arrived[round], 1, __ATOMIC_SEQ_CST);
        pthread_barrier_wait(&barrier);
        if (__atomic_load_n(&arrived[round], __ATOMIC_SEQ_CST) != THREADS)
            __atomic_add_fetch(&early[round], 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

/* --- __thread --- */
static __thread long mine = 42;
static __thread char name[32];

static void *own_tls(void *argument) {
    long index = (long)argument;
    long ok = mine == 42;
    mine = index;
    snprintf(name, sizeof name, "thread %ld", index);
    for (int i = 0; i < 20; i++) sched_yield();
    char expected[32];
    snprintf(expected, sizeof expected, "thread %ld", index);
    return (void *)(long)(ok && mine == index && strcmp(name, expected) == 0);
}

/* --- futex waits --- */
static unsigned word;
static long futex(unsigned *address, int op, unsigned value, const struct timespec *timeout) {
    return syscall(SYS_futex, address, op, value, timeout, NULL, 0);
}

static void *wait_with_timeout(void *unused) {
    (void)unused;
    struct timespec fifty_ms = {0, 50000000};
    long long start = now_ns();
    long result = futex(&word, FUTEX_WAIT_PRIVATE, 0, &fifty_ms);
    long long waited = now_ns() - start;
    return (void *)(long)(result == -1 && errno == ETIMEDOUT && waited >= 50000000);
}

static void *wait_for_wake(void *unused) {
    (void)unused;
    struct timespec five_s = {5, 0};
    long result = futex(&word, FUTEX_WAIT_PRIVATE, 0, &five_s);
    return (void *)(long)(result == 0);
}

/* --- a signal for one thread --- */
static volatile pid_t handled_by;
static void on_usr1(int signal) {
    (void)signal;
    handled_by = thread_id();
}
static volatile int target_ready;
static pid_t target_tid;
static void *signal_target(void *unused) {
    (void)unused;
    target_tid = thread_id();
    target_ready = 1;
    long long until = now_ns() + 5000000000LL;
    while (!handled_by && now_ns() < until) usleep(1000);
    return NULL;
}

/* --- a timer's signal for one thread (SIGEV_THREAD_ID) --- */
static volatile pid_t timer_handled_by;
static void on_usr2(int signal) {
    (void)signal;
    timer_handled_by = thread_id();
}
static volatile pid_t timer_target;
static void *wait_for_timer(void *unused) {
    (void)unused;
    timer_target = thread_id();
    long long until = now_ns() + 5000000000LL;
    while (!timer_handled_by && now_ns() < until) usleep(1000);
    return NULL;
}

/* --- preemption: a thread that never enters the kernel --- */
static volatile int spinner_go, spinner_done;
static void *spin_until_told(void *unused) {
    (void)unused;
    while (!spinner_go) {
    }
    spinner_done = 1;
    return NULL;
}

/* --- each thread's CPU clock --- */
static void *own_cpu_clock(void *unused) {
    (void)unused;
    struct timespec mine_at_start, process;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mine_at_start);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &process);
    long long own = mine_at_start.tv_sec * 1000000000LL + mine_at_start.tv_nsec;
    long long all = process.tv_sec * 1000000000LL + process.tv_nsec;
    clockid_t clock;
    struct timespec through_id;
    int by_id = pthread_getcpuclockid(pthread_self(), &clock) == 0 &&
                clock_gettime(clock, &through_id) == 0 && through_id.tv_sec < 1;
    return (void *)(long)(own < 20000000 && all > own + 20000000 && by_id);
}

/* --- SSE state per thread --- */
static void *float_work(void *argument) {
    double seed = (double)(long)argument;
    double sum = 0;
    for (int i = 0; i < 2000000; i++) sum += seed * 0.5;
    return (void *)(long)(sum == seed * 0.5 * 2000000);
}

/* --- robust and PI mutexes --- */
static pthread_mutex_t robust;
static void *die_holding(void *unused) {
    (void)unused;
    pthread_mutex_lock(&robust);
    return NULL; /* exits with the lock held */
}

static pthread_mutex_t inheriting;
static int pi_sum;
static void *pi_add(void *unused) {
    (void)unused;
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&inheriting);
        pi_sum++;
        if (i % 50 == 0) sched_yield();
        pthread_mutex_unlock(&inheriting);
    }
    return NULL;
}

static int threads_in_status(void) {
    FILE *status = fopen("/proc/self/status", "r");
    if (!status) return -1;
    char line[256];
    int count = -1;
    while (fgets(line, sizeof line, status))
        if (sscanf(line, "Threads: %d", &count) == 1) break;
    fclose(status);
    return count;
}

static void *rename_self(void *unused) {
    (void)unused;
    char got[16] = "";
    prctl(PR_SET_NAME, "worker");
    prctl(PR_GET_NAME, got);
    return (void *)(long)(strcmp(got, "worker") == 0);
}

static void *exit_seven(void *unused) {
    (void)unused;
    usleep(20000);
    exit(7);
}

static void *outlive_main(void *unused) {
    (void)unused;
    usleep(50000);
    printf("the last thread ends the program\n");
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t threads[THREADS];
    if (argc > 1 && strcmp(argv[1], "exit_group") == 0) {
        pthread_create(&threads[0], NULL, exit_seven, NULL);
        pthread_join(threads[0], NULL);
        printf("not reached\n");
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "main_exits") == 0) {
        pthread_create(&threads[0], NULL, outlive_main, NULL);
        pthread_exit(NULL);
    }

    int made = 0;
    for (int i = 0; i < THREADS; i++) made += pthread_create(&threads[i], NULL, count_up, NULL) == 0;
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    check("64 threads made", made == THREADS);
    check("a mutex keeps 64 threads' counts", counter == THREADS * 1000);
    check("the monotonic clock never goes back from one thread to the next", !clock_went_back);

    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, wait_at_gate, NULL);
    pthread_mutex_lock(&gate_lock);
    while (waiting < THREADS) pthread_cond_wait(&all_waiting, &gate_lock);
    int before = passed;
    gate_open = 1;
    pthread_cond_broadcast(&gate_opened);
    pthread_mutex_unlock(&gate_lock);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    check("a condition variable holds 64 threads until its broadcast", before == 0 && passed == THREADS);

    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, meet, NULL);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    check("a barrier lets no thread through before all 64 arrive, three times",
          early[0] == 0 && early[1] == 0 && early[2] == 0 && arrived[2] == THREADS);

    int own = 0;
    for (long i = 0; i < 8; i++) pthread_create(&threads[i], NULL, own_tls, (void *)(i + 1));
    for (int i = 0; i < 8; i++) {
        void *result;
        pthread_join(threads[i], &result);
        own += result != NULL;
    }
    check("__thread variables: each thread its own, from their initial values", own == 8 && mine == 42);

    pthread_t waiter, sleeper;
    pthread_create(&sleeper, NULL, wait_with_timeout, NULL);
    void *timed_out;
    pthread_join(sleeper, &timed_out);
    check("a futex wait with a timeout ends with ETIMEDOUT after it", timed_out != NULL);
    pthread_create(&waiter, NULL, wait_for_wake, NULL);
    long woken = 0;
    long long until = now_ns() + 5000000000LL;
    while (woken == 0 && now_ns() < until) {
        usleep(1000);
        woken = futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL);
    }
    void *was_woken;
    pthread_join(waiter, &was_woken);
    check("FUTEX_WAKE from main wakes a thread's wait: 1 woken, it returns 0", woken == 1 && was_woken != NULL);

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    sigaction(SIGUSR1, &action, NULL);
    pthread_t target;
    pthread_create(&target, NULL, signal_target, NULL);
    while (!target_ready) sched_yield();
    check("pthread_kill", pthread_kill(target, SIGUSR1) == 0);
    pthread_join(target, NULL);
    check("the signal ran its handler in the thread it was sent to", handled_by == target_tid && target_tid != getpid());

    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr2;
    sigaction(SIGUSR2, &action, NULL);
    pthread_t timed;
    pthread_create(&timed, NULL, wait_for_timer, NULL);
    while (!timer_target) sched_yield();
    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = SIGUSR2;
    event.sigev_notify_thread_id = timer_target;
    timer_t timer;
    int created = timer_create(CLOCK_MONOTONIC, &event, &timer) == 0;
    struct itimerspec soon = {{0, 0}, {0, 10000000}};
    created = created && timer_settime(timer, 0, &soon, NULL) == 0;
    pthread_join(timed, NULL);
    check("a SIGEV_THREAD_ID timer signals the thread it names",
          created && timer_handled_by == timer_target);
    event.sigev_notify_thread_id = 999999;
    check("SIGEV_THREAD_ID naming no thread: EINVAL",
          timer_create(CLOCK_MONOTONIC, &event, &timer) == -1 && errno == EINVAL);

    pthread_t spinner;
    pthread_create(&spinner, NULL, spin_until_told, NULL);
    long long spin_start = now_ns();
    while (now_ns() - spin_start < 30000000) {
    } /* 30 ms busy, no syscall but the vDSO's clock */
    spinner_go = 1;
    pthread_join(spinner, NULL);
    check("a thread that never enters the kernel is preempted, and so is main", spinner_done);

    pthread_t clock_reader;
    void *own_clock;
    /* The process has used 30 ms of CPU or more before the thread starts, however fast the
     * machine ran the checks above. */
    struct timespec spent;
    do {
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spent);
    } while (spent.tv_sec == 0 && spent.tv_nsec < 30000000);
    pthread_create(&clock_reader, NULL, own_cpu_clock, NULL);
    pthread_join(clock_reader, &own_clock);
    check("a new thread's CPU clock starts from zero; the process's counts all threads", own_clock != NULL);

    for (long i = 0; i < 4; i++) pthread_create(&threads[i], NULL, float_work, (void *)(i + 3));
    int exact = 0;
    for (int i = 0; i < 4; i++) {
        void *result;
        pthread_join(threads[i], &result);
        exact += result != NULL;
    }
    check("each thread's SSE registers survive preemption", exact == 4);

    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &attributes);
    pthread_t dying;
    pthread_create(&dying, NULL, die_holding, NULL);
    pthread_join(dying, NULL);
    int locked = pthread_mutex_lock(&robust);
    check("a robust mutex whose owner died: EOWNERDEAD", locked == EOWNERDEAD);
    if (locked == EOWNERDEAD) {
        pthread_mutex_consistent(&robust);
        pthread_mutex_unlock(&robust);
    }

    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_setprotocol(&attributes, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&inheriting, &attributes);
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, pi_add, NULL);
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    check("a priority-inheriting mutex keeps 4 threads' counts", pi_sum == 2000);

    pthread_t idle;
    pthread_create(&idle, NULL, wait_for_wake, NULL);
    usleep(10000);
    int counted = threads_in_status();
    word = 1;
    futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL);
    pthread_join(idle, NULL);
    check("/proc/self/status counts the threads", counted == 2 && threads_in_status() == 1);
    check("getpid is the same in every thread, gettid is not", thread_id() == getpid());

    char name_before[16] = "", name_after[16] = "", shown[32] = "";
    prctl(PR_GET_NAME, name_before);
    pthread_t renamer;
    void *renamed;
    pthread_create(&renamer, NULL, rename_self, NULL);
    pthread_join(renamer, &renamed);
    prctl(PR_GET_NAME, name_after);
    FILE *comm = fopen("/proc/self/comm", "r");
    if (comm) {
        if (!fgets(shown, sizeof shown, comm)) shown[0] = 0;
        fclose(comm);
    }
    shown[strcspn(shown, "\n")] = 0;
    check("PR_SET_NAME names its own thread: main's name and /proc/self/comm stay",
          renamed != NULL && strcmp(name_before, name_after) == 0 && strcmp(shown, name_before) == 0);
    return failures;
}
