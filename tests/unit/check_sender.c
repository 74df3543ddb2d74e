/* Unit tests for sender.c: backoff, write-ahead spooling, delivery
 * outcomes against a canned HTTP server (a forked child on a random
 * loopback port, stopped by PID), quarantine, spool caps. */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "config.h"
#include "remote.pb-c.h"
#include "remote_write.h"
#include "sender.h"
#include "sender_int.h"
#include "series.h"
#include "spool.h"
#include "util.h"

static char spooldir[PATH_MAX + 16];
static char reqdir[PATH_MAX + 16];

static void setup(void)
{
    tl_tmpdir_setup();
    snprintf(spooldir, sizeof spooldir, "%s/spool", tmpdir);
    snprintf(reqdir, sizeof reqdir, "%s/requests", tmpdir);
    ck_assert_int_eq(mkdir(reqdir, 0700), 0);
}

static void teardown(void)
{
    tl_tmpdir_teardown();
}

/* ---- a canned HTTP server ------------------------------------------------- */

struct canned {
    int status;
    const char *headers; /* extra response header lines, each ending in \r\n */
    const char *body;
};

static volatile sig_atomic_t server_stop;

static void on_term(int sig)
{
    (void)sig;
    server_stop = 1;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

/* Child: answers request i with script[min(i, n-1)], logging each request
 * (head and body) to reqdir/req-NNN. */
static void serve(int lfd, const struct canned *script, size_t n)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: accept() returns EINTR */
    for (int i = 0; !server_stop; i++) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR)
                break;
            continue;
        }
        static char req[1 << 20];
        size_t len = 0, need = 0;
        char *end = NULL;
        while (len < sizeof req - 1) {
            ssize_t r = read(c, req + len, sizeof req - 1 - len);
            if (r <= 0)
                break;
            len += (size_t)r;
            req[len] = '\0';
            if (!end && (end = strstr(req, "\r\n\r\n"))) {
                const char *cl = strcasestr(req, "\r\nContent-Length:");
                need = (size_t)(end + 4 - req) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
            }
            if (end && len >= need)
                break;
        }
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/req-%03d", reqdir, i);
        int f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (f >= 0) {
            write_all(f, req, len);
            close(f);
        }
        const struct canned *a = &script[(size_t)i < n ? (size_t)i : n - 1];
        const char *body = a->body ? a->body : "";
        char head[512];
        int hl =
            snprintf(head, sizeof head,
                     "HTTP/1.1 %d Canned\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                     a->status, strlen(body), a->headers ? a->headers : "");
        write_all(c, head, (size_t)hl);
        write_all(c, body, strlen(body));
        close(c);
    }
}

/* Starts the server; returns its pid and sets *port. Call it before
 * allocating anything: the child only serves, then _exits. */
static pid_t server_start(const struct canned *script, size_t n, int *port)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(lfd, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(lfd, 16), 0);
    socklen_t al = sizeof a;
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* never outlive the test, even when an assertion ends it early */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        alarm(120);
        serve(lfd, script, n);
        close(lfd);
        _exit(0);
    }
    close(lfd);
    return pid;
}

static void server_stop_pid(pid_t pid)
{
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
}

/* A port nothing listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

static size_t request_count(void)
{
    size_t n = 0;
    DIR *d = opendir(reqdir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    while ((de = readdir(d)))
        n += strncmp(de->d_name, "req-", 4) == 0;
    closedir(d);
    return n;
}

/* Request i: its head (NUL-terminated, malloc'd) and body (pointer into it). */
static char *request(int i, const char **body, size_t *blen)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/req-%03d", reqdir, i);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    char *data = NULL;
    struct err e;
    ck_assert_int_eq(read_file(path, 1 << 20, false, &data, &e), 0);
    char *end = strstr(data, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    end[2] = '\0';
    *body = end + 4;
    *blen = (size_t)st.st_size - (size_t)(end + 4 - data);
    return data;
}

/* ---- config and buffer helpers ---------------------------------------------- */

