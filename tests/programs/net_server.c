/* An echo server for the network tests: TCP and UDP on the port argv[1] (7 if none), one
 * epoll set, edge-triggered, non-blocking sockets, as event-driven servers (nginx, redis) are
 * written. A connection whose first bytes are "QUIT" ends it: it prints what it served and
 * exits 0 (after answering "bye"). Prints "ready" once it listens. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 8192
#define BUFFER 65536

struct connection {
    char *pending;       /* read, not yet written back */
    size_t start, end;
    int first;           /* no byte seen yet */
};

static struct connection connections[MAX_FDS];
static long long served, bytes, datagrams, most_open, open_now;

static void close_connection(int fd) {
    free(connections[fd].pending);
    connections[fd].pending = 0;
    close(fd);
    open_now--;
}

/* Writes back what is pending; 0 when all of it went, 1 when the socket is full, -1 on error. */
static int flush(int fd) {
    struct connection *c = &connections[fd];
    while (c->start < c->end) {
        ssize_t n = write(fd, c->pending + c->start, c->end - c->start);
        if (n < 0) return errno == EAGAIN ? 1 : -1;
        c->start += n;
        bytes += n;
    }
    c->start = c->end = 0;
    return 0;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7;
    signal(SIGPIPE, SIG_IGN);
    /* Room for more than a thousand connections (the soft limit is 1024). */
    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max < MAX_FDS ? files.rlim_max : MAX_FDS;
    setrlimit(RLIMIT_NOFILE, &files);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 1024)) {
        perror("listen");
        return 1;
    }
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (bind(udp, (struct sockaddr *)&address, sizeof address)) {
        perror("bind udp");
        return 1;
    }
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
    event.data.fd = udp;
    event.events = EPOLLIN | EPOLLET;
    epoll_ctl(epoll, EPOLL_CTL_ADD, udp, &event);
    printf("ready\n");
    fflush(stdout);
    static char datagram[65536];
    for (;;) {
        struct epoll_event events[256];
        int count = epoll_wait(epoll, events, 256, -1);
        if (count < 0 && errno == EINTR) continue;
        if (count < 0) {
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < count; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int client;
                while ((client = accept4(listener, 0, 0, SOCK_NONBLOCK)) >= 0) {
                    if (client >= MAX_FDS) {
                        close(client);
                        continue;
                    }
                    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    connections[client] = (struct connection){malloc(BUFFER), 0, 0, 1};
                    struct epoll_event watch = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP,
                                                .data.fd = client};
                    epoll_ctl(epoll, EPOLL_CTL_ADD, client, &watch);
                    served++;
                    if (++open_now > most_open) most_open = open_now;
                }
                continue;
            }
            if (fd == udp) {
                struct sockaddr_in from;
                socklen_t len = sizeof from;
                ssize_t n;
                while ((n = recvfrom(udp, datagram, sizeof datagram, 0, (struct sockaddr *)&from, &len)) >= 0) {
                    sendto(udp, datagram, n, 0, (struct sockaddr *)&from, len);
                    datagrams++;
                    len = sizeof from;
                }
                continue;
            }
            struct connection *c = &connections[fd];
            int state = flush(fd);
            if (state < 0) {
                close_connection(fd);
                continue;
            }
            int closed = 0;
            while (state == 0) {
                ssize_t n = read(fd, c->pending, BUFFER);
                if (n == 0 || (n < 0 && errno != EAGAIN)) {
                    closed = 1;
                    break;
                }
                if (n < 0) break;
                if (c->first && n >= 4 && memcmp(c->pending, "QUIT", 4) == 0) {
                    write(fd, "bye\n", 4);
                    printf("served %lld connections (%lld at once at most), echoed %lld bytes and %lld datagrams\n",
                           served - 1, most_open, bytes, datagrams);
                    return 0;
                }
                c->first = 0;
                c->start = 0;
                c->end = n;
                state = flush(fd);
            }
            if (closed || state < 0) close_connection(fd);
        }
    }
}
