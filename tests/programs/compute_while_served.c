// Listens on port 7, then computes without a system call (the time read through the vDSO)
// while a client on the host uses the network, as Linux serves it meanwhile:
//   1. idle first, for 2 s: a sleep and a wait for the network must leave the CPU idle (the
//      kernel's network watch must not wake it again and again: /proc/interrupts' LOC, the
//      timer's count, grows by a few, not hundreds);
//   2. right after listen(2), for 5 s: the host pings it, so ARP and ICMP must be answered
//      while it computes;
//   3. after serving one client (a wait that halted the CPU, then a request), for 5 s: pinged
//      again;
//   3b. after an epoll_wait that does not wait (the device interrupted until then: the
//      kernel's pass had armed it), for 5 s: pinged again;
//   3c. after an epoll_wait that does not wait, asleep for 3 s, then computing for 5 s: pinged
//      in both (a wait for something else than the network serves it too);
//   4. beside a thread blocked in accept(2) that echoes one message: that thread must run
//      when the client's frames come, not when the computing stops (after 20 s at most).
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/epoll.h>
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

// Accepts one client and sends back what it sends first; 1 if it did.
static int echo_one(void) {
    int client = accept(listener, NULL, NULL);
    if (client < 0) {
        perror("accept");
        return 0;
    }
    char buffer[256];
    ssize_t got = read(client, buffer, sizeof buffer);
    int done = got > 0 && write(client, buffer, got) == got;
    close(client);
    return done;
}

static void *echo_thread(void *unused) {
    (void)unused;
    if (echo_one())
        echoed = 1;
    return NULL;
}

// The local timer's interrupts so far (/proc/interrupts' LOC line), or -1.
static long timer_interrupts(void) {
    FILE *file = fopen("/proc/interrupts", "r");
    char line[256];
    long count = -1;
    while (file && fgets(line, sizeof line, file))
        if (sscanf(line, " LOC: %ld", &count) == 1)
            break;
    if (file)
        fclose(file);
    return count;
}

static void say(const char *line) {
    printf("%s\n", line);
    fflush(stdout);
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

    long timer_before = timer_interrupts();
    struct timespec second = {1, 0};
    nanosleep(&second, NULL);
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
    struct epoll_event got;
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
    int ready = epoll_wait(epoll, &got, 1, 1000);
    long woken = timer_interrupts() - timer_before;
    int idled = timer_before >= 0 && woken < 50;
    if (idled)
        printf("idle 2 s: %d ready, the CPU idled\n", ready);
    else
        printf("idle 2 s: %d ready, %ld timer interrupts (LOC was %ld)\n", ready, woken, timer_before);
    fflush(stdout);

    // Right after a system call that looked at the network (the wait above). Once the
    // watch has found it computing (10-20 ms), the device interrupts: the timer stays quiet.
    say("computing after listen");
    long timer_computing = timer_interrupts();
    compute(5.0);
    long computing_woken = timer_interrupts() - timer_computing;
    say("computed");

    say("waiting for a client");
    if (!echo_one()) {
        say("no client");
        return 1;
    }
    say("computing after a request");
    timer_computing = timer_interrupts();
    compute(5.0);
    if (timer_interrupts() - timer_computing > computing_woken)
        computing_woken = timer_interrupts() - timer_computing;
    say("computed");

    // The line first, and a moment for the console's traffic to settle: a later interrupt
    // of any kind would arm the timer, and hide a watch left off it.
    say("computing after a poll");
    compute(0.3);
    epoll_wait(epoll, &got, 1, 0);
    timer_computing = timer_interrupts();
    compute(5.0);
    if (timer_interrupts() - timer_computing > computing_woken)
        computing_woken = timer_interrupts() - timer_computing;
    printf("computed: %s\n", computing_woken < 50 ? "the timer was quiet" : "the timer interrupted it");
    if (computing_woken >= 50)
        printf("timer interrupts in 5 s of computing: %ld\n", computing_woken);
    fflush(stdout);

    epoll_wait(epoll, &got, 1, 0);
    say("sleeping, then computing");
    struct timespec three = {3, 0};
    nanosleep(&three, NULL);
    compute(5.0);
    say("computed");

    pthread_t thread;
    if (pthread_create(&thread, NULL, echo_thread, NULL)) {
        say("pthread_create failed");
        return 1;
    }
    say("computing beside a thread");
    compute(20.0);
    say(echoed ? "echoed while computing" : "no echo in 20 s of computing");
    pthread_join(thread, NULL);
    return echoed && idled && computing_woken < 50 ? 0 : 1;
}
