/* Sockets over loopback, run on Linux and in Pith alike: TCP (connect, accept4, backlog,
 * peek, waitall, shutdown, a bulk transfer with a checksum, refused connects, resets), UDP,
 * socket options, errors, epoll (level, edge, one-shot, rdhup, nested, with pipes and
 * eventfds), eventfd, timerfd, and getaddrinfo("localhost").
 * Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

/* A listener on 127.0.0.1 at a free port; the port in *port. */
static int listener(int backlog, int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = loopback(0);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) || listen(fd, backlog)) return -1;
    socklen_t len = sizeof address;
    getsockname(fd, (struct sockaddr *)&address, &len);
    *port = ntohs(address.sin_port);
    return fd;
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = loopback(port);
    if (connect(fd, (struct sockaddr *)&address, sizeof address)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int readable_within(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1;
}

static void tcp_basics(void) {
    int port;
    int server = listener(8, &port);
    check("listen on 127.0.0.1 port 0 gets a port", server >= 0 && port > 0);
    int client = connect_to(port);
    check("connect to it", client >= 0);
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    int connection = accept4(server, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    check("accept4 takes the connection", connection >= 0);
    check("accept4's flags: O_NONBLOCK", (fcntl(connection, F_GETFL) & O_NONBLOCK) != 0);
    check("accept4's flags: FD_CLOEXEC", fcntl(connection, F_GETFD) == FD_CLOEXEC);
    struct sockaddr_in client_name;
    socklen_t client_len = sizeof client_name;
    getsockname(client, (struct sockaddr *)&client_name, &client_len);
    check("accept's address is the client's name",
          len == sizeof peer && peer.sin_port == client_name.sin_port &&
              peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    struct sockaddr_in server_side;
    len = sizeof server_side;
    check("getpeername of the client is the listener",
          getpeername(client, (struct sockaddr *)&server_side, &len) == 0 &&
              ntohs(server_side.sin_port) == port);
    struct stat status;
    check("fstat says a socket", fstat(connection, &status) == 0 && S_ISSOCK(status.st_mode));

    char buffer[64];
    check("nothing yet: EAGAIN", read(connection, buffer, sizeof buffer) == -1 && errno == EAGAIN);
    check("send", send(client, "hello", 5, 0) == 5);
    check("it arrives", readable_within(connection, 2000));
    int waiting = 0;
    check("FIONREAD counts it", ioctl(connection, FIONREAD, &waiting) == 0 && waiting == 5);
    check("MSG_PEEK sees it", recv(connection, buffer, sizeof buffer, MSG_PEEK) == 5 &&
                                  memcmp(buffer, "hello", 5) == 0);
    check("and read takes it", read(connection, buffer, sizeof buffer) == 5);
    /* MSG_WAITALL waits for both halves. */
    int flags = fcntl(connection, F_GETFL);
    fcntl(connection, F_SETFL, flags & ~O_NONBLOCK);
    send(client, "abc", 3, 0);
    send(client, "def", 3, 0);
    check("MSG_WAITALL gets all six bytes",
          recv(connection, buffer, 6, MSG_WAITALL) == 6 && memcmp(buffer, "abcdef", 6) == 0);
    /* writev gathers, readv scatters. */
    struct iovec out[2] = {{"12", 2}, {"345", 3}};
    check("writev", writev(client, out, 2) == 5);
    char first[2], second[8];
    struct iovec in[2] = {{first, 2}, {second, 8}};
    readable_within(connection, 2000);
    ssize_t got = readv(connection, in, 2);
    check("readv", got == 5 && memcmp(first, "12", 2) == 0 && memcmp(second, "345", 3) == 0);
    /* sendmsg and recvmsg. */
    struct msghdr message = {0};
    struct iovec piece = {"msg", 3};
    message.msg_iov = &piece;
    message.msg_iovlen = 1;
    check("sendmsg", sendmsg(client, &message, 0) == 3);
    char received[8];
    struct iovec into = {received, sizeof received};
    struct msghdr incoming = {0};
    incoming.msg_iov = &into;
    incoming.msg_iovlen = 1;
    check("recvmsg", recvmsg(connection, &incoming, 0) == 3 && memcmp(received, "msg", 3) == 0);

    /* Half-close: the server reads the end, and can still answer. */
    check("shutdown(SHUT_WR)", shutdown(client, SHUT_WR) == 0);
    struct pollfd hangup = {connection, POLLIN | POLLRDHUP, 0};
    check("the peer sees POLLRDHUP", poll(&hangup, 1, 2000) == 1 && (hangup.revents & POLLRDHUP));
    check("and reads the end", read(connection, buffer, sizeof buffer) == 0);
    check("it still writes", write(connection, "bye", 3) == 3);
    check("and the half-closed client reads it",
          readable_within(client, 2000) && read(client, buffer, sizeof buffer) == 3);
    check("writing after SHUT_WR is EPIPE",
          send(client, "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    close(connection);
    check("then the client reads the end", readable_within(client, 2000) && read(client, buffer, 8) == 0);
    close(client);
    close(server);
}

/* Writes and reads `total` bytes through a connection, both ends non-blocking in one loop,
 * and compares checksums. */
static void bulk_transfer(void) {
    int port;
    int server = listener(1, &port);
    int client = connect_to(port);
    int connection = accept(server, 0, 0);
    fcntl(client, F_SETFL, O_NONBLOCK);
    fcntl(connection, F_SETFL, O_NONBLOCK);
    const long total = 8 << 20;
    long sent = 0, got = 0;
    uint32_t sent_sum = 0, got_sum = 0;
    static unsigned char chunk[65536], into[65536];
    long long deadline = now_ms() + 60000;
    while (got < total && now_ms() < deadline) {
        if (sent < total) {
            long want = total - sent < (long)sizeof chunk ? total - sent : (long)sizeof chunk;
            for (long i = 0; i < want; i++) chunk[i] = (unsigned char)((sent + i) * 7 + 3);
            ssize_t n = write(client, chunk, want);
            if (n > 0) {
                for (ssize_t i = 0; i < n; i++) sent_sum = sent_sum * 31 + chunk[i];
                sent += n;
            }
        }
        ssize_t n = read(connection, into, sizeof into);
        if (n > 0) {
            for (ssize_t i = 0; i < n; i++) got_sum = got_sum * 31 + into[i];
            got += n;
        } else {
            struct pollfd wait[2] = {{connection, POLLIN, 0}, {client, POLLOUT, 0}};
            poll(wait, sent < total ? 2 : 1, 1000);
        }
    }
    check("8 MiB through a connection, checksums equal", got == total && got_sum == sent_sum);
    close(client);
    close(connection);
    close(server);
}

static void backlog_and_refusals(void) {
    int port;
    int server = listener(4, &port);
    int clients[3];
    for (int i = 0; i < 3; i++) clients[i] = connect_to(port);
    check("three connects before any accept", clients[0] >= 0 && clients[1] >= 0 && clients[2] >= 0);
    int accepted = 0;
    for (int i = 0; i < 3; i++) {
        int fd = accept(server, 0, 0);
        if (fd >= 0) accepted++;
        close(fd);
    }
    check("all three are accepted", accepted == 3);
    for (int i = 0; i < 3; i++) close(clients[i]);
    close(server);

    /* A port nobody listens on. */
    check("blocking connect to a closed port: ECONNREFUSED",
          connect_to(port) == -1 && errno == ECONNREFUSED);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in address = loopback(port);
    int result = connect(fd, (struct sockaddr *)&address, sizeof address);
    int error = 0;
    if (result == -1 && errno == EINPROGRESS) {
        struct pollfd p = {fd, POLLOUT, 0};
        poll(&p, 1, 2000);
        socklen_t len = sizeof error;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    } else if (result == -1) {
        error = errno;
    }
    check("non-blocking connect to a closed port: ECONNREFUSED", error == ECONNREFUSED);
    close(fd);

    /* A non-blocking connect that works: EINPROGRESS or at once, then writable. */
    server = listener(4, &port);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    address = loopback(port);
    result = connect(fd, (struct sockaddr *)&address, sizeof address);
    struct pollfd p = {fd, POLLOUT, 0};
    error = -1;
    if (result == 0 || errno == EINPROGRESS) {
        poll(&p, 1, 2000);
        socklen_t len = sizeof error;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    }
    check("non-blocking connect completes: POLLOUT, SO_ERROR 0", (p.revents & POLLOUT) && error == 0);
    /* A reset: the server closes with data unread. */
    int connection = accept(server, 0, 0);
    send(fd, "unread", 6, 0);
    usleep(100000);
    close(connection);
    signal(SIGPIPE, SIG_IGN);
    int failed = 0;
    for (int i = 0; i < 50 && !failed; i++) {
        if (send(fd, "x", 1, MSG_NOSIGNAL) == -1) failed = errno;
        usleep(20000);
    }
    check("writing to a reset connection fails: ECONNRESET or EPIPE",
          failed == ECONNRESET || failed == EPIPE);
    close(fd);
    close(server);
}

static void udp(void) {
    int a = socket(AF_INET, SOCK_DGRAM, 0);
    int b = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in address = loopback(0);
    bind(a, (struct sockaddr *)&address, sizeof address);
    socklen_t len = sizeof address;
    getsockname(a, (struct sockaddr *)&address, &len);
    check("UDP bind gets a port", address.sin_port != 0);
    check("sendto", sendto(b, "datagram", 8, 0, (struct sockaddr *)&address, sizeof address) == 8);
    char buffer[64];
    struct sockaddr_in from;
    socklen_t from_len = sizeof from;
    check("recvfrom", readable_within(a, 2000) &&
                          recvfrom(a, buffer, sizeof buffer, 0, (struct sockaddr *)&from, &from_len) == 8 &&
                          memcmp(buffer, "datagram", 8) == 0);
    struct sockaddr_in b_name;
    len = sizeof b_name;
    getsockname(b, (struct sockaddr *)&b_name, &len);
    check("recvfrom says the sender", from.sin_port == b_name.sin_port && b_name.sin_port != 0);
    sendto(b, "0123456789", 10, 0, (struct sockaddr *)&address, sizeof address);
    readable_within(a, 2000);
    check("a short buffer cuts the datagram; MSG_TRUNC says its length",
          recv(a, buffer, 4, MSG_TRUNC) == 10);
    check("and the rest is gone", recv(a, buffer, sizeof buffer, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    check("connect sets the peer", connect(b, (struct sockaddr *)&address, sizeof address) == 0);
    check("send on a connected datagram socket", send(b, "c", 1, 0) == 1);
    check("arrives", readable_within(a, 2000) && recv(a, buffer, sizeof buffer, 0) == 1);
    struct sockaddr_in other = loopback(9);
    check("sendto without an address on an unconnected one: EDESTADDRREQ",
          send(a, "x", 1, 0) == -1 && errno == EDESTADDRREQ);
    (void)other;
    close(a);
    close(b);
}

static void options_and_errors(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int value = 1, out = 0;
    socklen_t len = sizeof out;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &value, sizeof value);
    check("SO_REUSEADDR reads back", getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &out, &len) == 0 && out == 1);
    len = sizeof out;
    check("SO_TYPE", getsockopt(fd, SOL_SOCKET, SO_TYPE, &out, &len) == 0 && out == SOCK_STREAM);
    value = 65536;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, sizeof value);
    len = sizeof out;
    check("SO_RCVBUF doubles as Linux's", getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &out, &len) == 0 && out == 131072);
    value = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, sizeof value);
    len = sizeof out;
    check("TCP_NODELAY reads back", getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &out, &len) == 0 && out == 1);
    len = sizeof out;
    check("SO_ERROR is 0", getsockopt(fd, SOL_SOCKET, SO_ERROR, &out, &len) == 0 && out == 0);
    struct linger linger = {1, 0};
    check("SO_LINGER", setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger) == 0);
    check("an unknown option: ENOPROTOOPT",
          setsockopt(fd, SOL_SOCKET, 12345, &value, sizeof value) == -1 && errno == ENOPROTOOPT);
    char buffer[8];
    check("recv on an unconnected socket: ENOTCONN", recv(fd, buffer, 8, 0) == -1 && errno == ENOTCONN);
    struct sockaddr_in address;
    len = sizeof address;
    check("getpeername unconnected: ENOTCONN",
          getpeername(fd, (struct sockaddr *)&address, &len) == -1 && errno == ENOTCONN);
    check("accept on a socket not listening: EINVAL", accept(fd, 0, 0) == -1 && errno == EINVAL);
    address = loopback(0);
    address.sin_addr.s_addr = inet_addr("192.0.2.1");
    check("bind to an address not ours: EADDRNOTAVAIL",
          bind(fd, (struct sockaddr *)&address, sizeof address) == -1 && errno == EADDRNOTAVAIL);
    int port;
    int server = listener(1, &port);
    address = loopback(port);
    check("bind to a port in use: EADDRINUSE",
          bind(fd, (struct sockaddr *)&address, sizeof address) == -1 && errno == EADDRINUSE);
    address = loopback(0);
    check("bind", bind(fd, (struct sockaddr *)&address, sizeof address) == 0);
    check("bind again: EINVAL", bind(fd, (struct sockaddr *)&address, sizeof address) == -1 && errno == EINVAL);
    close(fd);
    close(server);
    int datagram = socket(AF_INET, SOCK_DGRAM, 0);
    check("listen on UDP: EOPNOTSUPP", listen(datagram, 1) == -1 && errno == EOPNOTSUPP);
    close(datagram);
    check("a socket type that is not one: EINVAL", socket(AF_INET, 99, 0) == -1 && errno == EINVAL);
    check("TCP over SOCK_DGRAM: EPROTONOSUPPORT",
          socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP) == -1 && errno == EPROTONOSUPPORT);
    check("a socket call on a pipe: ENOTSOCK", ({
              int pipe_fds[2];
              pipe(pipe_fds);
              int r = listen(pipe_fds[0], 1) == -1 && errno == ENOTSOCK;
              close(pipe_fds[0]);
              close(pipe_fds[1]);
              r;
          }));

    /* SO_RCVTIMEO: a receive gives up with EAGAIN. */
    server = listener(1, &port);
    int client = connect_to(port);
    struct timeval timeout = {0, 150000};
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    long long start = now_ms();
    int timed_out = recv(client, buffer, sizeof buffer, 0) == -1 && errno == EAGAIN;
    check("SO_RCVTIMEO ends a receive with EAGAIN", timed_out && now_ms() - start >= 100);
    close(client);
    close(server);
}

