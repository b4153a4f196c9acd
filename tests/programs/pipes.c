/* Pipes between threads: 1 MiB through a pipe intact, PIPE_BUF-sized writes from 4 threads
 * never interleaved, end of file once the write end closes, EPIPE (SIGPIPE ignored) once the
 * read end closes, O_NONBLOCK's EAGAIN, poll, FIONREAD and F_GETPIPE_SZ.
 * Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static int bulk[2];
static void *produce(void *unused) {
    (void)unused;
    unsigned char chunk[1000];
    for (int i = 0; i < 1049; i++) {
        for (int j = 0; j < 1000; j++) chunk[j] = (unsigned char)(i * 7 + j);
        size_t done = 0;
        while (done < sizeof chunk) {
            ssize_t wrote = write(bulk[1], chunk + done, sizeof chunk - done);
            if (wrote <= 0) return NULL;
            done += wrote;
        }
    }
    close(bulk[1]);
    return NULL;
}

static int records[2];
static void *write_records(void *argument) {
    char record[4096];
    memset(record, 'a' + (int)(long)argument, sizeof record);
    for (int i = 0; i < 32; i++)
        if (write(records[1], record, sizeof record) != sizeof record) return NULL;
    return NULL;
}

int main(void) {
    check("pipe", pipe(bulk) == 0);
    pthread_t producer;
    pthread_create(&producer, NULL, produce, NULL);
    unsigned char buffer[8192];
    long total = 0, bad = 0;
    ssize_t got;
    while ((got = read(bulk[0], buffer, sizeof buffer)) > 0) {
        for (ssize_t k = 0; k < got; k++) {
            long at = total + k;
            if (buffer[k] != (unsigned char)((at / 1000) * 7 + at % 1000)) bad++;
        }
        total += got;
    }
    pthread_join(producer, NULL);
    check("1,049,000 bytes through a pipe from another thread, in order", total == 1049000 && bad == 0);
    check("then end of file", got == 0);
    close(bulk[0]);

    check("pipe2", pipe2(records, O_CLOEXEC) == 0);
    pthread_t writers[4];
    for (long i = 0; i < 4; i++) pthread_create(&writers[i], NULL, write_records, (void *)i);
    long whole = 0, mixed = 0;
    for (int n = 0; n < 128; n++) {
        char record[4096];
        size_t done = 0;
        while (done < sizeof record) {
            ssize_t part = read(records[0], record + done, sizeof record - done);
            if (part <= 0) break;
            done += part;
        }
        int same = 1;
        for (size_t k = 1; k < sizeof record; k++) same &= record[k] == record[0];
        if (same) whole++; else mixed++;
    }
    for (int i = 0; i < 4; i++) pthread_join(writers[i], NULL);
    check("PIPE_BUF writes from 4 threads arrive whole", whole == 128 && mixed == 0);
    check("FD_CLOEXEC from pipe2", fcntl(records[0], F_GETFD) == FD_CLOEXEC);

    int ends[2];
    pipe2(ends, O_NONBLOCK);
    check("O_NONBLOCK: an empty pipe is EAGAIN", read(ends[0], buffer, 1) == -1 && errno == EAGAIN);
    struct pollfd both[2] = {{ends[0], POLLIN, 0}, {ends[1], POLLOUT, 0}};
    check("poll: the write end is writable, the read end not yet readable",
          poll(both, 2, 0) == 1 && both[1].revents == POLLOUT && both[0].revents == 0);
    write(ends[1], "abc", 3);
    int waiting = 0;
    check("FIONREAD", ioctl(ends[0], FIONREAD, &waiting) == 0 && waiting == 3);
    check("poll: now readable", poll(both, 1, 0) == 1 && both[0].revents == POLLIN);
    check("F_GETPIPE_SZ: 64 KiB", fcntl(ends[0], F_GETPIPE_SZ) == 65536);
    struct stat info;
    check("a pipe is a fifo", fstat(ends[0], &info) == 0 && S_ISFIFO(info.st_mode));
    check("lseek on a pipe: ESPIPE", lseek(ends[0], 0, SEEK_SET) == -1 && errno == ESPIPE);
    close(ends[1]);
    check("poll after the writer closed: POLLIN and POLLHUP",
          poll(both, 1, 0) == 1 && both[0].revents == (POLLIN | POLLHUP));
    check("the rest, then end of file", read(ends[0], buffer, 10) == 3 && read(ends[0], buffer, 10) == 0);
    close(ends[0]);

    signal(SIGPIPE, SIG_IGN);
    pipe(ends);
    close(ends[0]);
    check("no reader: EPIPE", write(ends[1], "x", 1) == -1 && errno == EPIPE);
    close(ends[1]);
    return failures;
}
