/* AF_UNIX sockets, run on Linux and in Pith alike: socketpair (stream, datagram,
 * seqpacket), names (paths, abstract, autobind), listen/connect/accept with a backlog,
 * end of file, EPIPE and ECONNRESET, SCM_RIGHTS (pipes, files that share an offset, sockets,
 * MSG_CTRUNC, MSG_CMSG_CLOEXEC), SCM_CREDENTIALS, SO_PEERCRED, readiness with poll and
 * epoll (edge-triggered), blocking calls woken by another thread, sendfile to a socket.
 * Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static char directory[64];

/* A sockaddr_un for `path` under this run's directory; its length in *len. */
static struct sockaddr_un path_name(const char *path, socklen_t *len) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof address.sun_path, "%s/%s", directory, path);
    *len = offsetof(struct sockaddr_un, sun_path) + strlen(address.sun_path) + 1;
    return address;
}

static struct sockaddr_un abstract_name(const char *name, socklen_t *len) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    int n = snprintf(address.sun_path + 1, sizeof address.sun_path - 1, "pith-%d-%s",
                     (int)getpid(), name);
    *len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
    return address;
}

static int readable_within(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* Sends `data` with the fds `fds[0..count]` attached. */
static ssize_t send_fds(int socket, const char *data, size_t len, const int *fds, int count) {
    char control[CMSG_SPACE(sizeof(int) * 8)] = {0};
    struct iovec piece = {(void *)data, len};
    struct msghdr message = {.msg_iov = &piece, .msg_iovlen = 1};
    if (count > 0) {
        message.msg_control = control;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * count);
    }
    return sendmsg(socket, &message, 0);
}

/* Receives into `buffer` and up to `room` fds (a control buffer that has room for that
 * many); the fds in fds[], their count in *count, the message flags in *flags. */
static ssize_t receive_fds(int socket, char *buffer, size_t len, int *fds, int room, int *count,
                           int *flags, int receive_flags) {
    char control[CMSG_SPACE(sizeof(int) * 8)];
    struct iovec piece = {buffer, len};
    struct msghdr message = {.msg_iov = &piece, .msg_iovlen = 1};
    message.msg_control = control;
    message.msg_controllen = room > 0 ? CMSG_LEN(sizeof(int) * room) : 0;
    ssize_t got = recvmsg(socket, &message, receive_flags);
    *count = 0;
    *flags = message.msg_flags;
    if (got < 0) return got;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header;
         header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
            int n = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds + *count, CMSG_DATA(header), sizeof(int) * n);
            *count += n;
        }
    }
    return got;
}

