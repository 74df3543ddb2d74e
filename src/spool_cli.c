#include "spool_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "http.h"
#include "log.h"
#include "remote_write.h"
#include "sender.h"
#include "spool.h"

#define EXPORT_MAGIC "NXSHEXP1\n"

static const char help_text[] =
    "Usage: nexus-shipper [-c FILE] spool COMMAND\n"
    "  ls [-v]                      segments per target, samples, bytes, time range\n"
    "  replay [--url URL] [--target NAME] [--rate N]\n"
    "                               deliver spooled remote-write batches oldest first\n"
    "                               (to URL, or each target's configured url); a batch\n"
    "                               is removed only after a 2xx, so an interrupted\n"
    "                               replay resumes where it stopped\n"
    "  export --to FILE [--target NAME]\n"
    "                               write every segment into one verified archive\n"
    "  import FILE                  verify an archive and add its segments to the spool;\n"
    "                               importing the same archive twice adds nothing\n"
    "  purge [--target NAME] [--quarantine]\n"
    "                               delete spooled segments (or the quarantine)\n";

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
    bool verbose = has_flag(argc, argv, "-v");
    char **targets;
    size_t nt;
    if (spool_targets(sp, &targets, &nt) < 0) {
        fprintf(stderr, "spool ls: cannot read %s: %s\n", spool_dir(sp), strerror(errno));
        return 1;
    }
    printf("%-20s %9s %12s %12s  %-20s  %-20s\n", "TARGET", "SEGMENTS", "SAMPLES", "BYTES",
           "FIRST SAMPLE", "LAST SAMPLE");
    for (size_t t = 0; t < nt; t++) {
        struct seg_info *v;
        size_t n;
        if (spool_list(sp, targets[t], true, &v, &n) < 0)
            continue;
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
                printf("  %s  %u samples  %llu bytes  %s%s%s\n", v[i].name, v[i].m.samples,
                       (unsigned long long)v[i].file_size, a, v[i].m.extra[0] ? "  " : "",
                       v[i].m.extra);
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
    struct seg_info *v;
    size_t n;
    /* quarantine holds segments and their .reason files */
    char qparent[PATH_MAX];
    snprintf(qparent, sizeof qparent, "%s", spool_dir(sp));
    (void)qparent;
    if (spool_list(sp, "quarantine", false, &v, &n) == 0) {
        size_t segs = 0;
        for (size_t i = 0; i < n; i++)
            segs += str_has_suffix(v[i].name, ".seg");
        printf("quarantine: %zu segment%s in %s\n", segs, segs == 1 ? "" : "s", q);
        free(v);
    }
    return 0;
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
        return 2;
    }
    int lr = spool_lock(sp);
    if (lr != 0) {
        fprintf(stderr, "spool replay: %s\n",
                lr == 1 ? "another nexus-shipper is replaying this spool (lock held); try later"
                        : strerror(errno));
        return 1;
    }
    struct seg_info *v;
    size_t n;
    if (spool_list(sp, only, true, &v, &n) < 0) {
        fprintf(stderr, "spool replay: cannot list %s\n", spool_dir(sp));
        return 1;
    }
    struct http_opts ho = {.timeout_ms = 30000, .max_response = 1 << 20};
    const struct cfg_remote_write *first = cfg->n_rw ? cfg->rw[0] : NULL;
    if (first) {
        ho.timeout_ms = first->timeout_ms;
        ho.user = first->basic_auth_user;
        ho.password = first->basic_auth_password;
        ho.bearer_token = first->bearer_token;
        ho.ca_file = first->ca_file;
        ho.cert_file = first->cert_file;
        ho.key_file = first->key_file;
        ho.insecure = first->insecure_skip_verify;
    }
    struct http_client *c = http_client_new(&ho);
    struct buf payload;
    buf_init(&payload, 0);
    uint64_t ok = 0, samples = 0, quarantined = 0;
    int rc = 0;
    int64_t t0 = mono_ms();
    for (size_t i = 0; c && i < n; i++) {
        if (stop && *stop) {
            fprintf(stderr, "spool replay: interrupted; %zu segment(s) left, run again to resume\n",
                    n - i);
            rc = 1;
            break;
        }
        struct seg_meta m;
        struct err e;
        if (!v[i].meta_ok || spool_read(v[i].path, &m, &payload, &e) < 0) {
            const char *why = v[i].meta_ok ? e.msg : v[i].problem;
            log_error("spool replay: quarantining %s: %s", v[i].path, why);
            spool_quarantine(sp, &v[i], why, NULL);
            quarantined++;
            continue;
        }
        if (m.kind != SEG_REMOTE_WRITE)
            continue; /* pushgateway pushes are replayed by run/once */
        const char *dst = url;
        for (size_t k = 0; !dst && k < cfg->n_rw; k++) {
            char dir[SPOOL_NAME_MAX];
            snprintf(dir, sizeof dir, "rw-%s", cfg->rw[k]->name[0] ? cfg->rw[k]->name : "default");
            if (strcmp(dir, m.target) == 0)
                dst = cfg->rw[k]->url;
        }
        if (!dst) {
            fprintf(stderr, "spool replay: no url for target %s (give --url)\n", m.target);
            rc = 1;
            break;
        }
        struct http_response r;
        http_response_init(&r);
        enum send_outcome o = sender_send_payload(c, dst, payload.data, payload.len, 0, &r);
        if (o == SEND_OK) {
            spool_remove(sp, &v[i]);
            ok++;
            samples += m.samples;
        } else if (o == SEND_DROP) {
            char ans[2100];
            snprintf(ans, sizeof ans, "HTTP %ld: %.2000s", r.status,
                     r.body.data ? r.body.data : "");
            log_error("spool replay: %s rejected %s (%u samples): %s", dst, v[i].name, m.samples,
                      ans);
            spool_quarantine(sp, &v[i], rw_drop_reason(r.status, r.body.data), ans);
            quarantined++;
        } else {
            fprintf(stderr,
                    "spool replay: %s unavailable (%s%ld %s); %zu segment(s) left, run again to "
                    "resume\n",
                    dst, r.status ? "HTTP " : "", r.status, r.status ? "" : r.error, n - i);
            http_response_free(&r);
            rc = 1;
            break;
        }
        http_response_free(&r);
        if (rate > 0 && !(stop && *stop))
            sleep_until_mono(t0 + (int64_t)(ok * 1000 / (uint64_t)rate));
    }
    printf("replayed %llu segment(s), %llu samples; %llu quarantined\n", (unsigned long long)ok,
           (unsigned long long)samples, (unsigned long long)quarantined);
    buf_free(&payload);
    http_client_free(c);
    free(v);
    spool_unlock(sp);
    return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int cmd_export(struct spool *sp, int argc, char **argv)
{
    const char *to = arg_value(argc, argv, "--to");
    const char *only = arg_value(argc, argv, "--target");
    if (!to) {
        fprintf(stderr, "spool export: --to FILE is required\n");
        return 2;
    }
    struct seg_info *v;
    size_t n;
    if (spool_list(sp, only, true, &v, &n) < 0) {
        fprintf(stderr, "spool export: cannot list %s\n", spool_dir(sp));
        return 1;
    }
    int rc = 1;
    json_object *man = json_object_new_object(), *segs = json_object_new_array();
    struct buf *datas = calloc(n ? n : 1, sizeof *datas);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.partial", to);
    int fd = -1;
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
        buf_init(&datas[i], 0);
        struct err e;
        char *raw = NULL;
        if (!v[i].meta_ok || read_file(v[i].path, SPOOL_MAX_PAYLOAD + 65536, false, &raw, &e) < 0) {
            fprintf(stderr, "spool export: skipping %s: %s\n", v[i].path,
                    v[i].meta_ok ? e.msg : v[i].problem);
            continue;
        }
        struct seg_meta m;
        const void *p;
        size_t pl;
        if (spool_decode(raw, v[i].file_size, &m, &p, &pl, &e) < 0) {
            fprintf(stderr, "spool export: skipping damaged %s: %s\n", v[i].path, e.msg);
            free(raw);
            continue;
        }
        buf_append(&datas[i], raw, v[i].file_size);
        free(raw);
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
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        fprintf(stderr, "spool export: cannot create %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    uint32_t crc = 0;
    crc = crc32c(crc, EXPORT_MAGIC, strlen(EXPORT_MAGIC));
    crc = crc32c(crc, js, strlen(js));
    crc = crc32c(crc, "\n", 1);
    if (write_all(fd, EXPORT_MAGIC, strlen(EXPORT_MAGIC)) < 0 ||
        write_all(fd, js, strlen(js)) < 0 || write_all(fd, "\n", 1) < 0)
        goto io;
    for (size_t i = 0; i < n; i++) {
        if (!datas[i].len)
            continue;
        crc = crc32c(crc, datas[i].data, datas[i].len);
        if (write_all(fd, datas[i].data, datas[i].len) < 0)
            goto io;
    }
    char trailer[32];
    snprintf(trailer, sizeof trailer, "END %08x\n", crc);
    if (write_all(fd, trailer, strlen(trailer)) < 0 || fsync(fd) < 0)
        goto io;
    close(fd);
    fd = -1;
    if (rename(tmp, to) < 0)
        goto io;
    printf("exported %zu segment(s), %llu samples to %s\n", kept, (unsigned long long)total_samples,
           to);
    rc = 0;
    goto out;
io:
    fprintf(stderr, "spool export: cannot write %s: %s\n", to, strerror(errno));
    unlink(tmp);
out:
    if (fd >= 0)
        close(fd);
    for (size_t i = 0; datas && i < n; i++)
        buf_free(&datas[i]);
    free(datas);
    json_object_put(segs);
    json_object_put(man);
    free(v);
    return rc;
}

static bool ledger_has(const char *ledger, const char *key)
{
    if (!ledger)
        return false;
    size_t kl = strlen(key);
    for (const char *p = ledger; (p = strstr(p, key)); p += kl)
        if ((p == ledger || p[-1] == '\n') && p[kl] == '\n')
            return true;
    return false;
}

static int cmd_import(struct spool *sp, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "spool import: FILE is required\n");
        return 2;
    }
    const char *file = argv[1];
    char *data = NULL, *ledger = NULL;
    struct err e;
    json_object *man = NULL;
    int rc = 1;
    if (read_file(file, (size_t)8 << 30, false, &data, &e) < 0) {
        fprintf(stderr, "spool import: %s\n", e.msg);
        return 1;
    }
    /* read_file NUL-terminates; find the real length via the trailer */
    size_t len = 0;
    {
        FILE *f = fopen(file, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            long l = ftell(f);
            len = l > 0 ? (size_t)l : 0;
            fclose(f);
        }
    }
    size_t ml = strlen(EXPORT_MAGIC);
    if (len < ml + 14 || memcmp(data, EXPORT_MAGIC, ml) != 0) {
        fprintf(stderr, "spool import: %s is not a nexus-shipper spool export (bad magic)\n", file);
        goto out;
    }
    /* trailer: "END xxxxxxxx\n" */
    const char *tr = data + len - 13;
    unsigned int want;
    if (strncmp(tr, "END ", 4) != 0 || sscanf(tr + 4, "%8x", &want) != 1 || tr[12] != '\n') {
        fprintf(stderr, "spool import: %s is truncated (no END trailer); refusing it\n", file);
        goto out;
    }
    if (crc32c(0, data, len - 13) != want) {
        fprintf(stderr, "spool import: %s is damaged (checksum mismatch); refusing it\n", file);
        goto out;
    }
    const char *nl = memchr(data + ml, '\n', len - ml);
    if (!nl) {
        fprintf(stderr, "spool import: %s: no manifest line\n", file);
        goto out;
    }
    json_tokener *tok = json_tokener_new();
    man = tok ? json_tokener_parse_ex(tok, data + ml, (int)(nl - data - (long)ml)) : NULL;
    if (tok)
        json_tokener_free(tok);
    json_object *segs;
    if (!man || !json_object_object_get_ex(man, "segments", &segs) ||
        !json_object_is_type(segs, json_type_array)) {
        fprintf(stderr, "spool import: %s: manifest is not valid JSON with a segments array\n",
                file);
        goto out;
    }
    /* pass 1: verify every segment before writing anything */
    size_t ns = json_object_array_length(segs);
    const char *p = nl + 1, *end = data + len - 13;
    for (size_t i = 0; i < ns; i++) {
        json_object *s = json_object_array_get_idx(segs, i), *jsize, *jcrc, *jname;
        if (!json_object_object_get_ex(s, "size", &jsize) ||
            !json_object_object_get_ex(s, "crc32c", &jcrc) ||
            !json_object_object_get_ex(s, "name", &jname)) {
            fprintf(stderr, "spool import: %s: manifest entry %zu lacks size/crc32c/name\n", file,
                    i);
            goto out;
        }
        int64_t sz = json_object_get_int64(jsize);
        if (sz <= 0 || sz > end - p) {
            fprintf(stderr,
                    "spool import: %s: segment %zu claims %lld bytes, archive has %lld left\n",
                    file, i, (long long)sz, (long long)(end - p));
            goto out;
        }
        char crc[16];
        snprintf(crc, sizeof crc, "%08x", crc32c(0, p, (size_t)sz));
        struct seg_meta m;
        const void *pl;
        size_t pll;
        if (strcmp(crc, json_object_get_string(jcrc)) != 0 ||
            spool_decode(p, (size_t)sz, &m, &pl, &pll, &e) < 0) {
            fprintf(stderr, "spool import: %s: segment %s is damaged; refusing the archive\n", file,
                    json_object_get_string(jname));
            goto out;
        }
        const char *nm = json_object_get_string(jname);
        if (!str_has_suffix(nm, ".seg") || strchr(nm, '/') || nm[0] == '.' ||
            strchr(m.target, '/') || m.target[0] == '.' || !m.target[0]) {
            fprintf(stderr, "spool import: %s: bad segment name or target in the manifest\n", file);
            goto out;
        }
        p += sz;
    }
    if (p != end) {
        fprintf(stderr, "spool import: %s: %lld unexpected bytes after the last segment\n", file,
                (long long)(end - p));
        goto out;
    }
    /* pass 2: write the segments not imported before */
    char lpath[PATH_MAX];
    snprintf(lpath, sizeof lpath, "%s/.imported", spool_dir(sp));
    read_file(lpath, 64u << 20, false, &ledger, &e);
    FILE *lf = fopen(lpath, "ae");
    size_t added = 0, skipped = 0;
    uint64_t samples = 0;
    p = nl + 1;
    for (size_t i = 0; i < ns; i++) {
        json_object *s = json_object_array_get_idx(segs, i), *jsize, *jname;
        json_object_object_get_ex(s, "size", &jsize);
        json_object_object_get_ex(s, "name", &jname);
        size_t sz = (size_t)json_object_get_int64(jsize);
        struct seg_meta m;
        const void *pl;
        size_t pll;
        spool_decode(p, sz, &m, &pl, &pll, &e);
        char key[200], dir[PATH_MAX];
        snprintf(key, sizeof key, "%s/%s", m.target, json_object_get_string(jname));
        snprintf(dir, sizeof dir, "%s/%s", spool_dir(sp), m.target);
        if (ledger_has(ledger, key)) {
            skipped++;
        } else {
            mkdir(dir, 0750);
            if (write_file_durable(dir, json_object_get_string(jname), p, sz, NULL, 0, &e) < 0) {
                fprintf(stderr, "spool import: %s\n", e.msg);
                if (lf)
                    fclose(lf);
                goto out;
            }
            if (lf) {
                fprintf(lf, "%s\n", key);
                fflush(lf);
            }
            added++;
            samples += m.samples;
        }
        p += sz;
    }
    if (lf) {
        fsync(fileno(lf));
        fclose(lf);
    }
    printf("imported %zu segment(s), %llu samples from %s; %zu already imported before\n", added,
           (unsigned long long)samples, file, skipped);
    rc = 0;
