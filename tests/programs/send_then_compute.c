// Sends a line to its first client, then computes for 4 s without a syscall (the time read
// through the vDSO), then sends another and exits: the first line must reach the client
// while the program computes, as on Linux, though Pith holds a sent frame's notification to
// the device for a moment to send several at once.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(7)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 1)) {
        perror("bind/listen");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    int client = accept(listener, NULL, NULL);
    if (client < 0) {
        perror("accept");
        return 1;
    }
    // Quiet first: the handshake's frames are long gone and the device idle, so nothing but
    // Pith's own deadline tells it of the next frame.
    usleep(300 * 1000);
    write(client, "first\n", 6);
    double until = now() + 4.0;
    volatile unsigned long spins = 0;
    while (now() < until)
        spins++;
    write(client, "second\n", 7);
    close(client);
    printf("done\n");
    return 0;
}
