/* The host side of the network tests, run natively: `net_client HOST PORT concurrent N`
 * opens N connections at once, sends each a message of its own and checks the echo;
 * `net_client HOST PORT bulk BYTES` sends BYTES through one connection while reading the echo
 * back, and compares checksums; `net_client HOST PORT udp N` sends N datagrams and checks
 * each echo; `net_client HOST PORT ping N` sends N ICMP echo requests (a raw socket: root)
 * and counts the replies; `net_client HOST PORT synflood N` sends N SYNs to PORT from
 * addresses of HOST's /24 that do not exist (root), half-open connections that never
 * complete; `net_client HOST PORT garbage N INTERFACE` sends N random Ethernet frames (random
 * lengths and bytes, some with HOST's headers) out of INTERFACE (root);
 * `net_client HOST PORT quit` tells the server to stop. Prints one line; exits 0
 * when all was right. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/ethernet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in server;

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static int connect_blocking(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&server, sizeof server)) {
        perror("connect");
        exit(2);
    }
    return fd;
}

struct client {
    int fd;
    char message[32];
    int length, sent, got;
    char echo[32];
};

static int concurrent(int n) {
    struct client *clients = calloc(n, sizeof *clients);
    int epoll = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        struct client *c = &clients[i];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c->fd < 0) {
            perror("socket");
            return 2;
        }
        c->length = snprintf(c->message, sizeof c->message, "client %d\n", i);
        if (connect(c->fd, (struct sockaddr *)&server, sizeof server) && errno != EINPROGRESS) {
            perror("connect");
            return 2;
        }
        struct epoll_event event = {.events = EPOLLOUT | EPOLLIN, .data.u32 = i};
        epoll_ctl(epoll, EPOLL_CTL_ADD, c->fd, &event);
    }
    int done = 0, bad = 0;
    long long deadline = now_ms() + 60000;
    while (done < n && now_ms() < deadline) {
        struct epoll_event events[256];
        int count = epoll_wait(epoll, events, 256, 1000);
        for (int e = 0; e < count; e++) {
            struct client *c = &clients[events[e].data.u32];
            if (events[e].events & (EPOLLERR | EPOLLHUP) && c->got < c->length) {
                int error = 0;
                socklen_t len = sizeof error;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len);
                fprintf(stderr, "client %u: %s\n", events[e].data.u32, strerror(error));
                bad++;
                done++;
                epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, 0);
                continue;
            }
            if ((events[e].events & EPOLLOUT) && c->sent < c->length) {
                ssize_t n = write(c->fd, c->message + c->sent, c->length - c->sent);
                if (n > 0) c->sent += n;
                if (c->sent == c->length) {
                    struct epoll_event event = {.events = EPOLLIN, .data.u32 = events[e].data.u32};
                    epoll_ctl(epoll, EPOLL_CTL_MOD, c->fd, &event);
                }
            }
            if (events[e].events & EPOLLIN) {
                ssize_t n = read(c->fd, c->echo + c->got, sizeof c->echo - c->got);
                if (n > 0) c->got += n;
                if (n == 0 || c->got >= c->length) {
                    if (c->got != c->length || memcmp(c->echo, c->message, c->length)) bad++;
                    done++;
                    epoll_ctl(epoll, EPOLL_CTL_DEL, c->fd, 0);
                }
            }
        }
    }
    if (done < n) {
        /* Say where the stragglers stand, for the failure's report. */
        int connecting = 0, sending = 0, waiting = 0;
        for (int i = 0; i < n; i++) {
            struct client *c = &clients[i];
            if (c->got >= c->length) continue;
            if (c->sent == 0) connecting++;
            else if (c->sent < c->length) sending++;
            else waiting++;
        }
        fprintf(stderr, "concurrent: after the deadline, %d not connected or nothing sent, %d sending, %d waiting for the echo\n",
                connecting, sending, waiting);
    }
    for (int i = 0; i < n; i++) close(clients[i].fd);
    printf("concurrent: %d of %d connections echoed, %d wrong or lost\n", done - bad, n, bad + (n - done));
    return done == n && bad == 0 ? 0 : 1;
}

