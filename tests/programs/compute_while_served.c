// Listens on port 7, then computes twice without a system call (the time read through the
// vDSO) while a client on the host uses the network, as Linux serves it meanwhile:
//   1. alone, for 6 s: the host pings it, so ARP and ICMP must be answered while it computes;
//   2. beside a thread blocked in accept(2) that echoes one message: that thread must run
//      when the client's frames come, not when the computing stops (after 20 s at most).
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int listener;
static volatile int echoed;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void compute(double seconds) {
    volatile unsigned long spins = 0;
    double until = now() + seconds;
    while (!echoed && now() < until)
        spins++;
}

static void *echo(void *unused) {
    (void)unused;
    int client = accept(listener, NULL, NULL);
    if (client < 0) {
        perror("accept");
        return NULL;
    }
    char buffer[256];
    ssize_t got = read(client, buffer, sizeof buffer);
    if (got > 0 && write(client, buffer, got) == got)
        echoed = 1;
    close(client);
    return NULL;
}

int main(void) {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(7)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 8)) {
        perror("bind/listen");
        return 1;
    }
    printf("computing alone\n");
    fflush(stdout);
    compute(6.0);
    printf("computed alone\n");
    pthread_t thread;
    if (pthread_create(&thread, NULL, echo, NULL)) {
        printf("pthread_create failed\n");
        return 1;
    }
    printf("computing beside a thread\n");
    fflush(stdout);
    compute(20.0);
    printf(echoed ? "echoed while computing\n" : "no echo in 20 s of computing\n");
    fflush(stdout);
    pthread_join(thread, NULL);
    return echoed ? 0 : 1;
}
