#include "spool_cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "http.h"
#include "log.h"
#include "progress.h"
#include "remote_write.h"
#include "sender.h"
#include "spool.h"
#include "spool_archive.h"
#include "exitcodes.h"

static const char help_text[] =
    "Usage: nexus-shipper [-c FILE] spool COMMAND\n"
    "  ls [-v]                      batches (segments) per target, samples, bytes,\n"
    "                               time range\n"
    "  replay [--url URL] [--target NAME] [--rate N]\n"
    "                               deliver spooled remote-write batches oldest first\n"
    "                               (to URL, or each target's configured url); a batch\n"
    "                               is marked done only after a 2xx, so an interrupted\n"
    "                               replay resumes where it stopped; records that are\n"
    "                               not what their target sends are quarantined; exits\n"
    "                               non-zero when anything is left\n"
    "  export --to FILE [--target NAME]\n"
    "                               write every segment into one verified archive\n"
    "                               (signed with [shipper] archive_key_file when set)\n"
    "  import FILE                  verify an archive and add its segments to the spool;\n"
    "                               importing the same archive twice adds nothing; with\n"
    "                               archive_key_file set, unsigned or wrongly signed\n"
    "                               archives are refused\n"
    "  purge [--target NAME] [--quarantine]\n"
    "                               delete spooled batches (or the quarantine); refused\n"
    "                               while a daemon holds the spool lock\n";

const char *const spool_cli_usage = help_text;