static struct config *make_config(const char *url, const char *extra_shipper, const char *extra_rw)
{
    char path[PATH_MAX + 32], text[4096];
    snprintf(path, sizeof path, "%s/sender.conf", tmpdir);
    snprintf(text, sizeof text,
             "[shipper]\nspool_dir = %s\ninstance = test\n%s\n"
             "[remote_write]\nurl = %s\ntimeout = 3s\nmin_backoff = 100ms\nmax_backoff = 1s\n"
             "%s\n%s\n",
             spooldir, extra_shipper ? extra_shipper : "", url,
             extra_rw && strstr(extra_rw, "max_samples_per_send") ? "" : "max_samples_per_send = 3",
             extra_rw ? extra_rw : "");
    return tl_load_config(path, text);
}

static const struct metric_desc m_x = {"sender_test_value", MT_GAUGE, "A value.", ""};

/* One cycle of `n` series at ts; snapshot in *v. */
static void cycle(struct series_buf *sb, int64_t ts, int n, struct sb_sample **v, size_t *nv)
{
    sb_begin_cycle(sb, ts);
    sb_txn_begin(sb, "t");
    char id[16];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%d", i);
        ck_assert_int_eq(sb_set(sb, &m_x, (double)(ts / 1000 + i), "id", id, NULL), 0);
    }
    sb_txn_commit(sb);
    ck_assert_int_eq(sb_snapshot(sb, false, v, nv), 0);
}

/* The value of the series `name` with target="default" (and k=val if k). */
static double value_of(const struct series_buf *sb, const struct sb_sample *v, size_t n,
                       const char *name, const char *k, const char *val)
{
    for (size_t i = 0; i < n; i++) {
        bool name_ok = false, target_ok = false, k_ok = k == NULL;
        for (size_t j = 0; j < sb_series_nlabels(sb, v[i].series); j++) {
            const char *ln, *lv;
            sb_series_label(sb, v[i].series, j, &ln, &lv);
            name_ok |= strcmp(ln, "__name__") == 0 && strcmp(lv, name) == 0;
            target_ok |= strcmp(ln, "target") == 0 && strcmp(lv, "default") == 0;
            k_ok |= k && strcmp(ln, k) == 0 && strcmp(lv, val) == 0;
        }
        if (name_ok && target_ok && k_ok)
            return v[i].value;
    }
    ck_abort_msg("%s{%s=%s} not found", name, k ? k : "", val ? val : "");
    return 0;
}

static struct seg_info *list_target(struct sender *s, const char *target, size_t *n)
{
    struct seg_info *v;
    ck_assert_int_eq(spool_list(s->spool, target, true, &v, n), 0);
    return v;
}

static int64_t now_base(void)
{
    return now_ms() / 1000 * 1000;
}

/* ---- backoff ----------------------------------------------------------------- */

START_TEST(test_backoff_bounds)
{
    uint32_t rng = 12345;
    const int64_t min = 500, max = 60000;
    for (unsigned f = 0; f < 20; f++) {
        int64_t cap = min;
        for (unsigned i = 0; i < f && cap < max; i++)
            cap *= 2;
        if (cap > max)
            cap = max;
        int64_t lo = INT64_MAX, hi = -1;
        for (int i = 0; i < 5000; i++) {
            int64_t d = backoff_ms(f, min, max, -1, &rng);
            ck_assert_msg(d >= 0 && d <= cap, "failures %u: %lld outside [0, %lld]", f,
                          (long long)d, (long long)cap);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* full jitter: the draws spread over the whole range */
        ck_assert_int_lt(lo, cap / 10 + 1);
        ck_assert_int_gt(hi, cap - cap / 10 - 1);
    }
    /* Retry-After is honoured, up to 10 x max */
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(backoff_ms(0, 10, 100, 700, &rng), 700);
        ck_assert_int_eq(backoff_ms(3, 10, 100, 5000, &rng), 1000);
        int64_t d = backoff_ms(0, 100, 1000, 50, &rng);
        ck_assert(d >= 50 && d <= 100);
        d = backoff_ms(2, 100, 1000, 0, &rng);
        ck_assert(d >= 0 && d <= 400);
    }
    /* a zero seed still produces numbers, and the state advances */
    rng = 0;
    backoff_ms(10, 1000, 100000, -1, &rng);
    ck_assert_uint_ne(rng, 0);
    uint32_t r1 = rng;
    backoff_ms(10, 1000, 100000, -1, &rng);
    ck_assert_uint_ne(rng, r1);
}
END_TEST

/* ---- write-ahead and unreachable receiver ------------------------------------------ */

