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
#include <openssl/evp.h>

#include "http.h"
#include "log.h"
#include "progress.h"
#include "remote_write.h"
#include "sender.h"
#include "spool.h"
#include "exitcodes.h"

#define EXPORT_MAGIC "NXSHEXP1\n"
#define SIG_PREFIX   "HMAC-SHA256 "
#define SIG_LINE_LEN (sizeof SIG_PREFIX - 1 + 64 + 1)

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
    sender_set_abort(snd, stop);
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

/* HMAC-SHA256 (RFC 2104) over EVP digests: incremental, and the same
 * code on OpenSSL 1.1 and 3 (no deprecated HMAC_CTX). */
struct hmac {
    EVP_MD_CTX *in, *out;
};

static void hmac_free(struct hmac *h)
{
    EVP_MD_CTX_free(h->in);
    EVP_MD_CTX_free(h->out);
    h->in = h->out = NULL;
}

static int hmac_init(struct hmac *h, const void *key, size_t keylen)
{
    unsigned char k[64] = {0}, pad[64];
    unsigned int kl = 0;
    h->in = EVP_MD_CTX_new();
    h->out = EVP_MD_CTX_new();
    if (!h->in || !h->out)
        goto fail;
    if (keylen > sizeof k) {
        if (EVP_Digest(key, keylen, k, &kl, EVP_sha256(), NULL) != 1)
            goto fail;
    } else {
        memcpy(k, key, keylen);
    }
    for (size_t i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    if (EVP_DigestInit_ex(h->in, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(h->in, pad, sizeof pad) != 1)
        goto fail;
    for (size_t i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    if (EVP_DigestInit_ex(h->out, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(h->out, pad, sizeof pad) != 1)
        goto fail;
    return 0;
fail:
    hmac_free(h);
    return -1;
}

static int hmac_update(struct hmac *h, const void *p, size_t n)
{
    return h->in && EVP_DigestUpdate(h->in, p, n) == 1 ? 0 : -1;
}

/* hex: 64 lowercase hex digits + NUL; frees the contexts */
static int hmac_final(struct hmac *h, char hex[65])
{
    unsigned char inner[32], mac[32];
    unsigned int n = 0;
    int rc = -1;
    if (h->in && EVP_DigestFinal_ex(h->in, inner, &n) == 1 && n == 32 &&
        EVP_DigestUpdate(h->out, inner, 32) == 1 && EVP_DigestFinal_ex(h->out, mac, &n) == 1 &&
        n == 32) {
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", mac[i]);
        rc = 0;
    }
    hmac_free(h);
    return rc;
}

int spool_archive_sign(const char *key, const void *data, size_t len, char hex[65])
{
    struct hmac h;
    if (hmac_init(&h, key, strlen(key)) < 0)
        return -1;
    if (hmac_update(&h, data, len) < 0) {
        hmac_free(&h);
        return -1;
    }
    return hmac_final(&h, hex);
}

int spool_archive_check_sig(const char *data, size_t len, const char *key, size_t *inner,
                            struct err *e)
{
    *inner = len;
    size_t sl = SIG_LINE_LEN, pl = strlen(SIG_PREFIX);
    const char *line = len >= sl ? data + len - sl : NULL;
    bool signed_ = line && memcmp(line, SIG_PREFIX, pl) == 0 && line[sl - 1] == '\n' &&
                   (line == data || line[-1] == '\n');
    for (size_t i = pl; signed_ && i < sl - 1; i++)
        signed_ = (line[i] >= '0' && line[i] <= '9') || (line[i] >= 'a' && line[i] <= 'f');
    if (!signed_) {
        if (key && *key) {
            err_set(e, "not signed, and archive_key_file is set: refusing it (export it with the "
                       "same archive_key_file)");
            return -1;
        }
        return 0;
    }
    *inner = len - sl;
    if (!key || !*key)
        return 2;
    char want[65];
    if (spool_archive_sign(key, data, len - sl, want) < 0) {
        err_set(e, "cannot compute its HMAC-SHA256 (OpenSSL failed)");
        return -1;
    }
    /* constant time: the comparison does not tell how much matched */
    unsigned char diff = 0;
    for (size_t i = 0; i < 64; i++)
        diff |= (unsigned char)(want[i] ^ line[pl + i]);
    if (diff) {
        err_set(e, "signature does not match archive_key_file (a different key, or the archive "
                   "was modified): refusing it");
        return -1;
    }
    return 1;
}

/* The archive, streamed into a durable temp file beside `to` (random name,
 * O_EXCL|O_NOFOLLOW: nothing planted is followed), CRC32C and HMAC kept
 * as it goes. */
struct archive_out {
    struct durable_file *f;
    uint32_t crc;
    struct hmac h;
    bool sign;
    struct err e;
};

static int aout_write(struct archive_out *a, const void *p, size_t n)
{
    a->crc = crc32c(a->crc, p, n);
    if (a->sign && hmac_update(&a->h, p, n) < 0) {
        err_set(&a->e, "HMAC-SHA256 failed (OpenSSL)");
        return -1;
    }
    return durable_write(a->f, p, n, &a->e);
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
    struct archive_out a = {.sign = key && *key};
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
    if (a.sign && hmac_init(&a.h, key, strlen(key)) < 0) {
        fprintf(stderr, "spool export: cannot start HMAC-SHA256 (OpenSSL); nothing exported\n");
        goto out;
    }
    if (!(a.f = durable_open(to, 0600, &a.e))) {
        fprintf(stderr, "spool export: %s\n", a.e.msg);
        goto out;
    }
    if (aout_write(&a, EXPORT_MAGIC, strlen(EXPORT_MAGIC)) < 0 ||
        aout_write(&a, js, strlen(js)) < 0 || aout_write(&a, "\n", 1) < 0)
        goto io;
    for (size_t i = 0; i < n; i++)
        if (datas[i].len && aout_write(&a, datas[i].data, datas[i].len) < 0)
            goto io;
    char trailer[32];
    snprintf(trailer, sizeof trailer, "END %08x\n", a.crc);
    if (aout_write(&a, trailer, strlen(trailer)) < 0)
        goto io;
    if (a.sign) {
        char hex[65], line[SIG_LINE_LEN + 1];
        if (hmac_final(&a.h, hex) < 0) {
            err_set(&a.e, "HMAC-SHA256 failed (OpenSSL)");
            goto io;
        }
        snprintf(line, sizeof line, "%s%s\n", SIG_PREFIX, hex);
        if (durable_write(a.f, line, strlen(line), &a.e) < 0)
            goto io;
    }
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
    durable_abort(a.f);
    hmac_free(&a.h);
    for (size_t i = 0; datas && i < n; i++)
        buf_free(&datas[i]);
    free(datas);
    buf_free(&payload);
    json_object_put(segs);
    json_object_put(man);
    free(v);
    return rc;
}

int spool_archive_parse(const char *data, size_t len, spool_archive_cb cb, void *arg, struct err *e)
{
    json_object *man = NULL;
    int rc = -1;
    size_t ml = strlen(EXPORT_MAGIC);
    if (len < ml + 14 || memcmp(data, EXPORT_MAGIC, ml) != 0) {
        err_set(e, "not a nexus-shipper spool export (bad magic)");
        return -1;
    }
    /* trailer: "END xxxxxxxx\n" */
    const char *tr = data + len - 13;
    unsigned int want;
    char hex[9];
    memcpy(hex, tr + 4, 8);
    hex[8] = '\0';
    if (strncmp(tr, "END ", 4) != 0 || tr[12] != '\n' || strspn(hex, "0123456789abcdef") != 8 ||
        sscanf(hex, "%8x", &want) != 1) {
        err_set(e, "truncated (no END trailer); refusing it");
        return -1;
    }
    if (crc32c(0, data, len - 13) != want) {
        err_set(e, "damaged (checksum mismatch); refusing it");
        return -1;
    }
    const char *nl = memchr(data + ml, '\n', len - 13 - ml);
    if (!nl) {
        err_set(e, "no manifest line");
        return -1;
    }
    json_tokener *tok = json_tokener_new();
    man = tok ? json_tokener_parse_ex(tok, data + ml, (int)(nl - data - (long)ml)) : NULL;
    if (tok)
        json_tokener_free(tok);
    json_object *segs;
    if (!man || !json_object_object_get_ex(man, "segments", &segs) ||
        !json_object_is_type(segs, json_type_array)) {
        err_set(e, "manifest is not valid JSON with a segments array");
        goto out;
    }
    /* pass 1 verifies every segment, pass 2 hands them out */
    size_t ns = json_object_array_length(segs);
    for (int pass = 1; pass <= 2; pass++) {
        const char *p = nl + 1, *end = data + len - 13;
        for (size_t i = 0; i < ns; i++) {
            json_object *s = json_object_array_get_idx(segs, i), *jsize, *jcrc, *jname;
            if (!json_object_object_get_ex(s, "size", &jsize) ||
                !json_object_object_get_ex(s, "crc32c", &jcrc) ||
                !json_object_object_get_ex(s, "name", &jname)) {
                err_set(e, "manifest entry %zu lacks size/crc32c/name", i);
                goto out;
            }
            int64_t sz = json_object_get_int64(jsize);
            if (sz <= 0 || sz > end - p) {
                err_set(e, "segment %zu claims %lld bytes, archive has %lld left", i, (long long)sz,
                        (long long)(end - p));
                goto out;
            }
            const char *nm = json_object_get_string(jname), *jc = json_object_get_string(jcrc);
            char crc[16];
            snprintf(crc, sizeof crc, "%08x", crc32c(0, p, (size_t)sz));
            struct seg_meta m;
            const void *pl;
            size_t pll;
            struct err e2;
            if (!jc || strcmp(crc, jc) != 0 ||
                spool_decode(p, (size_t)sz, &m, &pl, &pll, &e2) < 0) {
                err_set(e, "segment %s is damaged; refusing the archive", nm ? nm : "?");
                goto out;
            }
            if (!nm || !str_has_suffix(nm, ".seg") || strchr(nm, '/') || nm[0] == '.' ||
                strlen(nm) > 128 || strchr(m.target, '/') || m.target[0] == '.' || !m.target[0] ||
                strcmp(m.target, "quarantine") == 0) {
                err_set(e, "bad segment name or target in the manifest (entry %zu)", i);
                goto out;
            }
            if (spool_record_check(&m, NULL, &e2) < 0) {
                err_set(e, "segment %.128s refused: %s; refusing the archive", nm, e2.msg);
                goto out;
            }
            if (pass == 2 && cb && cb(arg, nm, &m, pl, pll) < 0) {
                err_set(e, "stopped at segment %s", nm);
                goto out;
            }
            p += sz;
        }
        if (p != end) {
            err_set(e, "%lld unexpected bytes after the last segment", (long long)(end - p));
            goto out;
        }
    }
    rc = (int)ns;
out:
    json_object_put(man);
    return rc;
}

/* The import ledger, spool_dir/.imported: one line "<target>/<segment
 * name>" per imported segment, appended (and fsync'd) once the segments
 * are durable. Loaded as a sorted array of 128-bit digests (16 bytes per
 * entry, however long the file): no size limit, a read error is an error.
 * flock(2) on it serialises imports into one spool. */
struct digest {
    uint64_t a, b;
};

struct ledger {
    int fd;
    char path[PATH_MAX];
    struct digest *d; /* sorted */
    size_t n, cap;
};

struct digest_state {
    uint64_t a, b;
};

static void digest_start(struct digest_state *s)
{
    s->a = 0xcbf29ce484222325u; /* FNV-1a */
    s->b = 0x9e3779b97f4a7c15u;
}

static void digest_add(struct digest_state *s, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        s->a = (s->a ^ c[i]) * 0x100000001b3u;
        s->b = (s->b + c[i] + 1) * 0xff51afd7ed558ccdu;
        s->b ^= s->b >> 29;
    }
}

static struct digest digest_end(const struct digest_state *s)
{
    uint64_t b = s->b; /* murmur3 fmix64 */
    b ^= b >> 33;
    b *= 0xc4ceb9fe1a85ec53u;
    b ^= b >> 33;
    return (struct digest){s->a, b};
}

static struct digest digest_of(const char *key)
{
    struct digest_state s;
    digest_start(&s);
    digest_add(&s, key, strlen(key));
    return digest_end(&s);
}

static int digest_cmp(const void *x, const void *y)
{
    const struct digest *p = x, *q = y;
    return p->a != q->a ? (p->a < q->a ? -1 : 1) : p->b != q->b ? (p->b < q->b ? -1 : 1) : 0;
}

static int ledger_push(struct ledger *l, struct digest d)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        struct digest *nd = realloc(l->d, cap * sizeof *nd);
        if (!nd)
            return -1;
        l->d = nd;
        l->cap = cap;
    }
    l->d[l->n++] = d;
    return 0;
}

static void ledger_close(struct ledger *l)
{
    if (l->fd >= 0)
        close(l->fd); /* releases the flock */
    l->fd = -1;
    free(l->d);
    l->d = NULL;
}

/* Opens, locks (waiting for another import) and loads the ledger. */
static int ledger_open(struct ledger *l, const char *spool, struct err *e)
{
    memset(l, 0, sizeof *l);
    l->fd = -1;
    snprintf(l->path, sizeof l->path, "%s/.imported", spool);
    l->fd = open(l->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (l->fd < 0) {
        err_set(e, "cannot open the import ledger %s: %s", l->path, strerror(errno));
        return -1;
    }
    if (flock(l->fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) {
            err_set(e, "cannot lock the import ledger %s: %s", l->path, strerror(errno));
            goto fail;
        }
        fprintf(stderr, "spool import: waiting for another import into this spool (lock on %s)\n",
                l->path);
        while (flock(l->fd, LOCK_EX) < 0) {
            if (errno != EINTR) {
                err_set(e, "cannot lock the import ledger %s: %s", l->path, strerror(errno));
                goto fail;
            }
        }
    }
    enum { CHUNK = 1 << 16 };
    char *chunk = malloc(CHUNK);
    if (!chunk)
        goto oom;
    struct digest_state st;
    digest_start(&st);
    bool in_line = false;
    for (off_t off = 0;;) {
        ssize_t r = pread(l->fd, chunk, CHUNK, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err_set(e, "cannot read the import ledger %s: %s", l->path, strerror(errno));
            free(chunk);
            goto fail;
        }
        if (r == 0)
            break;
        off += r;
        for (const char *p = chunk, *end = chunk + r; p < end;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *stop = nl ? nl : end;
            digest_add(&st, p, (size_t)(stop - p));
            in_line = in_line || stop > p;
            if (nl) {
                if (in_line && ledger_push(l, digest_end(&st)) < 0) { /* empty lines: none */
                    free(chunk);
                    goto oom;
                }
                digest_start(&st);
                in_line = false;
            }
            p = stop + (nl ? 1 : 0);
        }
    }
    free(chunk);
    if (in_line && ledger_push(l, digest_end(&st)) < 0) /* a last line without '\n' */
        goto oom;
    qsort(l->d, l->n, sizeof *l->d, digest_cmp);
    return 0;
oom:
    err_set(e, "out of memory loading the import ledger %s (%zu entries)", l->path, l->n);
fail:
    ledger_close(l);
    return -1;
}

static bool ledger_has(const struct ledger *l, const char *key)
{
    struct digest d = digest_of(key);
    return l->n && bsearch(&d, l->d, l->n, sizeof *l->d, digest_cmp) != NULL;
}

struct import_ctx {
    struct spool *sp;
    const struct ledger *ledger;
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
    if (ledger_has(c->ledger, key)) {
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

/* Reads what the file holds now; the length is what was read (a file
 * still being copied is refused by the trailer check, never over-read). */
static int read_archive(const char *file, struct buf *out, struct err *e)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(e, "cannot open %s: %s", file, strerror(errno));
        return -1;
    }
    int rc = -1;
    for (;;) {
        if (buf_reserve(out, 1 << 20) < 0) {
            err_set(e, "%s: larger than %zu bytes or out of memory", file, out->max);
            goto done;
        }
        ssize_t r = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err_set(e, "cannot read %s: %s", file, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        out->len += (size_t)r;
    }
    buf_cstr(out);
    rc = 0;
done:
    close(fd);
    return rc;
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
    struct ledger led = {.fd = -1};
    struct import_ctx c = {
        .sp = sp, .ledger = &led, .pg = progress_new(stderr, "spool import", "segments", 0)};
    buf_init(&c.keys, 0);
    int rc = EXIT_FAIL;
    if (read_archive(file, &data, &e) < 0) {
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
    if (ledger_open(&led, spool_dir(sp), &e) < 0) {
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
    const char *kp = c.keys.data ? c.keys.data : "";
    size_t kl = c.keys.len;
    while (kl) {
        ssize_t w = write(led.fd, kp, kl);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            break;
        kp += w;
        kl -= (size_t)w;
    }
    if (kl || fsync(led.fd) < 0) {
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
    ledger_close(&led);
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
