/* fcntl record locks and flock between open file descriptions of one process: OFD locks
 * conflict with other descriptions' and with the process's POSIX locks; POSIX locks go when
 * any fd of the file closes, OFD locks with their description; F_OFD_SETLKW waits for a
 * thread to unlock. Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static int lock(int fd, int command, short type, short whence, off_t start, off_t length) {
    struct flock request;
    memset(&request, 0, sizeof request);
    request.l_type = type;
    request.l_whence = whence;
    request.l_start = start;
    request.l_len = length;
    return fcntl(fd, command, &request);
}

/* F_(OFD_)GETLK: the conflicting lock, or l_type F_UNLCK. */
static struct flock probe(int fd, int command, short type, off_t start, off_t length) {
    struct flock request;
    memset(&request, 0, sizeof request);
    request.l_type = type;
    request.l_whence = SEEK_SET;
    request.l_start = start;
    request.l_len = length;
    if (fcntl(fd, command, &request) != 0) request.l_type = -1;
    return request;
}

static int holder;
static void *unlock_later(void *unused) {
    (void)unused;
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, 0);
    lock(holder, F_OFD_SETLK, F_UNLCK, SEEK_SET, 0, 0);
    return 0;
}

int main(void) {
    char path[] = "/tmp/locks-XXXXXX";
    int fd1 = mkstemp(path);
    if (fd1 < 0) return 99;
    if (write(fd1, "0123456789", 10) != 10) return 99;
    int fd2 = open(path, O_RDWR);
    int fd3 = dup(fd1);

    check("OFD write lock", lock(fd1, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 100) == 0);
    check("another description: EAGAIN", lock(fd2, F_OFD_SETLK, F_WRLCK, SEEK_SET, 50, 10) == -1 && errno == EAGAIN);
    struct flock seen = probe(fd2, F_OFD_GETLK, F_RDLCK, 50, 10);
    check("F_OFD_GETLK reports it", seen.l_type == F_WRLCK && seen.l_whence == SEEK_SET && seen.l_start == 0 && seen.l_len == 100 && seen.l_pid == -1);
    check("the same description (a dup) shares it", lock(fd3, F_OFD_SETLK, F_RDLCK, SEEK_SET, 0, 100) == 0);
    check("a POSIX lock conflicts with the OFD lock", lock(fd2, F_SETLK, F_WRLCK, SEEK_SET, 0, 10) == -1 && errno == EAGAIN);
    check("a POSIX lock beside it", lock(fd1, F_SETLK, F_WRLCK, SEEK_SET, 200, 100) == 0);
    check("the process's own POSIX lock is no conflict", probe(fd2, F_GETLK, F_WRLCK, 200, 100).l_type == F_UNLCK);
    seen = probe(fd2, F_OFD_GETLK, F_RDLCK, 250, 10);
    check("F_OFD_GETLK reports the POSIX lock with the pid", seen.l_type == F_WRLCK && seen.l_start == 200 && seen.l_len == 100 && seen.l_pid == getpid());
    close(fd3);
    check("closing any fd drops the POSIX locks", probe(fd2, F_OFD_GETLK, F_WRLCK, 250, 10).l_type == F_UNLCK);
    check("but not the description's OFD lock", lock(fd2, F_OFD_SETLK, F_WRLCK, SEEK_SET, 50, 10) == -1 && errno == EAGAIN);

    check("unlocking the middle splits the lock", lock(fd1, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 100) == 0 && lock(fd1, F_OFD_SETLK, F_UNLCK, SEEK_SET, 40, 20) == 0);
    seen = probe(fd2, F_OFD_GETLK, F_WRLCK, 0, 100);
    check("the first piece is reported", seen.l_type == F_WRLCK && seen.l_start == 0 && seen.l_len == 40);
    check("the hole is free", lock(fd2, F_OFD_SETLK, F_WRLCK, SEEK_SET, 40, 20) == 0 && lock(fd2, F_OFD_SETLK, F_UNLCK, SEEK_SET, 40, 20) == 0);
    check("SEEK_END with a negative length", lock(fd1, F_OFD_SETLK, F_WRLCK, SEEK_END, 0, -5) == 0);
    seen = probe(fd2, F_OFD_GETLK, F_WRLCK, 5, 5);
    check("locks the last bytes", seen.l_type == F_WRLCK && seen.l_start == 0 && seen.l_len == 40);
    seen = probe(fd2, F_OFD_GETLK, F_WRLCK, 7, 1);
    check("the range before it is the first piece", seen.l_type == F_WRLCK && seen.l_start == 0);
    check("a start before 0: EINVAL", lock(fd1, F_OFD_SETLK, F_WRLCK, SEEK_SET, -1, 10) == -1 && errno == EINVAL);
    struct flock with_pid = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1, .l_pid = 7};
    check("F_OFD_SETLK with l_pid set: EINVAL", fcntl(fd1, F_OFD_SETLK, &with_pid) == -1 && errno == EINVAL);

    /* F_OFD_SETLKW waits for another thread to unlock. */
    lock(fd1, F_OFD_SETLK, F_UNLCK, SEEK_SET, 0, 0);
    check("lock the whole file", lock(fd1, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 0) == 0);
    holder = fd1;
    pthread_t thread;
    pthread_create(&thread, 0, unlock_later, 0);
    check("F_OFD_SETLKW waits, then takes it", lock(fd2, F_OFD_SETLKW, F_WRLCK, SEEK_SET, 0, 0) == 0);
    pthread_join(thread, 0);
    check("and fd1's description cannot now", lock(fd1, F_OFD_SETLK, F_RDLCK, SEEK_SET, 0, 1) == -1 && errno == EAGAIN);
    close(fd2);
    check("closing the last fd of a description drops its locks", lock(fd1, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 0) == 0);

    /* flock: per description too. */
    int fa = open(path, O_RDONLY), fb = open(path, O_RDONLY);
    check("flock LOCK_EX", flock(fa, LOCK_EX) == 0);
    check("another description: EWOULDBLOCK", flock(fb, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK);
    close(fa);
    check("after close it is free", flock(fb, LOCK_EX | LOCK_NB) == 0);
    unlink(path);
    printf("%d failures\n", failures);
    return failures;
}