START_TEST(test_submit_spools_then_retry_unreachable)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/write", closed_port());
    struct config *cfg = make_config(url, NULL, NULL);
    struct err e;
    struct sender *s = sender_new(cfg, &e);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(s->spool);
    ck_assert_uint_eq(s->n, 1);
    struct target *t = s->t[0];
    ck_assert_str_eq(t->name, "rw-default");
    ck_assert_str_eq(t->label, "default");
    ck_assert_int_eq(t->max_samples, 3);

    struct series_buf *sb = sb_new(&(struct sb_opts){0});
    struct sb_sample *v;
    size_t n;
    int64_t ts = now_base();
    cycle(sb, ts, 7, &v, &n);
    ck_assert_uint_eq(n, 7);
    ck_assert_int_eq(sender_submit(s, sb, v, n), 3);
    ck_assert_uint_eq(s->accepted_batches, 3);
    /* written ahead: three segments of 3, 3, 1 samples, nothing sent */
    size_t ns;
    struct seg_info *segs = list_target(s, "rw-default", &ns);
    ck_assert_uint_eq(ns, 3);
    const uint32_t want[] = {3, 3, 1};
    size_t off = 0;
    for (size_t i = 0; i < ns; i++) {
        ck_assert(segs[i].meta_ok);
        ck_assert_uint_eq(segs[i].m.samples, want[i]);
        ck_assert_int_eq(segs[i].m.kind, SEG_REMOTE_WRITE);
        ck_assert_int_eq(segs[i].m.min_ts, ts);
        ck_assert_int_eq(segs[i].m.max_ts, ts);
        struct seg_meta m;
        struct buf p;
        buf_init(&p, 0);
        ck_assert_int_eq(spool_read_rec(&segs[i], &m, &p, &e), 0);
        Prometheus__WriteRequest *wr = rw_decode(p.data, p.len, &e);
        ck_assert_ptr_nonnull(wr);
        ck_assert_uint_eq(wr->n_timeseries, want[i]);
        for (size_t k = 0; k < wr->n_timeseries; k++) {
            ck_assert_double_eq(wr->timeseries[k]->samples[0]->value, v[off + k].value);
            ck_assert_int_eq(wr->timeseries[k]->samples[0]->timestamp, ts);
        }
        off += wr->n_timeseries;
        rw_decoded_free(wr);
        buf_free(&p);
    }
    free(segs);
    ck_assert_uint_eq(t->samples_sent, 0);
    ck_assert_uint_eq(t->samples_retried, 0);
    ck_assert_uint_eq(sender_backlog(s), 3);

    /* the receiver is unreachable: everything stays, one attempt counted */
    int64_t before = mono_ms();
    ck_assert_uint_eq(sender_deliver(s, mono_ms() + 10000, 0, 0), 3);
    ck_assert_uint_eq(t->samples_retried, 3);
    ck_assert_uint_eq(t->samples_sent, 0);
    ck_assert_uint_eq(t->failures, 1);
    ck_assert_int_ge(t->next_try_mono, before);
    ck_assert_int_le(t->next_try_mono, mono_ms() + 100);
    segs = list_target(s, "rw-default", &ns);
    ck_assert_uint_eq(ns, 3);
    free(segs);
    /* while backing off, nothing is attempted */
    t->next_try_mono = mono_ms() + 60000;
    ck_assert_uint_eq(sender_deliver(s, mono_ms() + 10000, 0, 0), 3);
    ck_assert_uint_eq(t->samples_retried, 3);
    /* after it, the next attempt doubles the cap */
    t->next_try_mono = 0;
    sender_deliver(s, mono_ms() + 10000, 0, 0);
    ck_assert_uint_eq(t->samples_retried, 6);
    ck_assert_uint_eq(t->failures, 2);
    ck_assert_uint_eq(sender_backlog(s), 3);
    /* the spool gauges follow */
    sender_housekeeping(s);
    ck_assert_uint_eq(t->spool_segments, 3);
    ck_assert_uint_gt(t->spool_bytes, 0);
    ck_assert_int_ge(t->spool_oldest_ms, ts - 5000);
    free(v);
    sb_free(sb);
    sender_free(s);
    config_free(cfg);
}
END_TEST

/* ---- delivery outcomes against the canned server ------------------------------------ */