static int bulk(long long total) {
    int fd = connect_blocking();
    fcntl(fd, F_SETFL, O_NONBLOCK);
    static unsigned char out[65536], in[65536];
    long long sent = 0, got = 0;
    uint32_t sent_sum = 0, got_sum = 0;
    long long start = now_ms(), deadline = start + 600000;
    while (got < total && now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN | (sent < total ? POLLOUT : 0), 0};
        poll(&p, 1, 1000);
        if (sent < total && (p.revents & POLLOUT)) {
            long long want = total - sent < (long long)sizeof out ? total - sent : (long long)sizeof out;
            for (long long i = 0; i < want; i++) out[i] = (unsigned char)((sent + i) * 131 + (sent + i) / 4096);
            ssize_t n = write(fd, out, want);
            if (n > 0) {
                for (ssize_t i = 0; i < n; i++) sent_sum = sent_sum * 31 + out[i];
                sent += n;
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(fd, in, sizeof in);
            if (n == 0) break;
            if (n > 0) {
                for (ssize_t i = 0; i < n; i++) got_sum = got_sum * 31 + in[i];
                got += n;
            }
        }
    }
    long long ms = now_ms() - start;
    close(fd);
    printf("bulk: sent %lld, got %lld back, checksums %s, %.1f MB/s each way\n", sent, got,
           got_sum == sent_sum ? "equal" : "DIFFER", ms ? got / 1000.0 / ms : 0.0);
    return got == total && got_sum == sent_sum ? 0 : 1;
}

static int datagrams(int n) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct timeval timeout = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    int echoed = 0;
    for (int i = 0; i < n; i++) {
        char message[64], echo[64];
        int length = snprintf(message, sizeof message, "datagram %d", i);
        /* UDP may lose one: each gets three tries. */
        for (int attempt = 0; attempt < 3; attempt++) {
            sendto(fd, message, length, 0, (struct sockaddr *)&server, sizeof server);
            ssize_t got = recv(fd, echo, sizeof echo, 0);
            if (got == length && memcmp(echo, message, length) == 0) {
                echoed++;
                break;
            }
        }
    }
    printf("udp: %d of %d datagrams echoed\n", echoed, n);
    return echoed == n ? 0 : 1;
}

static uint16_t checksum(const void *data, int len) {
    const uint16_t *words = data;
    uint32_t sum = 0;
    for (; len > 1; len -= 2) sum += *words++;
    if (len) sum += *(const uint8_t *)words;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return ~sum;
}

static int ping(int n) {
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (fd < 0) {
        perror("socket(SOCK_RAW) (ping needs root)");
        return 2;
    }
    struct timeval timeout = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    int replies = 0;
    for (int i = 0; i < n; i++) {
        unsigned char request[64] = {0};
        struct icmphdr *header = (struct icmphdr *)request;
        header->type = ICMP_ECHO;
        header->un.echo.id = htons(getpid() & 0xffff);
        header->un.echo.sequence = htons(i);
        memcpy(request + sizeof *header, "pith ping payload", 17);
        header->checksum = checksum(request, sizeof request);
        sendto(fd, request, sizeof request, 0, (struct sockaddr *)&server, sizeof server);
        unsigned char reply[1500];
        long long deadline = now_ms() + 1000;
        while (now_ms() < deadline) {
            ssize_t got = recv(fd, reply, sizeof reply, 0);
            if (got < 0) break;
            struct iphdr *ip = (struct iphdr *)reply;
            struct icmphdr *answer = (struct icmphdr *)(reply + ip->ihl * 4);
            if (ip->saddr == server.sin_addr.s_addr && answer->type == ICMP_ECHOREPLY &&
                answer->un.echo.sequence == htons(i) && answer->un.echo.id == header->un.echo.id &&
                got - ip->ihl * 4 == (ssize_t)sizeof request &&
                memcmp((unsigned char *)answer + sizeof *answer, "pith ping payload", 17) == 0) {
                replies++;
                break;
            }
        }
    }
    printf("ping: %d of %d echo requests answered\n", replies, n);
    return replies == n ? 0 : 1;
}

/* The TCP checksum over the IPv4 pseudo-header. */
static uint16_t tcp_checksum(uint32_t source, uint32_t destination, const void *segment, int len) {
    unsigned char buffer[12 + 64];
    memcpy(buffer, &source, 4);
    memcpy(buffer + 4, &destination, 4);
    buffer[8] = 0;
    buffer[9] = IPPROTO_TCP;
    buffer[10] = len >> 8;
    buffer[11] = len & 0xff;
    memcpy(buffer + 12, segment, len);
    return checksum(buffer, 12 + len);
}