static void fmt_ts(int64_t ms, char *out, size_t n)
{
    if (!ms) {
        snprintf(out, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *arg_value(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static bool has_flag(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

static int cmd_ls(struct spool *sp, int argc, char **argv)
{
    bool verbose = has_flag(argc, argv, "-v") || has_flag(argc, argv, "--verbose");
    int rc = EXIT_OK;
    char **targets;
    size_t nt;
    if (spool_targets(sp, &targets, &nt) < 0) {
        fprintf(stderr, "spool ls: cannot read %s: %s\n", spool_dir(sp), strerror(errno));
        return EXIT_FAIL;
    }
    printf("%-20s %9s %12s %12s  %-20s  %-20s\n", "TARGET", "SEGMENTS", "SAMPLES", "BYTES",
           "FIRST SAMPLE", "LAST SAMPLE");
    for (size_t t = 0; t < nt; t++) {
        struct seg_info *v;
        size_t n;
        if (spool_list(sp, targets[t], true, &v, &n) < 0) {
            fprintf(stderr, "spool ls: cannot list %s/%s: %s\n", spool_dir(sp), targets[t],
                    strerror(errno));
            rc = EXIT_FAIL;
            continue;
        }
        uint64_t samples = 0, bytes = 0, bad = 0;
        int64_t lo = 0, hi = 0;
        for (size_t i = 0; i < n; i++) {
            if (!v[i].meta_ok) {
                bad++;
                if (verbose)
                    printf("  %s: DAMAGED: %s\n", v[i].name, v[i].problem);
                continue;
            }
            samples += v[i].m.samples;
            bytes += v[i].file_size;
            if (!lo || v[i].m.min_ts < lo)
                lo = v[i].m.min_ts;
            if (v[i].m.max_ts > hi)
                hi = v[i].m.max_ts;
            if (verbose) {
                char a[32];
                fmt_ts(v[i].m.min_ts, a, sizeof a);
                struct err ce; /* extra comes from a file: never raw bytes to the terminal */
                bool ok = spool_record_check(&v[i].m, targets[t], &ce) == 0;
                printf("  %s  %u samples  %llu bytes  %s%s%s%s\n", v[i].name, v[i].m.samples,
                       (unsigned long long)v[i].file_size, a, v[i].m.extra[0] ? "  " : "",
                       ok ? v[i].m.extra : (v[i].m.extra[0] ? "(not shown)" : ""),
                       ok ? "" : "  INVALID: quarantined at the next delivery");
            }
        }
        char a[32], b[32];
        fmt_ts(lo, a, sizeof a);
        fmt_ts(hi, b, sizeof b);
        printf("%-20s %9zu %12llu %12llu  %-20s  %-20s%s\n", targets[t], n - bad,
               (unsigned long long)samples, (unsigned long long)bytes, a, b,
               bad ? "  (damaged files present: they are quarantined at the next delivery)" : "");
        free(v);
    }
    strv_free(targets, nt);
    char q[PATH_MAX];
    snprintf(q, sizeof q, "%s/quarantine", spool_dir(sp));
    size_t segs = 0;
    DIR *d = opendir(q);
    for (struct dirent *de; d && (de = readdir(d));)
        segs += de->d_name[0] != '.' && !str_has_suffix(de->d_name, ".reason");
    if (d)
        closedir(d);
    printf("quarantine: %zu item%s in %s\n", segs, segs == 1 ? "" : "s", q);
    return rc;
}

/* progress of a replay: batches delivered or quarantined so far */
static void replay_progress(struct sender *snd, struct progress *pg)
{
    uint64_t done = sender_quarantined(snd);
    for (size_t i = 0; pg && i < sender_n_targets(snd); i++) {
        struct sender_target_status ts;
        if (sender_target_status(snd, i, &ts) == 0)
            done += ts.batches_sent;
    }
    progress_update(pg, done, NULL);
}

static int cmd_replay(const struct config *cfg, struct spool *sp, int argc, char **argv,
                      const volatile sig_atomic_t *stop)
{
    const char *url = arg_value(argc, argv, "--url");
    const char *only = arg_value(argc, argv, "--target");
    const char *rate_s = arg_value(argc, argv, "--rate");
    int64_t rate = cfg->shipper.replay_rate;
    if (rate_s && (parse_int64(rate_s, &rate) < 0 || rate < 0)) {
        fprintf(stderr, "spool replay: --rate wants a number of batches per second\n");
        return EXIT_USAGE;
    }
    (void)sp; /* the sender opens the spool itself */
    struct err e;
    struct sender *snd = sender_new_replay(cfg, url, only, &e);
    if (!snd) {
        fprintf(stderr, "spool replay: %s\n", e.msg);
        return EXIT_FAIL;
    }
    long pid = 0;
    enum writer_state ws = sender_take_writer(snd, false, 0, stop, &pid);
    if (ws == WRITER_DAEMON || ws == WRITER_BUSY) {
        if (ws == WRITER_DAEMON)
            fprintf(stderr,
                    "spool replay: the daemon (pid %ld) delivers from this spool; it replays "
                    "it itself (stop it to replay by hand)\n",
                    pid);
        else
            fprintf(stderr, "spool replay: another nexus-shipper is replaying this spool (lock "
                            "held); try later\n");
        sender_free(snd);
        return EXIT_FAIL;
    }
    /* no abort flag: a SIGTERM lets the send in flight finish (and be marked
     * done) before the loop stops, so an interrupted replay resumes without
     * sending that batch twice; each sender_deliver call below lasts about a
     * second (its deadline), so the stop is seen within a second and a send */
    size_t backlog = sender_backlog(snd);
    struct progress *pg = backlog ? progress_new(stderr, "spool replay", "batches", backlog) : NULL;
    /* the daemon's delivery loop (sender_deliver), until the spool is empty
     * or a target fails; with a rate, one batch at a time, evenly spaced */
    bool failed = false, interrupted = false;
    int64_t t0 = mono_ms();
    uint64_t paced = 0;
    for (;;) {
        if (stop && *stop) {
            interrupted = true;
            break;
        }
        int64_t slice = mono_ms();
        size_t left = sender_deliver(snd, slice + 1000, rate > 0 ? 1 : 0, 0);
        paced++;
        replay_progress(snd, pg);
        if (!left)
            break;
        bool progress_possible = false;
        for (size_t i = 0; i < sender_n_targets(snd); i++) {
            struct sender_target_status ts;
            if (sender_target_status(snd, i, &ts) < 0 || !ts.batches_left_at_stop)
                continue;
            if (ts.failures)
                failed = true;
            else if (!ts.spool_only)
                progress_possible = true;
        }
        if (failed || !progress_possible)
            break;
        if (rate > 0 && !(stop && *stop))
            sleep_until_mono(t0 + (int64_t)(paced * 1000 / (uint64_t)rate));
    }
    progress_done(pg, interrupted ? "interrupted" : NULL);
    uint64_t ok = 0, samples = 0;
    size_t n_left = 0;
    for (size_t i = 0; i < sender_n_targets(snd); i++) {
        struct sender_target_status ts;
        if (sender_target_status(snd, i, &ts) < 0)
            continue;
        ok += ts.batches_sent;
        samples += ts.samples_sent;
        n_left += ts.batches_left_at_stop;
        if (!ts.batches_left_at_stop || interrupted)
            continue;
        if (ts.spool_only && ts.kind == SEG_PUSHGATEWAY)
            fprintf(stderr, "spool replay: %s: %llu push(es) left: no [pushgateway] configured\n",
                    ts.name, (unsigned long long)ts.batches_left_at_stop);
        else if (ts.spool_only)
            fprintf(stderr, "spool replay: no url for target %s (give --url)\n", ts.name);
        else if (ts.failures)
            fprintf(stderr,
                    "spool replay: %s unavailable (%s); %llu segment(s) left, run again to "
                    "resume\n",
                    ts.label, ts.last_error[0] ? ts.last_error : "no answer",
                    (unsigned long long)ts.batches_left_at_stop);
        else
            fprintf(stderr, "spool replay: %s: %llu segment(s) left, run again to resume\n",
                    ts.label, (unsigned long long)ts.batches_left_at_stop);
    }
    if (interrupted)
        fprintf(stderr, "spool replay: interrupted; %zu segment(s) left, run again to resume\n",
                n_left);
    uint64_t refused = sender_refused(snd);
    if (refused)
        fprintf(stderr,
                "spool replay: %llu record(s) refused and quarantined: not what their target "
                "sends (see %s/quarantine)\n",
                (unsigned long long)refused, cfg->shipper.spool_dir);
    printf("replayed %llu segment(s), %llu samples; %llu quarantined\n", (unsigned long long)ok,
           (unsigned long long)samples, (unsigned long long)sender_quarantined(snd));
    sender_free(snd);
    return n_left || interrupted || refused ? EXIT_FAIL : EXIT_OK;
}

static int cmd_export(const struct config *cfg, struct spool *sp, int argc, char **argv)
{
    const char *to = arg_value(argc, argv, "--to");
    const char *only = arg_value(argc, argv, "--target");
    if (!to) {
        fprintf(stderr, "spool export: --to FILE is required\n");
        return EXIT_USAGE;
    }
    const char *key = cfg->shipper.archive_key;
    struct seg_info *v;
    size_t n;
    if (spool_list(sp, only, true, &v, &n) < 0) {
        fprintf(stderr, "spool export: cannot list %s: %s; nothing exported\n", spool_dir(sp),
                strerror(errno));
        return EXIT_FAIL;
    }
    int rc = EXIT_FAIL;
    struct buf payload;
    buf_init(&payload, 0);
    json_object *man = json_object_new_object(), *segs = json_object_new_array();
    struct buf *datas = calloc(n ? n : 1, sizeof *datas);
    struct spool_archive_out a = {.sign = key && *key};
    struct progress *pg = progress_new(stderr, "spool export", "segments", n);
    if (!man || !segs || !datas)
        goto out;
    json_object_object_add(man, "format", json_object_new_string("nexus-shipper spool export 1"));
    json_object_object_add(man, "created_ms", json_object_new_int64(now_ms()));
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    json_object_object_add(man, "host", json_object_new_string(host));
    uint64_t total_samples = 0;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        progress_update(pg, i + 1, NULL);
        buf_init(&datas[i], 0);
        struct err e;
        struct seg_meta m;
        errno = 0;
        int rr = spool_read_rec(&v[i], &m, &payload, &e);
        if (rr == 1)
            continue;                    /* delivered meanwhile */
        if (rr < 0 && errno == ENOMEM) { /* not damaged: no archive rather than one short */
            fprintf(stderr, "spool export: %s\n", e.msg);
            goto out;
        }
        if (rr < 0) {
            fprintf(stderr, "spool export: skipping damaged %s: %s\n", v[i].name, e.msg);
            continue;
        }
        if (spool_record_check(&m, v[i].target, &e) < 0) { /* an import would refuse it */
            fprintf(stderr, "spool export: skipping %s in %s: %s\n", v[i].name, v[i].path, e.msg);
            continue;
        }
        if (spool_encode(&m, payload.data, payload.len, &datas[i]) < 0) {
            fprintf(stderr, "spool export: out of memory\n");
            goto out;
        }
        json_object *s = json_object_new_object();
        json_object_object_add(s, "target", json_object_new_string(m.target));
        json_object_object_add(s, "name", json_object_new_string(v[i].name));
        json_object_object_add(s, "size", json_object_new_int64((int64_t)datas[i].len));
        char crc[16];
        snprintf(crc, sizeof crc, "%08x", crc32c(0, datas[i].data, datas[i].len));
        json_object_object_add(s, "crc32c", json_object_new_string(crc));
        json_object_object_add(s, "samples", json_object_new_int64(m.samples));
        json_object_object_add(s, "min_ts", json_object_new_int64(m.min_ts));
        json_object_object_add(s, "max_ts", json_object_new_int64(m.max_ts));
        json_object_array_add(segs, s);
        total_samples += m.samples;
        kept++;
    }
    json_object_object_add(man, "samples", json_object_new_int64((int64_t)total_samples));
    json_object_object_add(man, "segments", segs);
    segs = NULL;
    const char *js = json_object_to_json_string_ext(man, JSON_C_TO_STRING_PLAIN);
    if (a.sign && spool_archive_out_hmac_init(&a, key) < 0) {
        fprintf(stderr, "spool export: cannot start HMAC-SHA256 (OpenSSL); nothing exported\n");
        goto out;
    }
    if (!(a.f = durable_open(to, 0600, &a.e))) {
        fprintf(stderr, "spool export: %s\n", a.e.msg);
        goto out;
    }
    if (spool_archive_out_head(&a, js) < 0)
        goto io;
    for (size_t i = 0; i < n; i++)
        if (datas[i].len && spool_archive_out_write(&a, datas[i].data, datas[i].len) < 0)
            goto io;
    if (spool_archive_out_tail(&a) < 0)
        goto io;
    struct durable_file *f = a.f;
    a.f = NULL;
    if (durable_commit(f, &a.e) < 0)
        goto io;
    printf("exported %zu segment(s), %llu samples to %s%s\n", kept,
           (unsigned long long)total_samples, to, a.sign ? " (signed)" : "");
    rc = EXIT_OK;
    goto out;
io:
    fprintf(stderr, "spool export: %s; nothing exported\n", a.e.msg);
out:
    progress_done(pg, rc ? "failed" : NULL);
    spool_archive_out_free(&a);
    for (size_t i = 0; datas && i < n; i++)
        buf_free(&datas[i]);
    free(datas);
    buf_free(&payload);
    json_object_put(segs);
    json_object_put(man);
    free(v);
    return rc;
}

struct import_ctx {
    struct spool *sp;
    const struct spool_ledger *ledger;
    struct buf keys; /* ledger lines to add once the records are durable */
    struct progress *pg;
    size_t added, skipped;
    uint64_t samples;
    struct err e;
};

static int import_one(void *arg, const char *name, const struct seg_meta *m, const void *payload,
                      size_t len)
{
    struct import_ctx *c = arg;
    progress_update(c->pg, c->added + c->skipped + 1, NULL);
    char key[SPOOL_NAME_MAX + 200];
    snprintf(key, sizeof key, "%s/%s", m->target, name);
    if (spool_ledger_has(c->ledger, key)) {
        c->skipped++;
        return 0;
    }
    if (buf_printf(&c->keys, "%s\n", key) < 0) {
        err_set(&c->e, "out of memory");
        return -1;
    }
    if (spool_append_nosync(c->sp, m, payload, len, &c->e) < 0)
        return -1;
    c->added++;
    c->samples += m->samples;
    return 0;
}

static int cmd_import(const struct config *cfg, struct spool *sp, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "spool import: FILE is required\n");
        return EXIT_USAGE;
    }
    const char *file = argv[1];
    struct buf data;
    buf_init(&data, (size_t)8 << 30);
    struct err e;
    struct spool_ledger led = {.fd = -1};
    struct import_ctx c = {
        .sp = sp, .ledger = &led, .pg = progress_new(stderr, "spool import", "segments", 0)};
    buf_init(&c.keys, 0);
    int rc = EXIT_FAIL;
    if (spool_archive_read(file, &data, &e) < 0) {
        fprintf(stderr, "spool import: %s\n", e.msg);
        goto out;
    }
    size_t len = data.len;
    int sig = spool_archive_check_sig(data.data, data.len, cfg->shipper.archive_key, &len, &e);
    if (sig < 0) {
        fprintf(stderr, "spool import: %s: %s\n", file, e.msg);
        goto out;
    }
    if (sig == 2)
        fprintf(stderr,
                "spool import: %s is signed but no archive_key_file is configured: signature "
                "not checked\n",
                file);
    if (spool_ledger_open(&led, spool_dir(sp), &e) < 0) {
        fprintf(stderr, "spool import: %s; nothing imported from %s\n", e.msg, file);
        goto out;
    }
    /* the archive is verified whole before anything is written */
    if (spool_archive_parse(data.data, len, import_one, &c, &e) < 0) {
        if (c.added || c.e.msg[0])
            fprintf(stderr, "spool import: %s: %s: %s\n", file, e.msg, c.e.msg);
        else
            fprintf(stderr, "spool import: %s is %s\n", file, e.msg);
        goto out;
    }
    /* records first, durable; then the ledger (a crash in between imports
     * again next time: duplicates, never a loss) */
    if (spool_sync(sp, NULL) < 0) {
        fprintf(stderr, "spool import: cannot sync the spool: %s\n", strerror(errno));
        goto out;
    }
    if (spool_ledger_append(&led, c.keys.data ? c.keys.data : "", c.keys.len) < 0) {
        fprintf(stderr,
                "spool import: imported %zu segment(s) from %s but cannot record them in %s: %s; "
                "importing %s again would add them twice\n",
                c.added, file, led.path, strerror(errno), file);
        goto out;
    }
    printf("imported %zu segment(s), %llu samples from %s; %zu already imported before%s\n",
           c.added, (unsigned long long)c.samples, file, c.skipped,
           sig == 1 ? " (signature verified)" : "");
    rc = EXIT_OK;
out:
    progress_done(c.pg, rc ? "failed" : NULL);
    spool_ledger_close(&led);
    buf_free(&c.keys);
    buf_free(&data);
    return rc;
}

static int cmd_purge(struct spool *sp, int argc, char **argv)
{
    const char *only = arg_value(argc, argv, "--target");
    bool quar = has_flag(argc, argv, "--quarantine");
    size_t removed = 0;
    if (quar) {
        char q[PATH_MAX];
        snprintf(q, sizeof q, "%s/quarantine", spool_dir(sp));
        DIR *d = opendir(q);
        if (!d) {
            fprintf(stderr, "spool purge: cannot list %s: %s\n", q, strerror(errno));
            return EXIT_FAIL;
        }
        for (struct dirent *de; (de = readdir(d));) {
            char p[PATH_MAX + 256];
            snprintf(p, sizeof p, "%s/%s", q, de->d_name);
            if (de->d_name[0] != '.' && unlink(p) == 0)
                removed++;
        }
        closedir(d);
        printf("purged %zu file(s) from quarantine\n", removed);
        return EXIT_OK;
    }
    int lr = spool_lock(sp);
    if (lr != 0) {
        fprintf(stderr, "spool purge: %s\n",
                lr == 1 ? "a running nexus-shipper delivers from this spool (lock held); stop it "
                          "first"
                        : strerror(errno));
        return EXIT_FAIL;
    }
    struct seg_info *v;
    size_t n;
    if (spool_list(sp, only, true, &v, &n) < 0) {
        fprintf(stderr, "spool purge: cannot list %s: %s\n", spool_dir(sp), strerror(errno));
        spool_unlock(sp);
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++)
        if (spool_remove(sp, &v[i]) == 0)
            removed++;
    free(v);
    spool_unlock(sp);
    printf("purged %zu segment(s)\n", removed);
    return EXIT_OK;
}

int spool_cli(const struct config *cfg, int argc, char **argv, const volatile sig_atomic_t *stop)
{
    if (argc < 2 || !cfg) { /* cli_parse() handles --help and usage errors */
        fputs(help_text, stderr);
        return EXIT_USAGE;
    }
    struct err e;
    struct spool *sp = spool_open(cfg->shipper.spool_dir, &e);
    if (!sp) {
        fprintf(stderr, "spool: %s\n", e.msg);
        return EXIT_FAIL;
    }
    const char *sub = argv[1];
    int rc;
    if (strcmp(sub, "ls") == 0)
        rc = cmd_ls(sp, argc - 1, argv + 1);
    else if (strcmp(sub, "replay") == 0)
        rc = cmd_replay(cfg, sp, argc - 1, argv + 1, stop);
    else if (strcmp(sub, "export") == 0)
        rc = cmd_export(cfg, sp, argc - 1, argv + 1);
    else if (strcmp(sub, "import") == 0)
        rc = cmd_import(cfg, sp, argc - 1, argv + 1);
    else if (strcmp(sub, "purge") == 0)
        rc = cmd_purge(sp, argc - 1, argv + 1);
    else {
        fprintf(stderr, "spool: unknown command \"%s\"\n%s", sub, help_text);
        rc = EXIT_USAGE;
    }
    spool_close(sp);
    return rc;
}