START_TEST(test_deliver_ok)
{
    static const struct canned script[] = {{204, NULL, NULL}};
    int port;
    pid_t pid = server_start(script, 1, &port);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/write", port);
    struct config *cfg = make_config(url, NULL, "headers = X-Team: nexus\ntenant = team-a");
    struct err e;
    struct sender *s = sender_new(cfg, &e);
    ck_assert_ptr_nonnull(s);
    struct target *t = s->t[0];
    struct series_buf *sb = sb_new(&(struct sb_opts){0});
    struct sb_sample *v;
    size_t n;
    int64_t ts = now_base();
    cycle(sb, ts, 7, &v, &n);
    ck_assert_int_eq(sender_submit(s, sb, v, n), 3);
    ck_assert_uint_eq(request_count(), 0); /* nothing sent by submit */
    size_t ns;
    struct seg_info *segs = list_target(s, "rw-default", &ns);
    uint64_t payload_bytes = 0;
    for (size_t i = 0; i < ns; i++) {
        struct seg_meta m;
        struct buf p;
        buf_init(&p, 0);
        ck_assert_int_eq(spool_read_rec(&segs[i], &m, &p, &e), 0);
        payload_bytes += p.len;
        buf_free(&p);
    }
    free(segs);
    ck_assert_uint_eq(sender_deliver(s, mono_ms() + 10000, 0, 0), 0);
    ck_assert_uint_eq(t->samples_sent, 7);
    ck_assert_uint_eq(t->batches_sent, 3);
    ck_assert_uint_eq(t->bytes_sent, payload_bytes);
    ck_assert_uint_eq(t->samples_retried, 0);
    ck_assert_int_gt(t->last_success_ms, 0);
    ck_assert_uint_eq(t->failures, 0);
    ck_assert_uint_eq(sender_backlog(s), 0);
    segs = list_target(s, "rw-default", &ns);
    ck_assert_uint_eq(ns, 0);
    free(segs);
    /* the receiver saw three POSTs, oldest first, with the remote-write headers */
    ck_assert_uint_eq(request_count(), 3);
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        const char *body;
        size_t blen;
        char *head = request(i, &body, &blen);
        ck_assert(str_has_prefix(head, "POST /api/v1/write HTTP/1.1\r\n"));
        ck_assert_ptr_nonnull(strcasestr(head, "\r\nContent-Encoding: snappy\r\n"));
        ck_assert_ptr_nonnull(strcasestr(head, "\r\nContent-Type: application/x-protobuf\r\n"));
        ck_assert_ptr_nonnull(strcasestr(head, "\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n"));
        ck_assert_ptr_nonnull(strcasestr(head, "\r\nUser-Agent: nexus-shipper/"));
        ck_assert_ptr_nonnull(strcasestr(head, "\r\nX-Team: nexus\r\n"));
        ck_assert_ptr_nonnull(strcasestr(head, "\r\nX-Scope-OrgID: team-a\r\n"));
        Prometheus__WriteRequest *wr = rw_decode(body, blen, &e);
        ck_assert_msg(wr != NULL, "%s", e.msg);
        for (size_t k = 0; k < wr->n_timeseries; k++)
            ck_assert_double_eq(wr->timeseries[k]->samples[0]->value, v[off + k].value);
        off += wr->n_timeseries;
        rw_decoded_free(wr);
        free(head);
    }
    ck_assert_uint_eq(off, 7);
    /* the delivery counters are published */
    free(v);
    sb_begin_cycle(sb, ts + 1000);
    sb_txn_begin(sb, "self");
    sender_metrics(s, sb);
    sb_txn_commit(sb);
    ck_assert_int_eq(sb_snapshot(sb, false, &v, &n), 0);
    ck_assert_double_eq(value_of(sb, v, n, "nexus_shipper_samples_total", "outcome", "sent"), 7);
    ck_assert_double_eq(value_of(sb, v, n, "nexus_shipper_samples_total", "outcome", "retried"), 0);
    ck_assert_double_eq(value_of(sb, v, n, "nexus_shipper_batches_sent_total", NULL, NULL), 3);
    ck_assert_double_eq(value_of(sb, v, n, "nexus_shipper_sent_bytes_total", NULL, NULL),
                        (double)payload_bytes);
    ck_assert_double_eq(value_of(sb, v, n, "nexus_shipper_send_duration_seconds_count", NULL, NULL),
                        3);
    free(v);
    sb_free(sb);
    sender_free(s);
    config_free(cfg);
    server_stop_pid(pid);
}
END_TEST

