/* Reads /proc/self/maps and checks what programs look for in it: their code (r-xp, named by
 * the program), the stack, the heap, and mappings as mprotect splits them and munmap removes
 * them; access and stat on /proc files. Prints "ok NAME" or "FAIL NAME" and exits with the
 * number of failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static char maps[65536];

static void load(void) {
    int fd = open("/proc/self/maps", O_RDONLY);
    size_t total = 0;
    ssize_t got;
    while (fd >= 0 && (got = read(fd, maps + total, sizeof maps - 1 - total)) > 0) total += got;
    maps[total] = 0;
    close(fd);
}

/* The line whose range holds `address`, copied into `line`; 0 if none. */
static int line_for(unsigned long address, char *line, size_t size) {
    for (char *cursor = maps; *cursor;) {
        char *end = strchr(cursor, '\n');
        if (!end) break;
        unsigned long start, stop;
        if (sscanf(cursor, "%lx-%lx", &start, &stop) == 2 && start <= address && address < stop) {
            size_t length = (size_t)(end - cursor) < size - 1 ? (size_t)(end - cursor) : size - 1;
            memcpy(line, cursor, length);
            line[length] = 0;
            return 1;
        }
        cursor = end + 1;
    }
    return 0;
}

static int ends_with(const char *text, const char *suffix) {
    size_t a = strlen(text), b = strlen(suffix);
    return a >= b && strcmp(text + a - b, suffix) == 0;
}

int main(int argc, char **argv) {
    (void)argc;
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    char line[512], perms[8];
    int local = 0;

    void *heap_top = (void *)syscall(SYS_brk, 0);
    syscall(SYS_brk, (char *)heap_top + 65536);
    char *area = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(area + 4096, 4096, PROT_READ);
    load();

    check("the code is r-xp and named by the program",
          line_for((unsigned long)main, line, sizeof line) && sscanf(line, "%*s %7s", perms) == 1 &&
              strcmp(perms, "r-xp") == 0 && ends_with(line, name));
    check("the stack is [stack]", line_for((unsigned long)&local, line, sizeof line) && ends_with(line, "[stack]"));
    check("the grown break is [heap]",
          line_for((unsigned long)heap_top + 100, line, sizeof line) && ends_with(line, "[heap]"));
    check("an mmap'd page is rw-p",
          line_for((unsigned long)area, line, sizeof line) && sscanf(line, "%*s %7s", perms) == 1 && strcmp(perms, "rw-p") == 0);
    check("mprotect splits it: r--p in the middle",
          line_for((unsigned long)area + 4096, line, sizeof line) && sscanf(line, "%*s %7s", perms) == 1 && strcmp(perms, "r--p") == 0);
    munmap(area, 3 * 4096);
    load();
    check("munmap removes it", !line_for((unsigned long)area + 4096, line, sizeof line));
    /* As root (Pith's programs run as uid 0), Linux opens it for writing, but writes fail. */
    int writable = open("/proc/self/maps", O_WRONLY);
    check("writing it fails", writable >= 0 && write(writable, "x", 1) == -1);

    printf("%d failures\n", failures);
    mode_t before = umask(077);
    int status_fd = open("/proc/self/status", O_RDONLY);
    char status[4096] = {0};
    if (status_fd >= 0) {
        if (read(status_fd, status, sizeof status - 1) < 0) status[0] = 0;
        close(status_fd);
    }
    check("umask returns the mask before", umask(before) == 077);
    check("/proc/self/status shows the umask", strstr(status, "\nUmask:\t0077\n") != NULL);

    struct stat info;
    check("stat /proc/self/status: a regular file, read-only, size 0",
          stat("/proc/self/status", &info) == 0 && S_ISREG(info.st_mode) &&
          (info.st_mode & 0777) == 0444 && info.st_size == 0);
    check("stat /proc/meminfo", stat("/proc/meminfo", &info) == 0 && S_ISREG(info.st_mode));
    check("stat of a missing file: ENOENT",
          stat("/proc/self/no-such-file", &info) == -1 && errno == ENOENT);
    check("access R_OK", access("/proc/self/maps", R_OK) == 0 && access("/proc/meminfo", F_OK) == 0);
    check("access X_OK: EACCES", access("/proc/self/maps", X_OK) == -1 && errno == EACCES);
    check("access of a missing file: ENOENT",
          access("/no/such/file", F_OK) == -1 && errno == ENOENT);
    check("access with a bad mode: EINVAL", access("/proc/self/maps", 8) == -1 && errno == EINVAL);
    check("faccessat", faccessat(AT_FDCWD, "/proc/self/status", R_OK, 0) == 0);
    /* The lowest free descriptor is surely closed; the native side may inherit others. */
    int closed = dup(1);
    close(closed);
    check("a relative path with a bad dirfd: EBADF",
          faccessat(closed, "x", F_OK, 0) == -1 && errno == EBADF);

    /* MAP_GROWSDOWN: a touch below the area grows it (4 MiB of free space below, well clear
     * of the stack guard gap). */
    char *hole = mmap(NULL, 4 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(hole, 4 << 20);
    char *top = hole + (4 << 20) - 4096;
    char *grows = mmap(top, 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, -1, 0);
    check("mmap(MAP_GROWSDOWN)", grows == top);
    grows[-16 * 4096] = 7;
    load();
    unsigned long low = 0, high = 0;
    check("a touch 16 pages below a MAP_GROWSDOWN area grows it down to that page",
          line_for((unsigned long)grows - 16 * 4096, line, sizeof line) &&
              sscanf(line, "%lx-%lx", &low, &high) == 2 &&
              low == (unsigned long)grows - 16 * 4096 && high == (unsigned long)grows + 4096 &&
              grows[-16 * 4096] == 7);
    return failures;
}