static void epoll_checks(void) {
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    check("epoll_create1", epoll >= 0 && fcntl(epoll, F_GETFD) == FD_CLOEXEC);
    int port;
    int server = listener(4, &port);
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = 1};
    check("watch the listener", epoll_ctl(epoll, EPOLL_CTL_ADD, server, &event) == 0);
    check("add twice: EEXIST", epoll_ctl(epoll, EPOLL_CTL_ADD, server, &event) == -1 && errno == EEXIST);
    check("watch itself: EINVAL", epoll_ctl(epoll, EPOLL_CTL_ADD, epoll, &event) == -1 && errno == EINVAL);
    int file = open("/proc/self/exe", O_RDONLY);
    check("a regular file: EPERM", epoll_ctl(epoll, EPOLL_CTL_ADD, file, &event) == -1 && errno == EPERM);
    close(file);
    struct epoll_event events[8];
    check("nothing ready yet", epoll_wait(epoll, events, 8, 0) == 0);
    int client = connect_to(port);
    check("a connection makes the listener ready",
          epoll_wait(epoll, events, 8, 2000) == 1 && events[0].data.u64 == 1 && (events[0].events & EPOLLIN));
    int connection = accept4(server, 0, 0, SOCK_NONBLOCK);
    check("level-triggered: ready while it is", epoll_wait(epoll, events, 8, 0) == 0);

    event.events = EPOLLIN | EPOLLET | EPOLLRDHUP;
    event.data.u64 = 2;
    epoll_ctl(epoll, EPOLL_CTL_ADD, connection, &event);
    send(client, "one", 3, 0);
    check("edge-triggered: data is an event",
          epoll_wait(epoll, events, 8, 2000) == 1 && events[0].data.u64 == 2);
    check("and not again while nothing new comes", epoll_wait(epoll, events, 8, 50) == 0);
    send(client, "two", 3, 0);
    check("more data is a new event, undrained as it is",
          epoll_wait(epoll, events, 8, 2000) == 1 && events[0].data.u64 == 2);
    char buffer[16];
    while (read(connection, buffer, sizeof buffer) > 0) {
    }
    check("drained to EAGAIN", errno == EAGAIN);
    send(client, "three", 5, 0);
    check("then data is an event again", epoll_wait(epoll, events, 8, 2000) == 1);
    read(connection, buffer, sizeof buffer);
    shutdown(client, SHUT_WR);
    int n = epoll_wait(epoll, events, 8, 2000);
    check("the peer's shutdown: EPOLLRDHUP", n == 1 && (events[0].events & EPOLLRDHUP));

    event.events = EPOLLIN | EPOLLONESHOT;
    event.data.u64 = 3;
    int pipe_fds[2];
    pipe(pipe_fds);
    epoll_ctl(epoll, EPOLL_CTL_ADD, pipe_fds[0], &event);
    write(pipe_fds[1], "p", 1);
    int got = epoll_wait(epoll, events, 8, 2000);
    int pipe_seen = 0;
    for (int i = 0; i < got; i++) pipe_seen += events[i].data.u64 == 3;
    check("a pipe in the same set", pipe_seen == 1);
    got = epoll_wait(epoll, events, 8, 0);
    pipe_seen = 0;
    for (int i = 0; i < got; i++) pipe_seen += events[i].data.u64 == 3;
    check("EPOLLONESHOT: once", pipe_seen == 0);
    check("until EPOLL_CTL_MOD", epoll_ctl(epoll, EPOLL_CTL_MOD, pipe_fds[0], &event) == 0);
    got = epoll_wait(epoll, events, 8, 0);
    pipe_seen = 0;
    for (int i = 0; i < got; i++) pipe_seen += events[i].data.u64 == 3;
    check("which arms it again", pipe_seen == 1);
    check("EPOLL_CTL_DEL", epoll_ctl(epoll, EPOLL_CTL_DEL, pipe_fds[0], 0) == 0);
    check("DEL again: ENOENT", epoll_ctl(epoll, EPOLL_CTL_DEL, pipe_fds[0], 0) == -1 && errno == ENOENT);

    int counter = eventfd(0, EFD_NONBLOCK);
    event.events = EPOLLIN;
    event.data.u64 = 4;
    epoll_ctl(epoll, EPOLL_CTL_ADD, counter, &event);
    int outer = epoll_create1(0);
    struct epoll_event nested = {.events = EPOLLIN, .data.u64 = 9};
    epoll_ctl(outer, EPOLL_CTL_ADD, epoll, &nested);
    epoll_ctl(epoll, EPOLL_CTL_DEL, connection, 0);
    check("nothing ready in the nested set", epoll_wait(outer, events, 8, 0) == 0);
    uint64_t one = 1;
    write(counter, &one, sizeof one);
    check("an eventfd's write wakes a nested epoll",
          epoll_wait(outer, events, 8, 2000) == 1 && events[0].data.u64 == 9);
    check("and the inner one says which",
          epoll_wait(epoll, events, 8, 0) == 1 && events[0].data.u64 == 4);
    close(outer);
    close(counter);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    close(connection);
    close(client);
    close(server);
    close(epoll);
}