static char *quarantine_reason(const char *seg_name)
{
    char p[PATH_MAX + 200];
    snprintf(p, sizeof p, "%s/quarantine/rw-default__%s.reason", spooldir, seg_name);
    char *s = NULL;
    struct err e;
    if (read_file(p, 1 << 16, false, &s, &e) < 0)
        return NULL;
    /* "file: ...\noffset: ...\nlength: ...\n" name the record; then reason */
    char *r = strstr(s, "reason: ");
    ck_assert_ptr_nonnull(r);
    ck_assert(str_has_prefix(s, "file: "));
    memmove(s, r, strlen(r) + 1);
    return s;
}

START_TEST(test_deliver_drop_quarantines)
{
    static const struct canned script[] = {
        {400, NULL, "out of bounds: sample timestamp out of bounds"},
        {400, NULL, "label name \"a\" is not unique"},
        {401, NULL, "no"},
        {204, NULL, NULL},
    };
    int port;
    pid_t pid = server_start(script, NS_ARRAY_LEN(script), &port);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/write", port);
    struct config *cfg = make_config(url, NULL, NULL);
    struct err e;
    struct sender *s = sender_new(cfg, &e);
    struct target *t = s->t[0];
    struct series_buf *sb = sb_new(&(struct sb_opts){0});
    struct sb_sample *v;
    size_t n;
    cycle(sb, now_base(), 10, &v, &n); /* batches of 3, 3, 3, 1 */
    ck_assert_int_eq(sender_submit(s, sb, v, n), 4);
    size_t ns;
    struct seg_info *segs = list_target(s, "rw-default", &ns);
    ck_assert_uint_eq(ns, 4);
    /* a drop never stops delivery: all four go out in one call */
    ck_assert_uint_eq(sender_deliver(s, mono_ms() + 10000, 0, 0), 0);
    ck_assert_uint_eq(request_count(), 4);
    ck_assert_uint_eq(t->samples_dropped[DROP_OUT_OF_BOUNDS], 3);
    ck_assert_uint_eq(t->samples_dropped[DROP_REJECTED], 3);
    ck_assert_uint_eq(t->samples_dropped[DROP_UNAUTHORIZED], 3);
    ck_assert_uint_eq(t->samples_sent, 1);
    ck_assert_uint_eq(t->samples_retried, 0);
    /* quarantined with the receiver's answer */
    char *r = quarantine_reason(segs[0].name);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r, "reason: out_of_bounds\nanswer:\nHTTP 400: out of bounds: sample timestamp "
                        "out of bounds\n");
    free(r);
    r = quarantine_reason(segs[1].name);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r, "reason: rejected\nanswer:\nHTTP 400: label name \"a\" is not unique\n");
    free(r);
    r = quarantine_reason(segs[2].name);
    ck_assert_ptr_nonnull(r);
    ck_assert(str_has_prefix(r, "reason: unauthorized\n"));
    free(r);
    ck_assert_ptr_null(quarantine_reason(segs[3].name)); /* delivered, removed */
    char qseg[PATH_MAX + 200];
    snprintf(qseg, sizeof qseg, "%s/quarantine/rw-default__%s", spooldir, segs[0].name);
    ck_assert_int_eq(access(qseg, F_OK), 0);
    /* the quarantined copy is a standalone segment: readable as a file */
    struct seg_meta qm;
    struct buf qp;
    buf_init(&qp, 0);
    ck_assert_int_eq(spool_read(qseg, &qm, &qp, &e), 0);
    ck_assert_uint_eq(qm.samples, 3);
    buf_free(&qp);
    free(segs);
    segs = list_target(s, "rw-default", &ns);
    ck_assert_uint_eq(ns, 0);
    free(segs);
    free(v);
    sb_free(sb);
    sender_free(s);
    config_free(cfg);
    server_stop_pid(pid);
}
END_TEST

