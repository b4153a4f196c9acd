/* Signal delivery as Linux does it, in one thread: handlers for faults (SIGSEGV with si_addr
 * and si_code, recovered with siglongjmp), for signals the program sends itself (raise, kill,
 * tgkill), on an alternate stack, with SA_RESETHAND and SA_NODEFER, with the mask during a
 * handler, pending blocked signals, and the FPU state kept across a handler. Prints "ok NAME"
 * or "FAIL NAME" and exits with the number of failures. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31) /* include/uapi/linux/signal.h; not in every libc's headers */
#endif

static int failures;
static void check(const char *name, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", name);
    if (!ok) failures++;
}

static sigjmp_buf recover;
static volatile void *fault_address;
static volatile int fault_code;
static void on_segv(int signal, siginfo_t *info, void *context) {
    (void)signal; (void)context;
    fault_address = info->si_addr;
    fault_code = info->si_code;
    siglongjmp(recover, 1);
}

static volatile int usr1_count, usr1_blocked_inside;
static void on_usr1(int signal) {
    sigset_t now;
    sigprocmask(SIG_SETMASK, 0, &now);
    usr1_blocked_inside = sigismember(&now, SIGUSR1) && sigismember(&now, SIGUSR2);
    (void)signal;
    usr1_count++;
}

static volatile int on_alt_stack;
static char alt_stack[64 * 1024];
static void on_usr2(int signal) {
    char here;
    (void)signal;
    on_alt_stack = &here >= alt_stack && &here < alt_stack + sizeof alt_stack;
}

static volatile int nodefer_depth, nodefer_max;
static void on_hup(int signal) {
    nodefer_depth++;
    if (nodefer_depth > nodefer_max) nodefer_max = nodefer_depth;
    if (nodefer_depth < 3) raise(signal);
    nodefer_depth--;
}

static volatile double fpu_result;
static void on_alrm(int signal) {
    (void)signal;
    volatile double clobber = 1.0;
    for (int i = 0; i < 10; i++) clobber = clobber * 3.5 + 1.25; /* uses the SSE registers */
    fpu_result = clobber;
}

int main(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &action, 0);

    char *page = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sigsetjmp(recover, 1) == 0) {
        page[100] = 1; /* write to a read-only page */
        check("SIGSEGV handler runs", 0);
    } else {
        check("SIGSEGV handler runs", 1);
        check("si_addr is the faulting address", fault_address == page + 100);
        check("si_code is SEGV_ACCERR", fault_code == SEGV_ACCERR);
    }
    if (sigsetjmp(recover, 1) == 0) {
        volatile int *unmapped = (volatile int *)8; /* nothing is mapped there */
        *unmapped = 1;
    } else {
        check("SEGV_MAPERR for an unmapped address", fault_code == SEGV_MAPERR && fault_address == (void *)8);
    }

    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr1;
    sigaddset(&action.sa_mask, SIGUSR2);
    sigaction(SIGUSR1, &action, 0);
    raise(SIGUSR1);
    kill(getpid(), SIGUSR1);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
    check("raise, kill and tgkill run the handler", usr1_count == 3);
    check("the handler runs with its signal and sa_mask blocked", usr1_blocked_inside);
    sigset_t mask, pending;
    sigprocmask(SIG_SETMASK, 0, &mask);
    check("the mask is restored after the handler", !sigismember(&mask, SIGUSR1) && !sigismember(&mask, SIGUSR2));

    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, 0);
    raise(SIGUSR1);
    sigpending(&pending);
    check("a blocked signal stays pending", usr1_count == 3 && sigismember(&pending, SIGUSR1));
    sigprocmask(SIG_UNBLOCK, &mask, 0);
    check("unblocking delivers it", usr1_count == 4);

    stack_t stack = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = 0};
    check("sigaltstack", sigaltstack(&stack, 0) == 0);
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr2;
    action.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigaction(SIGUSR2, &action, 0);
    raise(SIGUSR2);
    check("SA_ONSTACK runs the handler on the alternate stack", on_alt_stack);
    struct sigaction after;
    sigaction(SIGUSR2, 0, &after);
    check("SA_RESETHAND resets the handler", after.sa_handler == SIG_DFL);

    /* SS_AUTODISARM: each delivery disarms the stack and sigreturn arms it again. */
    stack_t armed = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack, .ss_flags = SS_AUTODISARM};
    sigaltstack(&armed, 0);
    memset(&action, 0, sizeof action);
    action.sa_handler = on_usr2;
    action.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR2, &action, 0);
    on_alt_stack = 0;
    raise(SIGUSR2);
    int first = on_alt_stack;
    on_alt_stack = 0;
    raise(SIGUSR2);
    check("SS_AUTODISARM: the stack is there again for the next signal", first && on_alt_stack);

    memset(&action, 0, sizeof action);
    action.sa_handler = on_hup;
    action.sa_flags = SA_NODEFER;
    sigaction(SIGHUP, &action, 0);
    raise(SIGHUP);
    check("SA_NODEFER lets the handler nest", nodefer_max == 3);

    memset(&action, 0, sizeof action);
    action.sa_handler = on_alrm;
    sigaction(SIGALRM, &action, 0);
    volatile double kept = 2.5;
    double before = kept * 1.5;
    raise(SIGALRM);
    double after_value = kept * 1.5;
    check("the FPU state survives a handler that uses it", before == after_value && fpu_result > 1000);

    signal(SIGPIPE, SIG_IGN);
    raise(SIGPIPE);
    check("an ignored signal is dropped", 1);

    printf("%d failures\n", failures);
    fflush(stdout);
    raise(SIGTERM); /* the default action ends the program: status 143 */
    printf("still alive after SIGTERM\n");
    return 100;
}
