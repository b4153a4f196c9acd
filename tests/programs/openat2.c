/* openat2: the struct's size and flag checks, and each RESOLVE_* restriction, on a small tree
 * made under /tmp: D/f, D/sub/, D/rel -> f, D/up -> .., D/abs -> (D/f, absolute).
 * Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. Calls the syscall
 * directly (musl and older glibc have no wrapper). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#define RESOLVE_IN_ROOT 0x10
#define RESOLVE_CACHED 0x20

struct how {
    uint64_t flags, mode, resolve;
    uint64_t extra; /* for the larger-struct cases */
};

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static long open2(int dir, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct how how = {flags, mode, resolve, 0};
    return syscall(SYS_openat2, dir, path, &how, 24);
}

/* The call fails with `error` (and so opened nothing). */
static int fails(long result, int error) { return result == -1 && errno == error; }
/* The call opened something: close it. */
static int opens(long result) {
    if (result < 0) return 0;
    close((int)result);
    return 1;
}

int main(void) {
    /* A host whose seccomp filter hides openat2 cannot be compared with: say so, and pass. */
    struct how probe_how = {O_RDONLY | O_DIRECTORY, 0, 0, 0};
    long probe = syscall(SYS_openat2, AT_FDCWD, "/", &probe_how, 24);
    if (probe < 0 && errno == ENOSYS) {
        printf("openat2 is not available here\n");
        return 0;
    }
    close((int)probe);
    char base[] = "/tmp/openat2-XXXXXX";
    if (!mkdtemp(base)) return 99;
    char path[256], target[256];
    snprintf(path, sizeof path, "%s/f", base);
    close(open(path, O_WRONLY | O_CREAT, 0644));
    snprintf(path, sizeof path, "%s/sub", base);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/rel", base);
    symlink("f", path);
    snprintf(path, sizeof path, "%s/up", base);
    symlink("..", path);
    snprintf(path, sizeof path, "%s/abs", base);
    snprintf(target, sizeof target, "%s/f", base);
    symlink(target, path);
    int dir = open(base, O_RDONLY | O_DIRECTORY);

    /* The struct and the flags. */
    check("plain open", opens(open2(dir, "f", O_RDONLY, 0, 0)));
    struct how how = {O_RDONLY, 0, 0, 0};
    check("a struct smaller than version 0: EINVAL", fails(syscall(SYS_openat2, dir, "f", &how, 16), EINVAL));
    check("a larger struct, zero past version 0", opens(syscall(SYS_openat2, dir, "f", &how, 32)));
    how.extra = 1;
    check("a larger struct with more set: E2BIG", fails(syscall(SYS_openat2, dir, "f", &how, 32), E2BIG));
    check("an unknown open flag: EINVAL", fails(open2(dir, "f", 1ULL << 40, 0, 0), EINVAL));
    check("a mode without O_CREAT: EINVAL", fails(open2(dir, "f", O_RDONLY, 0644, 0), EINVAL));
    check("mode bits above 07777: EINVAL", fails(open2(dir, "g", O_WRONLY | O_CREAT, 010000, 0), EINVAL));
    check("an unknown resolve flag: EINVAL", fails(open2(dir, "f", O_RDONLY, 0, 0x40), EINVAL));
    check("BENEATH with IN_ROOT: EINVAL", fails(open2(dir, "f", O_RDONLY, 0, RESOLVE_BENEATH | RESOLVE_IN_ROOT), EINVAL));
    check("O_PATH with O_APPEND: EINVAL", fails(open2(dir, "f", O_PATH | O_APPEND, 0, 0), EINVAL));
    check("O_CREAT with a mode", opens(open2(dir, "made", O_WRONLY | O_CREAT, 0600, 0)));

    /* RESOLVE_BENEATH: nothing outside dir. */
    check("beneath: a file in it", opens(open2(dir, "f", O_RDONLY, 0, RESOLVE_BENEATH)));
    check("beneath: .. that stays inside", opens(open2(dir, "sub/../f", O_RDONLY, 0, RESOLVE_BENEATH)));
    check("beneath: .. above it is EXDEV", fails(open2(dir, "../f", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV));
    check("beneath: a symlink to .. is EXDEV", fails(open2(dir, "up/f", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV));
    check("beneath: an absolute symlink is EXDEV", fails(open2(dir, "abs", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV));
    check("beneath: an absolute path is EXDEV", fails(open2(dir, "/tmp", O_RDONLY, 0, RESOLVE_BENEATH), EXDEV));
    check("beneath: a relative symlink inside", opens(open2(dir, "rel", O_RDONLY, 0, RESOLVE_BENEATH)));
    check("beneath: creating inside", opens(open2(dir, "sub/new", O_WRONLY | O_CREAT, 0644, RESOLVE_BENEATH)));
    check("beneath: creating outside is EXDEV", fails(open2(dir, "../new", O_WRONLY | O_CREAT, 0644, RESOLVE_BENEATH), EXDEV));

    /* RESOLVE_IN_ROOT: dir is / for the walk. */
    check("in root: /f is dir's f", opens(open2(dir, "/f", O_RDONLY, 0, RESOLVE_IN_ROOT)));
    check("in root: .. stops at dir", opens(open2(dir, "../../f", O_RDONLY, 0, RESOLVE_IN_ROOT)));
    check("in root: a symlink to .. stays in dir", opens(open2(dir, "up/f", O_RDONLY, 0, RESOLVE_IN_ROOT)));
    check("in root: an absolute symlink starts at dir", fails(open2(dir, "abs", O_RDONLY, 0, RESOLVE_IN_ROOT), ENOENT));

    /* RESOLVE_NO_SYMLINKS. */
    check("no symlinks: a plain path", opens(open2(dir, "sub/../f", O_RDONLY, 0, RESOLVE_NO_SYMLINKS)));
    check("no symlinks: a symlink is ELOOP", fails(open2(dir, "rel", O_RDONLY, 0, RESOLVE_NO_SYMLINKS), ELOOP));
    check("no symlinks: one on the way is ELOOP", fails(open2(dir, "up/f", O_RDONLY, 0, RESOLVE_NO_SYMLINKS), ELOOP));
    check("no symlinks: O_PATH|O_NOFOLLOW opens the link itself", opens(open2(dir, "rel", O_PATH | O_NOFOLLOW, 0, RESOLVE_NO_SYMLINKS)));
    check("no symlinks: /proc/self is one", fails(open2(AT_FDCWD, "/proc/self/status", O_RDONLY, 0, RESOLVE_NO_SYMLINKS), ELOOP));

    /* RESOLVE_NO_XDEV and RESOLVE_NO_MAGICLINKS. */
    check("no xdev: within a mount", opens(open2(dir, "sub/../f", O_RDONLY, 0, RESOLVE_NO_XDEV)));
    check("no xdev: into /proc is EXDEV", fails(open2(AT_FDCWD, "/proc/self/status", O_RDONLY, 0, RESOLVE_NO_XDEV), EXDEV));
    check("no magic links: /proc/self/status", opens(open2(AT_FDCWD, "/proc/self/status", O_RDONLY, 0, RESOLVE_NO_MAGICLINKS)));
    check("no magic links: /proc/self/fd/N is ELOOP", fails(open2(AT_FDCWD, "/proc/self/fd/0", O_RDONLY, 0, RESOLVE_NO_MAGICLINKS), ELOOP));

    /* RESOLVE_CACHED. */
    check("cached: creating is EAGAIN", fails(open2(dir, "c", O_WRONLY | O_CREAT, 0644, RESOLVE_CACHED), EAGAIN));

    /* Leave nothing behind in /tmp (the native run is on the host). */
    static const char *const made[] = {"sub/new", "f", "rel", "up", "abs", "made"};
    for (unsigned i = 0; i < sizeof made / sizeof *made; i++) unlinkat(dir, made[i], 0);
    unlinkat(dir, "sub", AT_REMOVEDIR);
    rmdir(base);
    printf("%d failures\n", failures);
    return failures;
}