START_TEST(test_deliver_retry_after)
{
    static const struct canned script[] = {
        {503, "Retry-After: 2\r\n", "overloaded"},
        {429, NULL, "slow down"},
        {204, NULL, NULL},
    };
    int port;
    pid_t pid = server_start(script, NS_ARRAY_LEN(script), &port);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/write", port);
    struct config *cfg = make_config(url, NULL, NULL);
    struct err e;
    struct sender *s = sender_new(cfg, &e);
    struct target *t = s->t[0];
    struct series_buf *sb = sb_new(&(struct sb_opts){0});
    struct sb_sample *v;
    size_t n;
    cycle(sb, now_base(), 5, &v, &n); /* batches of 3 and 2 */
    ck_assert_int_eq(sender_submit(s, sb, v, n), 2);
    int64_t t0 = mono_ms();
    ck_assert_uint_eq(sender_deliver(s, mono_ms() + 10000, 0, 0), 2);
    ck_assert_uint_eq(request_count(), 1); /* a retry stops the target */
    ck_assert_uint_eq(t->samples_retried, 3);
    ck_assert_uint_eq(t->failures, 1);
    /* Retry-After: 2 (max_backoff 1s, so capped at 10 s, not at 1 s) */
    ck_assert_int_ge(t->next_try_mono, t0 + 2000);
    ck_assert_int_le(t->next_try_mono, mono_ms() + 2000);
    ck_assert_uint_eq(sender_deliver(s, mono_ms() + 10000, 0, 0), 2);
    ck_assert_uint_eq(request_count(), 1); /* still backing off */
    t->next_try_mono = 0;
    ck_assert_uint_eq(sender_deliver(s, mono_ms() + 10000, 0, 0), 2); /* 429: retry again */
    ck_assert_uint_eq(request_count(), 2);
    ck_assert_uint_eq(t->samples_retried, 6);
    ck_assert_uint_eq(t->failures, 2);
    t->next_try_mono = 0;
    ck_assert_uint_eq(sender_deliver(s, mono_ms() + 10000, 0, 0), 0);
    ck_assert_uint_eq(request_count(), 4);
    ck_assert_uint_eq(t->samples_sent, 5);
    ck_assert_uint_eq(t->failures, 0);
    ck_assert_int_eq(t->next_try_mono, 0);
    /* the same batch was sent three times */
    const char *b0, *b2;
    size_t l0, l2;
    char *h0 = request(0, &b0, &l0), *h2 = request(2, &b2, &l2);
    ck_assert_uint_eq(l0, l2);
    ck_assert_mem_eq(b0, b2, l0);
    free(h0);
    free(h2);
    free(v);
    sb_free(sb);
    sender_free(s);
    config_free(cfg);
    server_stop_pid(pid);
}
END_TEST

