/* The vDSO: AT_SYSINFO_EHDR points at an ELF image listed as [vdso] (with [vvar]) in
 * /proc/self/maps, and the C library's clock_gettime, gettimeofday, time and getcpu agree with
 * the real syscalls. Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

int main(void) {
    const unsigned char *vdso = (const unsigned char *)getauxval(AT_SYSINFO_EHDR);
    check("AT_SYSINFO_EHDR points at an ELF image", vdso && memcmp(vdso, "\177ELF", 4) == 0);

    char maps[16384] = {0};
    int fd = open("/proc/self/maps", O_RDONLY);
    size_t total = 0;
    ssize_t got;
    while (fd >= 0 && (got = read(fd, maps + total, sizeof maps - 1 - total)) > 0) total += got;
    check("/proc/self/maps lists [vdso] and [vvar]", strstr(maps, "[vdso]") && strstr(maps, "[vvar]"));

    int ordered = 1;
    for (int i = 0; i < 1000; i++) {
        struct timespec library, kernel, after;
        clock_gettime(CLOCK_MONOTONIC, &library);
        syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &kernel);
        clock_gettime(CLOCK_MONOTONIC, &after);
        ordered &= ns(library) <= ns(kernel) && ns(kernel) <= ns(after);
    }
    check("the vDSO's monotonic clock and the kernel's are one clock", ordered);

    struct timespec real;
    struct timeval tv;
    clock_gettime(CLOCK_REALTIME, &real);
    gettimeofday(&tv, 0);
    long seconds = time(0);
    check("wall clocks agree", tv.tv_sec - real.tv_sec <= 1 && seconds - real.tv_sec <= 1 && real.tv_sec > 1600000000);
    int cpu = sched_getcpu();
    check("sched_getcpu", cpu >= 0 && cpu < 1024);
    struct timespec bad;
    check("a bad clock is still EINVAL", clock_gettime(1234, &bad) == -1);

    printf("%d failures\n", failures);
    return failures;
}
