/* process: the standard process metrics every Prometheus exporter has
 * (client_golang's process collector, same names and meanings), for the
 * shipper itself. Always enabled; Linux only (reads /proc).
 *
 *   process_cpu_seconds_total        user + system CPU time (/proc/self/stat utime + stime)
 *   process_resident_memory_bytes    resident set size (rss pages x page size)
 *   process_virtual_memory_bytes     virtual memory size (vsize)
 *   process_start_time_seconds       start time since the epoch (btime of /proc/stat
 *                                    + starttime ticks)
 *   process_open_fds                 entries of /proc/self/fd (not counting the one
 *                                    used to list them)
 *   process_max_fds                  soft RLIMIT_NOFILE
 *
 * Like nexus_shipper_*, these are kept by keep_metrics whatever it says
 * (series.c). A /proc that cannot be read fails the collector with the
 * file named. State: the boot time, clock ticks and page size, read at
 * init (owned, malloc'd). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "collector.h"
#include "nexus_api.h"

static const struct metric_desc m_cpu = {"process_cpu_seconds_total", MT_COUNTER,
                                         "Total user and system CPU time spent in seconds.",
                                         "seconds"};
static const struct metric_desc m_rss = {"process_resident_memory_bytes", MT_GAUGE,
                                         "Resident memory size in bytes.", "bytes"};
static const struct metric_desc m_vsz = {"process_virtual_memory_bytes", MT_GAUGE,
                                         "Virtual memory size in bytes.", "bytes"};
static const struct metric_desc m_start = {"process_start_time_seconds", MT_GAUGE,
                                           "Start time of the process since unix epoch in seconds.",
                                           "seconds"};
static const struct metric_desc m_fds = {"process_open_fds", MT_GAUGE,
                                         "Number of open file descriptors.", ""};
static const struct metric_desc m_maxfds = {"process_max_fds", MT_GAUGE,
                                            "Maximum number of open file descriptors.", ""};

#define STAT_MAX 4096

struct proc {
    double btime; /* boot time, seconds since the epoch */
    double ticks; /* clock ticks per second */
    double page;  /* page size, bytes */
};

static int init(const struct config *cfg, void **state, struct err *e)
{
    (void)cfg;
    struct proc *p = calloc(1, sizeof *p);
    char *text = NULL;
    if (!p) {
        err_set(e, "out of memory");
        return -1;
    }
    long tk = sysconf(_SC_CLK_TCK), pg = sysconf(_SC_PAGESIZE);
    if (tk <= 0 || pg <= 0) {
        err_set(e, "sysconf(_SC_CLK_TCK / _SC_PAGESIZE) failed");
        goto fail;
    }
    p->ticks = (double)tk;
    p->page = (double)pg;
    if (read_file("/proc/stat", 1 << 20, false, &text, e) < 0)
        goto fail;
    const char *b = strstr(text, "\nbtime ");
    if (!b || sscanf(b + 7, "%lf", &p->btime) != 1) {
        err_set(e, "/proc/stat: no btime line");
        goto fail;
    }
    free(text);
    *state = p;
    return 0;
fail:
    free(text);
    free(p);
    return -1;
}

static void destroy(void *state)
{
    free(state);
}

/* Open descriptors: the entries of /proc/self/fd but the directory's own. */
static int count_fds(double *out, struct err *e)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        err_set(e, "/proc/self/fd: %s", strerror(errno));
        return -1;
    }
    int self = dirfd(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (atoi(de->d_name) != self)
            n++;
    }
    closedir(d);
    *out = (double)n;
    return 0;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    struct proc *p = state;
    char *text = NULL;
    int rc = -1;
    if (read_file("/proc/self/stat", STAT_MAX, false, &text, ctx->e) < 0)
        goto out;
    /* the command name (field 2) is in parentheses and may hold spaces */
    const char *r = strrchr(text, ')');
    unsigned long long utime, stime, start, vsize;
    long long rss;
    if (!r || sscanf(r + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d"
                     " %*d %*d %llu %llu %lld",
                     &utime, &stime, &start, &vsize, &rss) != 5) {
        err_set(ctx->e, "/proc/self/stat: unexpected format");
        goto out;
    }
    double fds;
    if (count_fds(&fds, ctx->e) < 0)
        goto out;
    struct rlimit rl;
    bool has_max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
    if (coll_set(ctx, &m_cpu, (double)(utime + stime) / p->ticks, NULL) < 0 ||
        coll_set(ctx, &m_rss, (double)rss * p->page, NULL) < 0 ||
        coll_set(ctx, &m_vsz, (double)vsize, NULL) < 0 ||
        coll_set(ctx, &m_start, p->btime + (double)start / p->ticks, NULL) < 0 ||
        coll_set(ctx, &m_fds, fds, NULL) < 0 ||
        (has_max && coll_set(ctx, &m_maxfds, (double)rl.rlim_cur, NULL) < 0))
        goto out;
    rc = 0;
out:
    free(text);
    return rc;
}

const struct collector collector_process = {
    .name = "process",
    .enabled = NULL, /* always */
    .init = init,
    .collect = collect,
    .destroy = destroy,
};