static int synflood(int n) {
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (fd < 0) {
        perror("socket(SOCK_RAW) (synflood needs root)");
        return 2;
    }
    srand(getpid());
    for (int i = 0; i < n; i++) {
        unsigned char packet[40] = {0};
        struct iphdr *ip = (struct iphdr *)packet;
        struct tcphdr *tcp = (struct tcphdr *)(packet + 20);
        ip->ihl = 5;
        ip->version = 4;
        ip->ttl = 64;
        ip->protocol = IPPROTO_TCP;
        ip->tot_len = htons(40);
        /* A host of the /24 that does not answer ARP: x.x.x.200 to x.x.x.249. */
        ip->saddr = (server.sin_addr.s_addr & htonl(0xffffff00)) | htonl(200 + rand() % 50);
        ip->daddr = server.sin_addr.s_addr;
        tcp->source = htons(1024 + rand() % 60000);
        tcp->dest = server.sin_port;
        tcp->seq = rand();
        tcp->doff = 5;
        tcp->syn = 1;
        tcp->window = htons(65535);
        tcp->check = tcp_checksum(ip->saddr, ip->daddr, tcp, 20);
        struct sockaddr_in to = server;
        sendto(fd, packet, sizeof packet, 0, (struct sockaddr *)&to, sizeof to);
    }
    printf("synflood: %d SYNs sent\n", n);
    return 0;
}

static int garbage(int n, const char *interface) {
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0) {
        perror("socket(AF_PACKET) (garbage needs root)");
        return 2;
    }
    struct sockaddr_ll device = {.sll_family = AF_PACKET, .sll_ifindex = if_nametoindex(interface),
                                 .sll_halen = 6};
    memset(device.sll_addr, 0xff, 6);
    srand(getpid());
    unsigned char frame[1514];
    int sent = 0;
    for (int i = 0; i < n; i++) {
        int len = 14 + rand() % (sizeof frame - 14);
        for (int j = 0; j < len; j++) frame[j] = rand();
        memset(frame, 0xff, 6); /* broadcast: every frame reaches the guest's stack */
        int kind = rand() % 4;
        if (kind > 0) {
            /* IPv4 headers to the guest, then garbage: the parsers' harder cases. */
            frame[12] = 0x08;
            frame[13] = 0x00;
            struct iphdr *ip = (struct iphdr *)(frame + 14);
            ip->version = 4;
            ip->daddr = server.sin_addr.s_addr;
            ip->protocol = kind == 1 ? IPPROTO_TCP : kind == 2 ? IPPROTO_UDP : IPPROTO_ICMP;
            if (rand() % 2) {
                ip->ihl = 5;
                ip->tot_len = htons(len - 14);
                ip->frag_off = 0;
                ip->check = 0;
                ip->check = checksum(ip, 20);
            }
        }
        if (sendto(fd, frame, len, 0, (struct sockaddr *)&device, sizeof device) == len) sent++;
    }
    printf("garbage: %d of %d frames sent\n", sent, n);
    return sent > 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: net_client HOST PORT concurrent N|bulk BYTES|udp N|ping N|synflood N|garbage N INTERFACE|quit\n");
        return 2;
    }
    server.sin_family = AF_INET;
    server.sin_port = htons(atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &server.sin_addr);
    if (!strcmp(argv[3], "concurrent") && argc > 4) return concurrent(atoi(argv[4]));
    if (!strcmp(argv[3], "bulk") && argc > 4) return bulk(atoll(argv[4]));
    if (!strcmp(argv[3], "udp") && argc > 4) return datagrams(atoi(argv[4]));
    if (!strcmp(argv[3], "ping") && argc > 4) return ping(atoi(argv[4]));
    if (!strcmp(argv[3], "synflood") && argc > 4) return synflood(atoi(argv[4]));
    if (!strcmp(argv[3], "garbage") && argc > 5) return garbage(atoi(argv[4]), argv[5]);
    if (!strcmp(argv[3], "quit")) {
        int fd = connect_blocking();
        struct timeval timeout = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        write(fd, "QUIT", 4);
        char answer[4];
        int ok = recv(fd, answer, 4, MSG_WAITALL) == 4 && memcmp(answer, "bye\n", 4) == 0;
        close(fd);
        printf("quit: %s\n", ok ? "the server said bye" : "no answer");
        return ok ? 0 : 1;
    }
    fprintf(stderr, "unknown mode %s\n", argv[3]);
    return 2;
}
