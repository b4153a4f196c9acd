/* Runaway recursion overflows the main stack; a SIGSEGV handler with SA_ONSTACK runs on its
 * sigaltstack (the overflowed stack has no room for a frame), sees a fault address near the
 * stack pointer's end, and siglongjmps back. Then again, to show the alternate stack is usable
 * twice. Prints "ok NAME" or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static sigjmp_buf recover;
static char alternate[64 * 1024];
static volatile uintptr_t handler_frame, fault_address;
static volatile int fault_code;

static void on_segv(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)context;
    char here;
    handler_frame = (uintptr_t)&here;
    fault_address = (uintptr_t)info->si_addr;
    fault_code = info->si_code;
    siglongjmp(recover, 1);
}

#pragma GCC diagnostic ignored "-Winfinite-recursion" /* the point of the test */
static volatile uintptr_t deepest;
static int recurse(int depth) {
    volatile char frame[1024];
    frame[0] = (char)depth;
    deepest = (uintptr_t)frame;
    return recurse(depth + 1) + frame[0];
}

int main(void) {
    /* Linux grows the stack up to RLIMIT_STACK, read at each fault: with `ulimit -s
     * unlimited` the recursion would eat memory instead. Pith's stack is 8 MiB; so is this. */
    struct rlimit limit;
    getrlimit(RLIMIT_STACK, &limit);
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > (8 << 20)) {
        limit.rlim_cur = 8 << 20;
        setrlimit(RLIMIT_STACK, &limit);
    }
    stack_t stack = {.ss_sp = alternate, .ss_size = sizeof alternate, .ss_flags = 0};
    check("sigaltstack", sigaltstack(&stack, NULL) == 0);
    struct sigaction action = {0};
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &action, NULL);

    for (int round = 1; round <= 2; round++) {
        handler_frame = 0;
        if (sigsetjmp(recover, 1) == 0) {
            recurse(0);
            check("the recursion never ends by itself", 0);
        }
        uintptr_t alt_start = (uintptr_t)alternate, alt_end = alt_start + sizeof alternate;
        printf("round %d\n", round);
        check("the handler ran on the alternate stack",
              handler_frame >= alt_start && handler_frame < alt_end);
        check("the fault was just below the deepest frame",
              fault_address < deepest && deepest - fault_address < 64 * 1024);
        check("SEGV_MAPERR or SEGV_ACCERR", fault_code == SEGV_MAPERR || fault_code == SEGV_ACCERR);
        stack_t now;
        sigaltstack(NULL, &now);
        check("back out: no longer on the alternate stack", !(now.ss_flags & SS_ONSTACK));
    }
    return failures;
}
