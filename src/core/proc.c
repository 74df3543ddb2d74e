/* proc: see proc.h. libc only. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROC_DEFAULT_GRACE_MS 5000

int64_t proc_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Closes every descriptor in [lo, hi] (async-signal-safe: after fork). */
static void close_fds(unsigned lo, unsigned hi)
{
    if (lo > hi)
        return;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, lo, hi, 0) == 0)
        return;
#endif
    long mx = sysconf(_SC_OPEN_MAX);
    if (mx < 0 || mx > 1 << 20)
        mx = 1 << 20;
    for (unsigned fd = lo; fd <= hi && fd < (unsigned long)mx; fd++)
        close((int)fd);
}

static void child_exec(char *const argv[], int out_w, int err_w, int errp_w)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    setpgid(0, 0);
    int dn = open("/dev/null", O_RDONLY);
    if (dn >= 0 && dn != 0) {
        dup2(dn, 0);
        close(dn);
    }
    dup2(out_w, 1);
    dup2(err_w, 2);
    /* nothing of the parent beyond 0-2 (sockets without FD_CLOEXEC); the
     * exec-error pipe is close-on-exec and stays until exec */
    if (errp_w > 2) {
        close_fds(3, (unsigned)errp_w - 1);
        close_fds((unsigned)errp_w + 1, ~0u);
    } else {
        close_fds(3, ~0u);
        errp_w = -1;
    }
    execvp(argv[0], argv);
    int e = errno;
    if (errp_w >= 0) {
        ssize_t w = write(errp_w, &e, sizeof e);
        (void)w;
    }
    _exit(127);
}

int proc_run(char *const argv[], const struct proc_spec *s, struct proc_result *r)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1}, px[2] = {-1, -1};
    int ret = -1;
    memset(r, 0, sizeof *r);
    r->exit_status = -1;
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0 || pipe2(px, O_CLOEXEC) < 0) {
        r->exec_errno = errno;
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        r->exec_errno = errno;
        goto out;
    }
    if (pid == 0)
        child_exec(argv, po[1], pe[1], px[1]);
    setpgid(pid, pid); /* both sides set it: no race with the first kill */
    close(po[1]);
    close(pe[1]);
    close(px[1]);
    po[1] = pe[1] = px[1] = -1;
    int e = 0;
    ssize_t got;
    do
        got = read(px[0], &e, sizeof e);
    while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof e) { /* exec failed */
        r->exec_errno = e;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        goto out;
    }
    r->started = true;

    struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    int phase = 0; /* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
    int64_t kill_at = 0, reaped_at = 0;
    bool reaped = false;
    int status = 0;
    int64_t grace = s->grace_ms > 0 ? s->grace_ms : PROC_DEFAULT_GRACE_MS;
    char chunk[8192];
    for (;;) {
        if (!reaped) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                reaped = true;
                reaped_at = proc_mono_ms();
            }
        }
        int64_t now = proc_mono_ms();
        bool open_fds = fds[0].fd >= 0 || fds[1].fd >= 0;
        if (reaped && !open_fds)
            break;
        /* a grandchild that keeps the pipes open must not hold us */
        if (reaped && now - reaped_at > 500)
            break;
        if (phase == 0 && s->deadline && now >= s->deadline) {
            r->timed_out = true;
            phase = 1;
        } else if (phase == 0 && s->cancel && *s->cancel) {
            r->cancelled = true;
            phase = 1;
        }
        if (phase == 1 && !kill_at) {
            kill(-pid, SIGTERM);
            kill_at = now + grace;
        }
        if (phase == 1 && now >= kill_at) {
            kill(-pid, SIGKILL);
            phase = 2;
        }
        int wait_ms = 50;
        if (s->deadline && phase == 0 && s->deadline - now < wait_ms)
            wait_ms = (int)(s->deadline - now > 0 ? s->deadline - now : 0);
        int n = poll(open_fds ? fds : NULL, open_fds ? 2 : 0, wait_ms);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2 && n > 0; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t k = read(fds[i].fd, chunk, sizeof chunk);
            if (k > 0) {
                if (s->on_output)
                    s->on_output(s->ctx, i, chunk, (size_t)k);
            } else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(fds[i].fd);
                fds[i].fd = -1;
                if (i == 0)
                    po[0] = -1;
                else
                    pe[0] = -1;
            }
        }
    }
    if (!reaped) { /* pipes closed before exit: wait, still bounded by the timeout */
        for (;;) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid)
                break;
            int64_t now = proc_mono_ms();
            if (phase == 0 && ((s->deadline && now >= s->deadline) || (s->cancel && *s->cancel))) {
                if (s->cancel && *s->cancel)
                    r->cancelled = true;
                else
                    r->timed_out = true;
                kill(-pid, SIGTERM);
                kill_at = now + grace;
                phase = 1;
            } else if (phase == 1 && now >= kill_at) {
                kill(-pid, SIGKILL);
                phase = 2;
            }
            struct timespec ts = {0, 20 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    if (phase > 0)
        kill(-pid, SIGKILL); /* leftovers of the group (a shell's children) */
    if (WIFEXITED(status)) {
        r->exit_status = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        r->exit_status = -1;
        r->term_signal = WTERMSIG(status);
    }
    ret = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
        if (px[i] >= 0)
            close(px[i]);
    }
    return ret;
}
