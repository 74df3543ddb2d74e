/* bench_spoolfill: puts the replay benchmark's load into nexus-shipper's
 * spool through the production path (series buffer -> sender_submit ->
 * rw_encode -> spool_append), as the collectors and the scheduler would.
 *
 *   bench_spoolfill -c CONF [--series N] [--cycles N] [--step S] [--start-ms MS] [--sorted]
 *
 * The samples are exactly those of replay_gen.py (the vmagent harness'
 * gen.py): N series x CYCLES cycles, series i is
 *   nexus_bench_metric_<i%20>{job="nexus",instance="nx-<i%10>",
 *     repository="repo-<i/20>",format=<i%5 of maven2,npm,docker,pypi,raw>,
 *     blob_store="bs-<i%7>"}
 * with value (i*7919 + c*104729) % 1000003 at start + c*step seconds
 * (default start: now - cycles*step). No external labels are added, so the
 * receiver stores the same series for both shippers.
 *
 * --sorted batches each cycle in sb_snapshot(sorted=true) order (by family,
 * then labels) instead of the scheduler's creation order: an experiment on
 * spool bytes, not what production does today.
 *
 * Nothing is delivered: the configured receiver is expected to be down.
 * Prints one line of key=value figures (CPU seconds, wall seconds, batches)
 * on stdout. Exit 0 if every batch was spooled. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "sender.h"
#include "sender_int.h"
#include "series.h"

#define NFAM 20

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    const char *conf = NULL;
    long series = 100000, cycles = 10, step = 15;
    long long start_ms = -1;
    bool sorted = false;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "-c") == 0)
            conf = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--series") == 0)
            series = strtol(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--cycles") == 0)
            cycles = strtol(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--step") == 0)
            step = strtol(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--start-ms") == 0)
            start_ms = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--sorted") == 0)
            sorted = true;
        else {
            fprintf(stderr, "usage: bench_spoolfill -c CONF [--series N] [--cycles N] [--step S] "
                            "[--start-ms MS] [--sorted]\n");
            return 2;
        }
    }
    if (!conf || series < 1 || cycles < 1 || step < 0) {
        fprintf(stderr, "bench_spoolfill: -c CONF is required; counts must be positive\n");
        return 2;
    }
    struct logger lg;
    logger_init(&lg);
    log_use(&lg);
    struct err e;
    struct config *cfg = config_load(conf, &e);
    if (!cfg) {
        fprintf(stderr, "bench_spoolfill: %s\n", e.msg);
        return 2;
    }
    struct sender *snd = sender_new(cfg, &e);
    if (!snd) {
        fprintf(stderr, "bench_spoolfill: %s\n", e.msg);
        return 1;
    }
    static char names[NFAM][32];
    static struct metric_desc fam[NFAM];
    for (int f = 0; f < NFAM; f++) {
        snprintf(names[f], sizeof names[f], "nexus_bench_metric_%02d", f);
        fam[f] = (struct metric_desc){names[f], MT_UNKNOWN, "", ""};
    }
    static const char *const formats[] = {"maven2", "npm", "docker", "pypi", "raw"};
    struct sb_opts o = {.max_bytes = 0};
    struct series_buf *sb = sb_new(&o);
    if (!sb) {
        fprintf(stderr, "bench_spoolfill: out of memory\n");
        return 1;
    }
    if (start_ms < 0)
        start_ms = (long long)time(NULL) * 1000 - (long long)cycles * step * 1000;
    double c0 = cpu_s(), w0 = now_s(), t_buf = 0, t_submit = 0;
    long batches = 0, total = 0;
    for (long c = 0; c < cycles; c++) {
        double a = now_s();
        sb_begin_cycle(sb, start_ms + c * step * 1000);
        sb_txn_begin(sb, "bench");
        for (long i = 0; i < series; i++) {
            char inst[16], repo[24], bs[16];
            snprintf(inst, sizeof inst, "nx-%ld", i % 10);
            snprintf(repo, sizeof repo, "repo-%05ld", i / 20);
            snprintf(bs, sizeof bs, "bs-%ld", i % 7);
            const char *l[] = {"job", "nexus",  "instance",     inst,         "repository",
                               repo,  "format", formats[i % 5], "blob_store", bs};
            double v = (double)((i * 7919 + c * 104729) % 1000003);
            if (sb_setv(sb, &fam[i % NFAM], NULL, v, l, 5, &e) < 0) {
                fprintf(stderr, "bench_spoolfill: %s\n", e.msg);
                return 1;
            }
        }
        sb_txn_commit(sb);
        struct sb_sample *v;
        size_t n;
        if (sb_snapshot(sb, sorted, &v, &n) < 0) {
            fprintf(stderr, "bench_spoolfill: out of memory\n");
            return 1;
        }
        double b = now_s();
        int acc = sender_submit(snd, sb, v, n);
        double d = now_s();
        free(v);
        if (acc < 0 || (size_t)acc * (size_t)snd->t[0]->max_samples < n) {
            fprintf(stderr, "bench_spoolfill: cycle %ld: only %d batches stored\n", c, acc);
            return 1;
        }
        t_buf += b - a;
        t_submit += d - b;
        batches += acc;
        total += (long)n;
    }
    double cpu = cpu_s() - c0, wall = now_s() - w0;
    printf("samples=%ld batches=%ld cpu_s=%.3f wall_s=%.3f buffer_s=%.3f submit_s=%.3f\n", total,
           batches, cpu, wall, t_buf, t_submit);
    sb_free(sb);
    sender_free(snd);
    config_free(cfg);
    return 0;
}
