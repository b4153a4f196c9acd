/* Exercises the syscalls a static program needs at start and for stdio, memory, time and
 * identity, checking each result against Linux's semantics. Prints "ok NAME" or
 * "FAIL NAME: why" per check and exits with the number of failures; it passes on Linux too. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void check(const char *name, int ok, const char *why) {
    if (ok) printf("ok %s\n", name);
    else { printf("FAIL %s: %s (errno %d %s)\n", name, why, errno, strerror(errno)); failures++; }
}

static __thread int thread_local_counter = 41;

static void on_usr1(int signal) { (void)signal; }

int main(int argc, char **argv) {
    (void)argc;
    struct utsname name;
    check("uname", uname(&name) == 0 && strcmp(name.sysname, "Linux") == 0 && strcmp(name.machine, "x86_64") == 0, "sysname/machine");

    check("getpid", getpid() > 0, "pid must be positive");
    check("gettid", syscall(SYS_gettid) == getpid(), "a single-threaded process has tid == pid");
    check("getppid", getppid() != getpid() && getppid() >= 0, "ppid must be another process (or none)");
    check("getuid", getuid() == geteuid() && getgid() == getegid(), "real and effective ids differ");

    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (volatile int i = 0; i < 100000; i++) {}
    clock_gettime(CLOCK_MONOTONIC, &b);
    check("monotonic", (b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec > a.tv_nsec)) && b.tv_nsec < 1000000000, "did not advance");
    struct timespec now;
    check("realtime", clock_gettime(CLOCK_REALTIME, &now) == 0 && now.tv_sec > 1600000000 && now.tv_sec < 4102444800, "not a date between 2020 and 2100");
    struct timeval tv;
    gettimeofday(&tv, 0);
    check("gettimeofday", labs(tv.tv_sec - now.tv_sec) <= 1 && tv.tv_usec < 1000000, "disagrees with CLOCK_REALTIME");
    check("time", labs(time(0) - now.tv_sec) <= 1, "disagrees with CLOCK_REALTIME");
    errno = 0;
    check("clock_gettime(bad clock)", clock_gettime(99, &now) == -1 && errno == EINVAL, "expected EINVAL");
    struct timespec resolution;
    check("clock_getres", clock_getres(CLOCK_MONOTONIC, &resolution) == 0 && resolution.tv_sec == 0 && resolution.tv_nsec > 0, "bad resolution");

    unsigned char random1[32] = {0}, random2[32] = {0};
    check("getrandom", getrandom(random1, sizeof random1, 0) == 32 && getrandom(random2, sizeof random2, 0) == 32 && memcmp(random1, random2, 32) != 0, "short or repeated");
    errno = 0;
    check("getrandom(bad flags)", getrandom(random1, 8, 0x100) == -1 && errno == EINVAL, "expected EINVAL");

    size_t big = 16 << 20;
    char *block = malloc(big);
    if (block) { memset(block, 0xab, big); }
    check("malloc 16 MiB", block && block[big - 1] == (char)0xab, "malloc failed");
    free(block);

    /* The raw syscall: musl's sbrk refuses to move the break. */
    char *before = (char *)syscall(SYS_brk, 0);
    char *grown = (char *)syscall(SYS_brk, before + (1 << 20));
    if (grown == before + (1 << 20)) grown[-1] = 1;
    check("brk", grown == before + (1 << 20) && (char *)syscall(SYS_brk, before) == before && (char *)syscall(SYS_brk, 0) == before, "the break did not move as asked");

    char *area = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check("mmap", area != MAP_FAILED && area[12345] == 0, "anonymous memory must read as zero");
    area[0] = 7;
    check("mmap MAP_FIXED_NOREPLACE", mmap(area, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED && errno == EEXIST, "expected EEXIST");
    check("mprotect", mprotect(area, 4096, PROT_READ) == 0 && mprotect(area, 4096, PROT_READ | PROT_WRITE) == 0 && area[0] == 7, "contents lost");
    area[4096] = 9;
    check("madvise(MADV_DONTNEED)", madvise(area + 4096, 4096, MADV_DONTNEED) == 0 && area[4096] == 0, "page did not read back as zero");
    check("munmap", munmap(area, 1 << 20) == 0, "munmap failed");
    errno = 0;
    check("mmap(length 0)", mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == EINVAL, "expected EINVAL");

    char exe[4096] = {0};
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    check("readlink /proc/self/exe", len > 0 && exe[0] == '/' && strcmp(strrchr(exe, '/') + 1, base) == 0, "does not name this program");
    char cwd[4096];
    check("getcwd", getcwd(cwd, sizeof cwd) && cwd[0] == '/', "no absolute cwd");

    cpu_set_t cpus;
    check("sched_getaffinity", sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) >= 1, "no CPU");
    check("sched_yield", sched_yield() == 0, "failed");

    struct rlimit limit;
    check("getrlimit(RLIMIT_STACK)", getrlimit(RLIMIT_STACK, &limit) == 0 && limit.rlim_cur > 0, "no stack limit");
    struct rlimit files = {64, 64};
    struct rlimit back;
    check("setrlimit(RLIMIT_NOFILE)", setrlimit(RLIMIT_NOFILE, &files) == 0 && getrlimit(RLIMIT_NOFILE, &back) == 0 && back.rlim_cur == 64, "not recorded");

    errno = 0;
    check("write(bad fd)", write(99, "x", 1) == -1 && errno == EBADF, "expected EBADF");
    errno = 0;
    /* The lowest free descriptor is surely closed; the native side may inherit others. */
    int closed = dup(1);
    close(closed);
    errno = 0;
    check("close(bad fd)", close(closed) == -1 && errno == EBADF, "expected EBADF");
    errno = 0;
    /* The kernel's half of the address space is not the program's: a pointer into it is EFAULT. */
    check("write(kernel address)", write(1, (void *)0xffffffff80100000ul, 16) == -1 && errno == EFAULT, "expected EFAULT");
    errno = 0;
    check("write(unmapped address)", write(1, (void *)0x1000, 16) == -1 && errno == EFAULT, "expected EFAULT");
    int copy = dup(1);
    check("dup", copy > 2 && write(copy, "", 0) == 0 && close(copy) == 0, "dup'd fd unusable");
    check("fcntl(F_GETFD)", fcntl(1, F_GETFD) == 0, "stdout must not be close-on-exec");
    errno = 0;
    check("lseek(console)", lseek(1, 0, SEEK_CUR) == -1 && errno == ESPIPE, "expected ESPIPE");

    struct sigaction action = {0}, old = {0};
    action.sa_handler = on_usr1;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGUSR2);
    check("sigaction", sigaction(SIGUSR1, &action, 0) == 0 && sigaction(SIGUSR1, 0, &old) == 0 && old.sa_handler == on_usr1 && sigismember(&old.sa_mask, SIGUSR2), "not read back");
    errno = 0;
    check("sigaction(SIGKILL)", sigaction(SIGKILL, &action, 0) == -1 && errno == EINVAL, "expected EINVAL");
    sigset_t blocked, current;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGUSR1);
    check("sigprocmask", sigprocmask(SIG_BLOCK, &blocked, 0) == 0 && sigprocmask(SIG_SETMASK, 0, &current) == 0 && sigismember(&current, SIGUSR1), "mask not read back");

    unsigned long fs_base = 0, self = 0;
    syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs_base);
    __asm__ volatile("mov %%fs:0, %0" : "=r"(self));
    check("arch_prctl(ARCH_GET_FS)", fs_base != 0 && fs_base == self, "FS base is not the thread pointer");
    thread_local_counter++;
    check("__thread", thread_local_counter == 42, "TLS is broken");

    printf("%d failures\n", failures);
    return failures;
}