static void eventfd_checks(void) {
    int fd = eventfd(3, EFD_NONBLOCK);
    uint64_t value = 4;
    write(fd, &value, sizeof value);
    check("eventfd reads the sum", read(fd, &value, sizeof value) == 8 && value == 7);
    check("then EAGAIN", read(fd, &value, sizeof value) == -1 && errno == EAGAIN);
    value = UINT64_MAX;
    check("writing 2^64-1: EINVAL", write(fd, &value, sizeof value) == -1 && errno == EINVAL);
    uint32_t small;
    check("a 4-byte read: EINVAL", read(fd, &small, sizeof small) == -1 && errno == EINVAL);
    close(fd);
    fd = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    int ones = 0;
    while (read(fd, &value, sizeof value) == 8 && value == 1) ones++;
    check("EFD_SEMAPHORE reads one at a time", ones == 2);
    close(fd);
}

static void timerfd_checks(void) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    check("timerfd_create", fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC);
    uint64_t count = 0;
    check("a disarmed timerfd: EAGAIN", read(fd, &count, sizeof count) == -1 && errno == EAGAIN);
    struct itimerspec setting = {{0, 20000000}, {0, 50000000}}, now;
    check("timerfd_settime", timerfd_settime(fd, 0, &setting, 0) == 0);
    check("timerfd_gettime: the interval, and time left",
          timerfd_gettime(fd, &now) == 0 && now.it_interval.tv_nsec == 20000000 &&
              now.it_value.tv_sec == 0 && now.it_value.tv_nsec > 0 && now.it_value.tv_nsec <= 50000000);
    struct pollfd p = {fd, POLLIN, 0};
    check("poll sees it expire", poll(&p, 1, 2000) == 1 && (p.revents & POLLIN));
    usleep(100000);
    check("read counts the expirations (first, then every 20 ms)",
          read(fd, &count, sizeof count) == 8 && count >= 2);
    check("a 4-byte read: EINVAL", read(fd, &count, 4) == -1 && errno == EINVAL);
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN | EPOLLET, .data.u64 = 5};
    epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
    struct epoll_event events[2];
    check("epoll: the next expiration", epoll_wait(epoll, events, 2, 2000) == 1 && events[0].data.u64 == 5);
    read(fd, &count, sizeof count);
    check("epoll, edge-triggered: after a read, the next expiration is an event again",
          epoll_wait(epoll, events, 2, 2000) == 1);
    close(epoll);
    struct itimerspec off = {{0, 0}, {0, 0}}, old;
    check("disarming returns the old setting",
          timerfd_settime(fd, 0, &off, &old) == 0 && old.it_interval.tv_nsec == 20000000);
    check("disarmed: gettime says 0", timerfd_gettime(fd, &now) == 0 && now.it_value.tv_sec == 0 &&
                                          now.it_value.tv_nsec == 0);
    struct itimerspec bad = {{0, 0}, {0, 1000000000}};
    check("tv_nsec of a second: EINVAL", timerfd_settime(fd, 0, &bad, 0) == -1 && errno == EINVAL);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    struct itimerspec absolute = {{0, 0}, start};
    read(fd, &count, sizeof count);
    check("TFD_TIMER_ABSTIME in the past expires at once",
          timerfd_settime(fd, TFD_TIMER_ABSTIME, &absolute, 0) == 0 &&
              read(fd, &count, sizeof count) == 8 && count == 1);
    close(fd);
    check("a clock that is not one: EINVAL", timerfd_create(12345, 0) == -1 && errno == EINVAL);
}

static void names(void) {
    struct addrinfo hints = {0}, *result = 0;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int status = getaddrinfo("localhost", "80", &hints, &result);
    int found = 0;
    for (struct addrinfo *entry = result; status == 0 && entry; entry = entry->ai_next) {
        struct sockaddr_in *address = (struct sockaddr_in *)entry->ai_addr;
        if (address->sin_addr.s_addr == htonl(INADDR_LOOPBACK) && ntohs(address->sin_port) == 80) found = 1;
    }
    check("getaddrinfo(\"localhost\") is 127.0.0.1", found);
    if (result) freeaddrinfo(result);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    tcp_basics();
    bulk_transfer();
    backlog_and_refusals();
    udp();
    options_and_errors();
    epoll_checks();
    eventfd_checks();
    timerfd_checks();
    names();
    return failures;
}