out:
    json_object_put(man);
    free(ledger);
    free(data);
    return rc;
}

static int cmd_purge(struct spool *sp, int argc, char **argv)
{
    const char *only = arg_value(argc, argv, "--target");
    bool quar = has_flag(argc, argv, "--quarantine");
    struct seg_info *v;
    size_t n;
    if (spool_list(sp, quar ? "quarantine" : only, false, &v, &n) < 0) {
        fprintf(stderr, "spool purge: cannot list %s\n", spool_dir(sp));
        return 1;
    }
    size_t removed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!quar && str_has_prefix(v[i].path + strlen(spool_dir(sp)) + 1, "quarantine/"))
            continue;
        if (spool_remove(sp, &v[i]) == 0)
            removed++;
    }
    free(v);
    printf("purged %zu file(s)%s\n", removed, quar ? " from quarantine" : "");
    return 0;
}

int spool_cli(const struct config *cfg, int argc, char **argv, const volatile sig_atomic_t *stop)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || !cfg) {
        fputs(help_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    struct err e;
    struct spool *sp = spool_open(cfg->shipper.spool_dir, &e);
    if (!sp) {
        fprintf(stderr, "spool: %s\n", e.msg);
        return 1;
    }
    const char *sub = argv[1];
    int rc;
    if (strcmp(sub, "ls") == 0)
        rc = cmd_ls(sp, argc - 1, argv + 1);
    else if (strcmp(sub, "replay") == 0)
        rc = cmd_replay(cfg, sp, argc - 1, argv + 1, stop);
    else if (strcmp(sub, "export") == 0)
        rc = cmd_export(sp, argc - 1, argv + 1);
    else if (strcmp(sub, "import") == 0)
        rc = cmd_import(sp, argc - 1, argv + 1);
    else if (strcmp(sub, "purge") == 0)
        rc = cmd_purge(sp, argc - 1, argv + 1);
    else {
        fprintf(stderr, "spool: unknown command \"%s\"\n%s", sub, help_text);
        rc = 2;
    }
    spool_close(sp);
    return rc;
}
