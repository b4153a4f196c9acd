/* Crash consistency on a volume. "write": append numbered 64-byte records to /data/log, each
 * followed by fsync, printing "synced N" after each fsync returns, forever (the test kills the
 * VM). "write-dsync": the same through a file opened O_DSYNC, without fsync: each write is
 * durable when it returns. "check": read the log back and print how many whole records there are, whether every
 * one is intact and in order, and whether anything after them is a torn partial record. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RECORD 64

static void make_record(char *record, long number) {
    memset(record, '.', RECORD);
    int length = snprintf(record, RECORD, "record %08ld checksum %08lx", number,
                          (unsigned long)(number * 2654435761u) & 0xffffffff);
    record[length] = '.';
    record[RECORD - 1] = '\n';
}

int main(int argc, char **argv) {
    char record[RECORD], read_back[RECORD];
    int dsync = argc > 1 && strcmp(argv[1], "write-dsync") == 0;
    if (argc > 1 && (strcmp(argv[1], "write") == 0 || dsync)) {
        int fd = open("/data/log", O_CREAT | O_WRONLY | O_APPEND | (dsync ? O_DSYNC : 0), 0644);
        setvbuf(stdout, NULL, _IONBF, 0);
        for (long number = 0;; number++) {
            make_record(record, number);
            if (write(fd, record, RECORD) != RECORD || (!dsync && fsync(fd) != 0)) {
                printf("write or fsync failed at %ld\n", number);
                return 1;
            }
            printf("synced %ld\n", number);
        }
    }
    int fd = open("/data/log", O_RDONLY);
    long whole = 0, bad = 0;
    ssize_t got;
    while ((got = read(fd, read_back, RECORD)) == RECORD) {
        make_record(record, whole);
        if (memcmp(record, read_back, RECORD) != 0) bad++;
        whole++;
    }
    printf("records %ld bad %ld tail %zd\n", whole, bad, got < 0 ? -1 : got);
    return 0;
}
