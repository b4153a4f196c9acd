/* Fills a volume until ENOSPC, then deletes and writes again: the disk-full path. Prints one
 * line per check; the test also runs e2fsck on the volume afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int failures;
static void check(const char *what, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failures++;
}

static char chunk[64 * 1024];

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/data";
    char path[256], again[256];
    snprintf(path, sizeof path, "%s/fill", dir);
    snprintf(again, sizeof again, "%s/again", dir);
    memset(chunk, 'x', sizeof chunk);

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    check("create the filler", fd >= 0);
    long long total = 0;
    ssize_t wrote;
    int last_errno = 0;
    /* Bounded: a 32 MiB volume fills long before 1 GiB. */
    while (total < (1LL << 30)) {
        wrote = write(fd, chunk, sizeof chunk);
        if (wrote < 0) {
            last_errno = errno;
            break;
        }
        total += wrote;
    }
    check("writing stops with ENOSPC", last_errno == ENOSPC);
    check("after most of the volume was written", total > 8 * 1024 * 1024);
    struct stat status;
    check("the file's size is what was written", fstat(fd, &status) == 0 && status.st_size == total);
    check("fsync of the full volume works", fsync(fd) == 0);
    struct statvfs full;
    check("statvfs: little room left", statvfs(dir, &full) == 0 && full.f_bavail * full.f_frsize < sizeof chunk * 4);
    int small = open(again, O_WRONLY | O_CREAT, 0644);
    ssize_t more = small >= 0 ? write(small, chunk, sizeof chunk) : -1;
    check("another file cannot grow either: ENOSPC", more < 0 && errno == ENOSPC);
    if (small >= 0) close(small);
    close(fd);

    check("the filler can be deleted", unlink(path) == 0);
    struct statvfs freed;
    check("and its blocks come back", statvfs(dir, &freed) == 0 && freed.f_bfree > full.f_bfree + (unsigned long)(total / freed.f_frsize) / 2);
    fd = open(again, O_WRONLY | O_TRUNC);
    long long rewritten = 0;
    while (fd >= 0 && rewritten < 4 * 1024 * 1024) {
        if (write(fd, chunk, sizeof chunk) != sizeof chunk) break;
        rewritten += sizeof chunk;
    }
    check("then 4 MiB write again", rewritten == 4 * 1024 * 1024);
    check("and fsync", fd >= 0 && fsync(fd) == 0);
    close(fd);
    printf("%d failures\n", failures);
    return failures != 0;
}