static void pairs(void) {
    int pair[2];
    check("socketpair(AF_UNIX, SOCK_STREAM)", socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
    char buffer[64];
    check("write one way", write(pair[0], "ping", 4) == 4);
    check("read it", read(pair[1], buffer, sizeof buffer) == 4 && memcmp(buffer, "ping", 4) == 0);
    check("and back", write(pair[1], "pong", 4) == 4 &&
                          read(pair[0], buffer, sizeof buffer) == 4 &&
                          memcmp(buffer, "pong", 4) == 0);
    int value = 0;
    socklen_t len = sizeof value;
    check("SO_TYPE", getsockopt(pair[0], SOL_SOCKET, SO_TYPE, &value, &len) == 0 &&
                         value == SOCK_STREAM);
    len = sizeof value;
    check("SO_DOMAIN", getsockopt(pair[0], SOL_SOCKET, SO_DOMAIN, &value, &len) == 0 &&
                           value == AF_UNIX);
    struct ucred credentials;
    len = sizeof credentials;
    check("SO_PEERCRED is this process",
          getsockopt(pair[0], SOL_SOCKET, SO_PEERCRED, &credentials, &len) == 0 &&
              len == sizeof credentials && credentials.pid == getpid() &&
              credentials.uid == getuid() && credentials.gid == getgid());
    struct sockaddr_un name;
    len = sizeof name;
    check("a pair's ends are unnamed",
          getpeername(pair[0], (struct sockaddr *)&name, &len) == 0 &&
              len == sizeof(sa_family_t) && name.sun_family == AF_UNIX);
    struct stat status;
    check("fstat says a socket", fstat(pair[0], &status) == 0 && S_ISSOCK(status.st_mode));
    check("no data: EAGAIN under MSG_DONTWAIT",
          recv(pair[0], buffer, sizeof buffer, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    write(pair[0], "peek", 4);
    check("MSG_PEEK leaves the data", recv(pair[1], buffer, sizeof buffer, MSG_PEEK) == 4 &&
                                          read(pair[1], buffer, sizeof buffer) == 4);
    write(pair[0], "abc", 3);
    write(pair[0], "defgh", 5);
    int waiting = 0;
    check("FIONREAD counts a stream's bytes", ioctl(pair[1], FIONREAD, &waiting) == 0 &&
                                                   waiting == 8);
    check("a stream joins writes", read(pair[1], buffer, sizeof buffer) == 8 &&
                                       memcmp(buffer, "abcdefgh", 8) == 0);

    /* Half-close both ways. */
    check("shutdown(SHUT_WR)", shutdown(pair[0], SHUT_WR) == 0);
    struct pollfd hangup = {pair[1], POLLIN | POLLRDHUP, 0};
    check("the peer sees POLLRDHUP",
          poll(&hangup, 1, 0) == 1 && (hangup.revents & POLLRDHUP) && (hangup.revents & POLLIN));
    check("and end of file", read(pair[1], buffer, sizeof buffer) == 0);
    check("the shut side may not write: EPIPE",
          send(pair[0], "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    check("the other side still writes", write(pair[1], "late", 4) == 4 &&
                                             read(pair[0], buffer, sizeof buffer) == 4);
    close(pair[0]);
    check("after close: EPIPE", send(pair[1], "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
    hangup = (struct pollfd){pair[1], POLLIN, 0};
    check("and POLLHUP", poll(&hangup, 1, 0) == 1 && (hangup.revents & POLLHUP));
    close(pair[1]);

    /* A peer closed with data unread: ECONNRESET once, then end of file. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    write(pair[0], "unread", 6);
    close(pair[1]);
    check("data left unread at close: ECONNRESET",
          read(pair[0], buffer, sizeof buffer) == -1 && errno == ECONNRESET);
    check("then end of file", read(pair[0], buffer, sizeof buffer) == 0);
    close(pair[0]);

    /* SIGPIPE without MSG_NOSIGNAL. */
    signal(SIGPIPE, SIG_IGN);
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    close(pair[1]);
    check("write to a closed pair: EPIPE", write(pair[0], "x", 1) == -1 && errno == EPIPE);
    close(pair[0]);
    signal(SIGPIPE, SIG_DFL);

    /* Datagrams keep their boundaries. */
    check("socketpair(AF_UNIX, SOCK_DGRAM)", socketpair(AF_UNIX, SOCK_DGRAM, 0, pair) == 0);
    send(pair[0], "one", 3, 0);
    send(pair[0], "two!", 4, 0);
    check("FIONREAD is the next datagram's size", ioctl(pair[1], FIONREAD, &waiting) == 0 &&
                                                      waiting == 3);
    check("datagram one", recv(pair[1], buffer, sizeof buffer, 0) == 3);
    check("MSG_TRUNC gives the whole length", recv(pair[1], buffer, 2, MSG_TRUNC) == 4);
    send(pair[0], "three", 5, 0);
    struct iovec piece = {buffer, 2};
    struct msghdr message = {.msg_iov = &piece, .msg_iovlen = 1};
    check("a cut datagram says MSG_TRUNC",
          recvmsg(pair[1], &message, 0) == 2 && (message.msg_flags & MSG_TRUNC));
    static char huge[300000];
    check("a datagram above SO_SNDBUF: EMSGSIZE",
          send(pair[0], huge, sizeof huge, 0) == -1 && errno == EMSGSIZE);
    close(pair[0]);
    close(pair[1]);

    check("socketpair(AF_UNIX, SOCK_SEQPACKET)",
          socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair) == 0);
    send(pair[0], "first", 5, 0);
    send(pair[0], "second", 6, 0);
    check("seqpacket keeps boundaries", recv(pair[1], buffer, sizeof buffer, 0) == 5 &&
                                            recv(pair[1], buffer, sizeof buffer, 0) == 6);
    close(pair[0]);
    check("seqpacket: end of file", recv(pair[1], buffer, sizeof buffer, 0) == 0);
    close(pair[1]);

    check("socketpair(AF_INET): EOPNOTSUPP",
          socketpair(AF_INET, SOCK_STREAM, 0, pair) == -1 && errno == EOPNOTSUPP);
    check("protocol 7: EPROTONOSUPPORT",
          socket(AF_UNIX, SOCK_STREAM, 7) == -1 && errno == EPROTONOSUPPORT);
}

static void names(void) {
    socklen_t len;
    struct sockaddr_un address = path_name("server", &len);
    int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    check("bind a path", bind(server, (struct sockaddr *)&address, len) == 0);
    struct stat status;
    check("it makes a socket file", stat(address.sun_path, &status) == 0 &&
                                        S_ISSOCK(status.st_mode));
    check("open(2) of it: ENXIO", open(address.sun_path, O_RDONLY) == -1 && errno == ENXIO);
    int other = socket(AF_UNIX, SOCK_STREAM, 0);
    check("the path again: EADDRINUSE",
          bind(other, (struct sockaddr *)&address, len) == -1 && errno == EADDRINUSE);
    check("bound already, to its own path: EADDRINUSE",
          bind(server, (struct sockaddr *)&address, len) == -1 && errno == EADDRINUSE);
    socklen_t elsewhere_len;
    struct sockaddr_un elsewhere = path_name("elsewhere", &elsewhere_len);
    check("bound already, to a new path: EINVAL",
          bind(server, (struct sockaddr *)&elsewhere, elsewhere_len) == -1 && errno == EINVAL &&
              access(elsewhere.sun_path, F_OK) == -1);
    struct sockaddr_un name;
    socklen_t name_len = sizeof name;
    check("getsockname gives the path",
          getsockname(server, (struct sockaddr *)&name, &name_len) == 0 && name_len == len &&
              strcmp(name.sun_path, address.sun_path) == 0);
    check("connect before listen: ECONNREFUSED",
          connect(other, (struct sockaddr *)&address, len) == -1 && errno == ECONNREFUSED);
    check("listen", listen(server, 8) == 0);
    int value;
    socklen_t value_len = sizeof value;
    check("SO_ACCEPTCONN", getsockopt(server, SOL_SOCKET, SO_ACCEPTCONN, &value, &value_len) ==
                                   0 && value == 1);
    int datagram = socket(AF_UNIX, SOCK_DGRAM, 0);
    check("a datagram socket to a stream socket's path: EPROTOTYPE",
          connect(datagram, (struct sockaddr *)&address, len) == -1 && errno == EPROTOTYPE);
    close(datagram);
    check("connect", connect(other, (struct sockaddr *)&address, len) == 0);
    check("write before accept", write(other, "early", 5) == 5);
    check("the listener is readable", readable_within(server, 0));
    struct sockaddr_un peer;
    socklen_t peer_len = sizeof peer;
    int connection = accept4(server, (struct sockaddr *)&peer, &peer_len, SOCK_CLOEXEC);
    check("accept4", connection >= 0);
    check("accept's address: an unnamed client", peer_len == sizeof(sa_family_t));
    check("accept4's FD_CLOEXEC", fcntl(connection, F_GETFD) == FD_CLOEXEC);
    char buffer[64];
    check("what was written before accept arrives",
          read(connection, buffer, sizeof buffer) == 5 && memcmp(buffer, "early", 5) == 0);
    name_len = sizeof name;
    check("the accepted end is named as the listener",
          getsockname(connection, (struct sockaddr *)&name, &name_len) == 0 &&
              strcmp(name.sun_path, address.sun_path) == 0);
    name_len = sizeof name;
    check("the client's peer is the path",
          getpeername(other, (struct sockaddr *)&name, &name_len) == 0 &&
              strcmp(name.sun_path, address.sun_path) == 0);
    check("connect again: EISCONN",
          connect(other, (struct sockaddr *)&address, len) == -1 && errno == EISCONN);
    close(connection);
    close(other);

    /* A full backlog: non-blocking connects get EAGAIN. */
    check("listen(1)", listen(server, 1) == 0);
    int accepted = 0, clients[4];
    for (int i = 0; i < 4; i++) {
        clients[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(clients[i], (struct sockaddr *)&address, len) == 0) accepted++;
        else if (errno != EAGAIN) accepted = -100;
    }
    check("backlog 1 holds two connections, then EAGAIN", accepted == 2);
    for (int i = 0; i < 4; i++) close(clients[i]);
    /* The listener's queued ends went with their clients: accept still works. */
    other = socket(AF_UNIX, SOCK_STREAM, 0);
    connection = -1;
    while (readable_within(server, 0)) {
        int old = accept(server, NULL, NULL);
        if (old < 0) break;
        check("a connection whose client closed reads end of file",
              read(old, buffer, sizeof buffer) == 0);
        close(old);
    }
    close(other);
    close(server);

    /* A client closed before accept reads nothing; a listener closed with a connection
     * pending resets its client. */
    server = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un second = path_name("second", &len);
    bind(server, (struct sockaddr *)&second, len);
    listen(server, 4);
    other = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(other, (struct sockaddr *)&second, len);
    close(server);
    check("the listener closed: ECONNRESET", read(other, buffer, sizeof buffer) == -1 &&
                                                 errno == ECONNRESET);
    close(other);
    check("the socket file stays after close", stat(second.sun_path, &status) == 0);
    other = socket(AF_UNIX, SOCK_STREAM, 0);
    check("but nobody listens: ECONNREFUSED",
          connect(other, (struct sockaddr *)&second, len) == -1 && errno == ECONNREFUSED);
    check("unlink it", unlink(second.sun_path) == 0);
    check("then: ENOENT", connect(other, (struct sockaddr *)&second, len) == -1 &&
                              errno == ENOENT);
    struct sockaddr_un file = path_name("plain", &len);
    close(open(file.sun_path, O_CREAT | O_WRONLY, 0600));
    check("a regular file: ECONNREFUSED",
          connect(other, (struct sockaddr *)&file, len) == -1 && errno == ECONNREFUSED);
    unlink(file.sun_path);
    close(other);
    unlink(address.sun_path);

    /* Abstract names leave no file and go with their socket. */
    struct sockaddr_un abstract = abstract_name("abstract", &len);
    server = socket(AF_UNIX, SOCK_STREAM, 0);
    check("bind an abstract name", bind(server, (struct sockaddr *)&abstract, len) == 0);
    name_len = sizeof name;
    check("getsockname gives it back",
          getsockname(server, (struct sockaddr *)&name, &name_len) == 0 && name_len == len &&
              memcmp(&name, &abstract, len) == 0);
    other = socket(AF_UNIX, SOCK_STREAM, 0);
    check("taken: EADDRINUSE",
          bind(other, (struct sockaddr *)&abstract, len) == -1 && errno == EADDRINUSE);
    listen(server, 4);
    check("connect to it", connect(other, (struct sockaddr *)&abstract, len) == 0);
    datagram = socket(AF_UNIX, SOCK_DGRAM, 0);
    check("abstract names are per socket type: ECONNREFUSED",
          connect(datagram, (struct sockaddr *)&abstract, len) == -1 && errno == ECONNREFUSED);
    close(datagram);
    close(other);
    close(server);
    other = socket(AF_UNIX, SOCK_STREAM, 0);
    check("the name is free again", bind(other, (struct sockaddr *)&abstract, len) == 0);
    close(other);

    /* Autobind: the family alone picks an abstract name of five hex digits. */
    other = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un family = {.sun_family = AF_UNIX};
    check("bind with the family alone",
          bind(other, (struct sockaddr *)&family, sizeof(sa_family_t)) == 0);
    name_len = sizeof name;
    check("autobind's name", getsockname(other, (struct sockaddr *)&name, &name_len) == 0 &&
                                 name_len == offsetof(struct sockaddr_un, sun_path) + 6 &&
                                 name.sun_path[0] == 0);
    close(other);
    check("bind of another family: EINVAL",
          bind(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&(struct sockaddr){AF_INET},
               sizeof(struct sockaddr)) == -1 && errno == EINVAL);
}

static void datagrams(void) {
    socklen_t len, client_len;
    struct sockaddr_un address = path_name("datagrams", &len);
    int server = socket(AF_UNIX, SOCK_DGRAM, 0);
    check("bind a datagram socket", bind(server, (struct sockaddr *)&address, len) == 0);
    int client = socket(AF_UNIX, SOCK_DGRAM, 0);
    check("sendto its path", sendto(client, "hi", 2, 0, (struct sockaddr *)&address, len) == 2);
    struct sockaddr_un from;
    socklen_t from_len = sizeof from;
    char buffer[64];
    check("recvfrom an unnamed sender: length 0",
          recvfrom(server, buffer, sizeof buffer, 0, (struct sockaddr *)&from, &from_len) == 2 &&
              from_len == 0);
    struct sockaddr_un client_name = path_name("client", &client_len);
    bind(client, (struct sockaddr *)&client_name, client_len);
    sendto(client, "named", 5, 0, (struct sockaddr *)&address, len);
    from_len = sizeof from;
    check("recvfrom a named sender gives its path",
          recvfrom(server, buffer, sizeof buffer, 0, (struct sockaddr *)&from, &from_len) == 5 &&
              from_len == client_len && strcmp(from.sun_path, client_name.sun_path) == 0);
    check("send unconnected: ENOTCONN", send(client, "x", 1, 0) == -1 && errno == ENOTCONN);
    check("connect a datagram socket", connect(client, (struct sockaddr *)&address, len) == 0);
    check("send to the connected peer", send(client, "again", 5, 0) == 5 &&
                                            recv(server, buffer, sizeof buffer, 0) == 5);
    /* The server connects to the client: others may not send to it. */
    connect(server, (struct sockaddr *)&client_name, client_len);
    int third = socket(AF_UNIX, SOCK_DGRAM, 0);
    check("to a socket connected elsewhere: EPERM",
          sendto(third, "x", 1, 0, (struct sockaddr *)&address, len) == -1 && errno == EPERM);
    close(third);
    /* A full queue: non-blocking sends get EAGAIN. */
    int sent = 0;
    while (send(client, "fill", 4, MSG_DONTWAIT) == 4 && sent < 10000) sent++;
    check("a full receiver: EAGAIN", errno == EAGAIN && sent > 0 && sent < 10000);
    struct pollfd out = {client, POLLOUT, 0};
    check("and no POLLOUT", poll(&out, 1, 0) == 0);
    while (recv(server, buffer, sizeof buffer, MSG_DONTWAIT) > 0) {
    }
    check("POLLOUT once drained", poll(&out, 1, 0) == 1);
    close(server);
    check("the peer closed: ECONNREFUSED", send(client, "x", 1, 0) == -1 &&
                                               errno == ECONNREFUSED);
    check("and disconnected: ENOTCONN", send(client, "x", 1, 0) == -1 && errno == ENOTCONN);
    close(client);
    unlink(address.sun_path);
    unlink(client_name.sun_path);
}

static void rights(void) {
    int pair[2], pipe_ends[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    pipe(pipe_ends);
    check("send a pipe's read end", send_fds(pair[0], "f", 1, &pipe_ends[0], 1) == 1);
    close(pipe_ends[0]);
    char buffer[64];
    int fds[8], count, flags;
    check("receive it", receive_fds(pair[1], buffer, sizeof buffer, fds, 8, &count, &flags, 0) ==
                                1 && count == 1);
    check("the received fd reads the pipe", write(pipe_ends[1], "data", 4) == 4 &&
                                                read(fds[0], buffer, sizeof buffer) == 4 &&
                                                memcmp(buffer, "data", 4) == 0);
    close(pipe_ends[1]);
    check("and sees its end", read(fds[0], buffer, sizeof buffer) == 0);
    close(fds[0]);

    /* A file: the received fd shares the description, offset and all. */
    char path[96];
    snprintf(path, sizeof path, "%s/shared", directory);
    int file = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    write(file, "0123456789", 10);
    lseek(file, 3, SEEK_SET);
    send_fds(pair[0], "g", 1, &file, 1);
    receive_fds(pair[1], buffer, sizeof buffer, fds, 8, &count, &flags, 0);
    check("a file's received fd shares the offset",
          count == 1 && lseek(fds[0], 0, SEEK_CUR) == 3 && read(fds[0], buffer, 2) == 2 &&
              lseek(file, 0, SEEK_CUR) == 5);
    close(fds[0]);

    /* Two fds, room for one: MSG_CTRUNC. */
    int two[2] = {file, pair[0]};
    send_fds(pair[0], "h", 1, two, 2);
    check("two fds in room for one: MSG_CTRUNC",
          receive_fds(pair[1], buffer, sizeof buffer, fds, 1, &count, &flags, 0) == 1 &&
              count == 1 && (flags & MSG_CTRUNC));
    close(fds[0]);
    send_fds(pair[0], "i", 1, two, 2);
    check("no control buffer: the fds are dropped",
          recv(pair[1], buffer, sizeof buffer, 0) == 1);
    send_fds(pair[0], "j", 1, &file, 1);
    receive_fds(pair[1], buffer, sizeof buffer, fds, 8, &count, &flags, MSG_CMSG_CLOEXEC);
    check("MSG_CMSG_CLOEXEC", count == 1 && fcntl(fds[0], F_GETFD) == FD_CLOEXEC);
    close(fds[0]);
    close(file);
    unlink(path);

    /* The fds stop a stream read: bytes after them come in the next read. */
    write(pair[0], "ab", 2);
    send_fds(pair[0], "cd", 2, &pair[0], 1);
    write(pair[0], "ef", 2);
    check("a read stops after the bytes that carried fds",
          receive_fds(pair[1], buffer, sizeof buffer, fds, 8, &count, &flags, 0) == 4 &&
              count == 1 && memcmp(buffer, "abcd", 4) == 0);
    check("the rest follows", read(pair[1], buffer, sizeof buffer) == 2);
    close(fds[0]);

    /* A socket passed over a socket works at its new fd. */
    int inner[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, inner);
    send_fds(pair[0], "k", 1, &inner[1], 1);
    close(inner[1]);
    receive_fds(pair[1], buffer, sizeof buffer, fds, 8, &count, &flags, 0);
    check("a socket passed over a socket",
          count == 1 && send(inner[0], "via", 3, 0) == 3 &&
              recv(fds[0], buffer, sizeof buffer, 0) == 3);
    close(fds[0]);
    close(inner[0]);

    check("a bad fd: EBADF", send_fds(pair[0], "l", 1, (int[]){999}, 1) == -1 && errno == EBADF);

    /* SCM_CREDENTIALS under SO_PASSCRED. */
    int on = 1;
    setsockopt(pair[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    write(pair[0], "m", 1);
    char control[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec piece = {buffer, sizeof buffer};
    struct msghdr message = {.msg_iov = &piece, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
    struct ucred credentials = {0};
    if (recvmsg(pair[1], &message, 0) == 1) {
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        if (header && header->cmsg_type == SCM_CREDENTIALS)
            memcpy(&credentials, CMSG_DATA(header), sizeof credentials);
    }
    check("SCM_CREDENTIALS names the sender",
          credentials.pid == getpid() && credentials.uid == getuid());
    close(pair[0]);
    close(pair[1]);

    /* fds in flight when the receiver closes are closed with it. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    pipe(pipe_ends);
    send_fds(pair[0], "n", 1, &pipe_ends[0], 1);
    close(pipe_ends[0]);
    close(pair[1]);
    signal(SIGPIPE, SIG_IGN);
    check("a pipe end in flight closes with its receiver",
          write(pipe_ends[1], "x", 1) == -1 && errno == EPIPE);
    signal(SIGPIPE, SIG_DFL);
    close(pipe_ends[1]);
    close(pair[0]);
}

static void readiness(void) {
    int pair[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair);
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN | EPOLLET, .data.fd = pair[1]};
    epoll_ctl(epoll, EPOLL_CTL_ADD, pair[1], &event);
    struct epoll_event got[4];
    check("epoll: nothing yet", epoll_wait(epoll, got, 4, 0) == 0);
    write(pair[0], "a", 1);
    check("EPOLLET: the write is an edge", epoll_wait(epoll, got, 4, 0) == 1);
    check("no new edge without new data", epoll_wait(epoll, got, 4, 0) == 0);
    write(pair[0], "b", 1);
    check("new data, a new edge", epoll_wait(epoll, got, 4, 0) == 1);
    close(epoll);
    /* Fill the stream until EAGAIN; reading it all makes it writable again. */
    static char block[65536];
    long total = 0;
    ssize_t n;
    while ((n = write(pair[0], block, sizeof block)) > 0) total += n;
    check("a full stream: EAGAIN", n == -1 && errno == EAGAIN && total > 0);
    struct pollfd out = {pair[0], POLLOUT, 0};
    check("and no POLLOUT", poll(&out, 1, 0) == 0);
    long drained = 0;
    while ((n = read(pair[1], block, sizeof block)) > 0) drained += n;
    check("every byte comes out", drained == total + 2);
    check("POLLOUT again", poll(&out, 1, 0) == 1 && (out.revents & POLLOUT));
    close(pair[0]);
    close(pair[1]);
}

struct waiter {
    int fd;
    char data[16];
    ssize_t got;
};

static void *accept_then_read(void *argument) {
    struct waiter *waiter = argument;
    int connection = accept(waiter->fd, NULL, NULL);
    waiter->got = connection < 0 ? -1 : read(connection, waiter->data, sizeof waiter->data);
    if (connection >= 0) close(connection);
    return NULL;
}

static void blocking(void) {
    socklen_t len;
    struct sockaddr_un address = path_name("blocking", &len);
    int server = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(server, (struct sockaddr *)&address, len);
    listen(server, 4);
    struct waiter waiter = {.fd = server};
    pthread_t thread;
    pthread_create(&thread, NULL, accept_then_read, &waiter);
    usleep(20000);
    int client = socket(AF_UNIX, SOCK_STREAM, 0);
    check("connect wakes a blocked accept", connect(client, (struct sockaddr *)&address, len) ==
                                                0);
    usleep(20000);
    write(client, "woken", 5);
    pthread_join(thread, NULL);
    check("and the blocked read gets the data", waiter.got == 5 &&
                                                    memcmp(waiter.data, "woken", 5) == 0);
    close(client);
    close(server);
    unlink(address.sun_path);

    /* sendfile from a file into a socket. */
    char path[96];
    snprintf(path, sizeof path, "%s/payload", directory);
    int file = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    write(file, "sent by sendfile", 16);
    lseek(file, 0, SEEK_SET);
    int pair[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    check("sendfile to a unix socket", sendfile(pair[0], file, NULL, 16) == 16);
    char buffer[32];
    check("its bytes arrive", read(pair[1], buffer, sizeof buffer) == 16 &&
                                  memcmp(buffer, "sent by sendfile", 16) == 0);
    close(pair[0]);
    close(pair[1]);
    close(file);
    unlink(path);
}

int main(void) {
    snprintf(directory, sizeof directory, "/tmp/pith-unix-%d", (int)getpid());
    mkdir(directory, 0700);
    pairs();
    names();
    datagrams();
    rights();
    readiness();
    blocking();
    rmdir(directory);
    return failures;
}
