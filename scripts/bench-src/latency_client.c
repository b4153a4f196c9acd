/* Request/response latency over one keep-alive HTTP connection, measured per request with
 * CLOCK_MONOTONIC: `latency_client HOST PORT SECONDS` sends `GET /` again and again for
 * SECONDS and prints "LATENCY requests=N p50=US p99=US max=US". It runs on the host (the
 * bench's client); wrk's own histogram on one connection was found inconsistent with its
 * request count (docs/benchmarks.md). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reads one response (headers and a Content-Length body); -1 on error. */
static int read_response(int fd, char *buffer, size_t size, size_t *kept) {
    size_t have = *kept;
    for (;;) {
        char *end = memmem(buffer, have, "\r\n\r\n", 4);
        if (end) {
            char *length = strcasestr(buffer, "content-length:");
            size_t body = length && length < end ? strtoul(length + 15, NULL, 10) : 0;
            size_t total = (size_t)(end - buffer) + 4 + body;
            if (have >= total) {
                memmove(buffer, buffer + total, have - total);
                *kept = have - total;
                buffer[*kept] = 0;
                return 0;
            }
        }
        if (have == size) return -1;
        ssize_t got = read(fd, buffer + have, size - have);
        if (got <= 0) return -1;
        have += (size_t)got;
        buffer[have < size ? have : size - 1] = 0;
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s HOST PORT SECONDS\n", argv[0]);
        return 2;
    }
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) return 2;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&address, sizeof address)) {
        perror("connect");
        return 1;
    }
    static const char request[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
    size_t capacity = 1 << 22, count = 0, kept = 0;
    double *samples = malloc(capacity * sizeof *samples);
    static char buffer[65536];
    double end = now_us() + atof(argv[3]) * 1e6;
    while (count < capacity) {
        double start = now_us();
        if (start >= end) break;
        if (write(fd, request, sizeof request - 1) != (ssize_t)(sizeof request - 1) ||
            read_response(fd, buffer, sizeof buffer - 1, &kept)) {
            fprintf(stderr, "latency_client: the connection failed after %zu requests\n", count);
            return 1;
        }
        samples[count++] = now_us() - start;
    }
    if (count == 0) return 1;
    qsort(samples, count, sizeof *samples, compare);
    printf("LATENCY requests=%zu p50=%.0f p99=%.0f max=%.0f\n", count, samples[count / 2],
           samples[count * 99 / 100], samples[count - 1]);
    return 0;
}