START_TEST(test_deliver_limits_and_corrupt)
{
    static const struct canned script[] = {{200, NULL, "ok"}};
    int port;
    pid_t pid = server_start(script, 1, &port);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/write", port);
    struct config *cfg = make_config(url, NULL, NULL);
    struct err e;
    struct sender *s = sender_new(cfg, &e);
    struct target *t = s->t[0];
    struct series_buf *sb = sb_new(&(struct sb_opts){0});
    struct sb_sample *v;
    size_t n;
    cycle(sb, now_base(), 12, &v, &n); /* 4 batches of 3 */
    ck_assert_int_eq(sender_submit(s, sb, v, n), 4);
    /* damage the second segment's payload: header intact, CRC fails */
    size_t ns;
    struct seg_info *segs = list_target(s, "rw-default", &ns);
    ck_assert_uint_eq(ns, 4);
    FILE *f = fopen(segs[1].path, "r+b");
    ck_assert_ptr_nonnull(f);
    long at = (long)(segs[1].offset + segs[1].file_size - 3); /* in its payload */
    fseek(f, at, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(ch ^ 0x55, f);
    fclose(f);
    /* max_batches = 1: one send per call */
    ck_assert_uint_eq(sender_deliver(s, mono_ms() + 10000, 1, 0), 3);
    ck_assert_uint_eq(request_count(), 1);
    ck_assert_uint_eq(t->samples_sent, 3);
    /* the damaged one is quarantined (not sent), counted as corrupt */
    ck_assert_uint_eq(sender_deliver(s, mono_ms() + 10000, 1, 0), 1);
    ck_assert_uint_eq(t->samples_dropped[DROP_CORRUPT], 3);
    ck_assert_uint_eq(request_count(), 2);
    char q[PATH_MAX + 200];
    snprintf(q, sizeof q, "%s/quarantine/rw-default__%s.reason", spooldir, segs[1].name);
    char *r = NULL;
    ck_assert_int_eq(read_file(q, 1 << 16, false, &r, &e), 0);
    ck_assert_ptr_nonnull(strstr(r, "payload CRC mismatch"));
    free(r);
    /* a deadline in the past sends nothing */
    ck_assert_uint_eq(sender_deliver(s, mono_ms() - 1, 0, 0), 1);
    ck_assert_uint_eq(request_count(), 2);
    ck_assert_uint_eq(sender_deliver(s, 0, 0, 0), 0);
    ck_assert_uint_eq(request_count(), 3);
    ck_assert_uint_eq(t->samples_sent, 9);
    free(segs);
    free(v);
    sb_free(sb);
    sender_free(s);
    config_free(cfg);
    server_stop_pid(pid);
}
END_TEST

START_TEST(test_pushgateway)
{
    static const struct canned script[] = {{202, NULL, NULL}};
    int port;
    pid_t pid = server_start(script, 1, &port);
    char pg[256];
    snprintf(pg, sizeof pg, "[pushgateway]\nurl = http://127.0.0.1:%d/\n", port);
    char path[PATH_MAX + 32], text[4096];
    snprintf(path, sizeof path, "%s/pg.conf", tmpdir);
    snprintf(text, sizeof text, "[shipper]\nspool_dir = %s\n%s", spooldir, pg);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    struct err e;
    struct config *cfg = config_load(path, &e);
    ck_assert_msg(cfg != NULL, "%s", e.msg);
    struct sender *s = sender_new(cfg, &e);
    ck_assert_ptr_nonnull(s);
    /* no [remote_write]: remote-write batches are only spooled; the
     * Pushgateway still delivers */
    ck_assert_uint_eq(s->n, 2);
    ck_assert(s->t[0]->spool_only);
    struct target *pt = s->t[1];
    ck_assert_int_eq(pt->kind, SEG_PUSHGATEWAY);
    ck_assert(!pt->spool_only);
    s->spool_only = true; /* [shipper] spool_only: nothing at all is sent */
    const char *b1 = "# TYPE a gauge\na 1\n", *b2 = "# TYPE a gauge\na 2\n";
    ck_assert_int_eq(sender_submit_push(s, "PUT", "/metrics/job/x", b1, strlen(b1)), 1);
    ck_assert_int_eq(sender_submit_push(s, "PUT", "/metrics/job/x", b2, strlen(b2)), 1);
    ck_assert_int_eq(sender_submit_push(s, "POST", "/metrics/job/y/k/v", b1, strlen(b1)), 1);
    size_t ns;
    struct seg_info *segs = list_target(s, "pushgateway", &ns);
    ck_assert_uint_eq(ns, 2); /* the older push of group x was superseded */
    ck_assert_str_eq(segs[0].m.extra, "PUT /metrics/job/x");
    free(segs);
    /* spool_only: nothing is delivered */
    sender_deliver(s, mono_ms() + 10000, 0, 0);
    ck_assert_uint_eq(request_count(), 0);
    s->spool_only = false;
    s->t[0]->next_try_mono = mono_ms() + 60000; /* keep the unreachable one out of the way */
    ck_assert_uint_eq(sender_deliver(s, mono_ms() + 10000, 0, 0), 0);
    ck_assert_uint_eq(request_count(), 2);
    const char *body;
    size_t blen;
    char *head = request(0, &body, &blen);
    ck_assert(str_has_prefix(head, "PUT /metrics/job/x HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strcasestr(head, "\r\nContent-Type: text/plain; version=0.0.4"));
    ck_assert_uint_eq(blen, strlen(b2));
    ck_assert_mem_eq(body, b2, blen);
    free(head);
    head = request(1, &body, &blen);
    ck_assert(str_has_prefix(head, "POST /metrics/job/y/k/v HTTP/1.1\r\n"));
    free(head);
    sender_free(s);
    config_free(cfg);
    server_stop_pid(pid);
}
END_TEST

/* ---- spool_max_size ------------------------------------------------------------------ */

START_TEST(test_spool_cap_drops_oldest)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/write", closed_port());
    struct config *cfg = make_config(url, "spool_max_size = 3KiB", "max_samples_per_send = 2");
    ck_assert_int_eq(cfg->rw[0]->max_samples_per_send, 2);
    struct err e;
    struct sender *s = sender_new(cfg, &e);
    struct target *t = s->t[0];
    struct series_buf *sb = sb_new(&(struct sb_opts){0});
    /* every cycle: 5 samples = batches of 2, 2, 1; remember them in order */
    int64_t bts[200];
    uint32_t bsamples[200];
    size_t nb = 0;
    uint64_t submitted = 0;
    int64_t ts0 = now_base();
    for (int c = 0; c < 20; c++) {
        struct sb_sample *v;
        size_t n;
        cycle(sb, ts0 + c * 1000, 5, &v, &n);
        ck_assert_uint_eq(n, 5);
        ck_assert_int_eq(sender_submit(s, sb, v, n), 3);
        free(v);
        const uint32_t per[] = {2, 2, 1};
        for (int k = 0; k < 3; k++) {
            bts[nb] = ts0 + c * 1000;
            bsamples[nb++] = per[k];
        }
        submitted += 5;
        struct spool_usage u;
        ck_assert_int_eq(spool_usage(s->spool, NULL, &u), 0);
        ck_assert_uint_le(u.bytes, 3 * 1024);
    }
    size_t ns;
    struct seg_info *segs = list_target(s, "rw-default", &ns);
    ck_assert_uint_gt(ns, 2);
    ck_assert_uint_lt(ns, nb);
    /* what is left is exactly the newest batches, in order */
    uint64_t left = 0;
    for (size_t i = 0; i < ns; i++) {
        size_t k = nb - ns + i;
        ck_assert_int_eq(segs[i].m.min_ts, bts[k]);
        ck_assert_uint_eq(segs[i].m.samples, bsamples[k]);
        left += segs[i].m.samples;
    }
    uint64_t dropped = 0;
    for (size_t k = 0; k < nb - ns; k++)
        dropped += bsamples[k];
    ck_assert_uint_eq(t->samples_dropped[DROP_SPOOL_FULL], dropped);
    ck_assert_uint_eq(left + t->samples_dropped[DROP_SPOOL_FULL], submitted);
    for (int r = 0; r < DROP_NREASONS; r++)
        if (r != DROP_SPOOL_FULL)
            ck_assert_uint_eq(t->samples_dropped[r], 0);
    free(segs);
    sb_free(sb);
    sender_free(s);
    config_free(cfg);
}
END_TEST

START_TEST(test_spool_age)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/write", closed_port());
    struct config *cfg = make_config(url, "spool_max_age = 1s", NULL);
    struct err e;
    struct sender *s = sender_new(cfg, &e);
    struct target *t = s->t[0];
    struct series_buf *sb = sb_new(&(struct sb_opts){0});
    struct sb_sample *v;
    size_t n;
    cycle(sb, now_base(), 4, &v, &n);
    ck_assert_int_eq(sender_submit(s, sb, v, n), 2);
    free(v);
    sender_housekeeping(s);
    ck_assert_uint_eq(sender_backlog(s), 2);
    usleep(1300 * 1000);
    sender_housekeeping(s);
    ck_assert_uint_eq(sender_backlog(s), 0);
    ck_assert_uint_eq(t->samples_dropped[DROP_SPOOL_AGE], 4);
    ck_assert_uint_eq(t->spool_segments, 0);
    sb_free(sb);
    sender_free(s);
    config_free(cfg);
}
END_TEST

static Suite *sender_suite(void)
{
    Suite *s = suite_create("sender");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_backoff_bounds);
    tcase_add_test(tc, test_submit_spools_then_retry_unreachable);
    tcase_add_test(tc, test_deliver_ok);
    tcase_add_test(tc, test_deliver_drop_quarantines);
    tcase_add_test(tc, test_deliver_retry_after);
    tcase_add_test(tc, test_deliver_limits_and_corrupt);
    tcase_add_test(tc, test_pushgateway);
    tcase_add_test(tc, test_spool_cap_drops_oldest);
    tcase_add_test(tc, test_spool_age);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return tl_run(sender_suite(), "sender");
}
