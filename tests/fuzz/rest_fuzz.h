/* rest_fuzz.h: the shared part of the REST collector fuzz targets
 * (fuzz_nexus.c, fuzz_gitlab.c). Included by one target each; not a
 * library.
 *
 * The real collector (init, collect, destroy, as the scheduler runs it)
 * talks to a fake server made of the fuzzer's input, through the http
 * module's test seam (http_set_test_responder): no network.
 *
 * Input:  byte 0  selector (which collector / configuration; see the target)
 *         byte 1  flags (REST_F_* below)
 *         then answer records separated by the byte 0x1e:
 *             STATUS KEY[\tHeader: value]...\n
 *             BODY
 *         A request is answered by the record whose KEY equals its path
 *         and query (the URL after the host), else by the longest KEY that
 *         is a prefix of it, else 404 with an empty body. STATUS 0 means
 *         "no answer" (connection refused). The same record answers every
 *         matching request, so a server that hands out continuation tokens
 *         in a cycle is expressible: the collectors must still stop.
 *
 * The collection deadline is 250 ms from the start: rest_get retries 5xx
 * answers without pausing (it pauses only when the deadline leaves room
 * for it), and a collection that takes longer sees "deadline passed".
 *
 * Checked: no crash, leak, undefined behaviour or endless loop (one URL
 * requested more than REST_MAX_SAME_URL times, or more than
 * REST_MAX_REQUESTS requests, in one collection aborts); a failing collect
 * sets an error message; a collected series buffer snapshots and encodes
 * (text format and remote write). tests/fuzz/mkcorpus_rest.py writes the
 * seed corpora from the fakes' scenarios. */
#ifndef REST_FUZZ_H
#define REST_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "remote_write.h"
#include "series.h"
#include "textfmt.h"

#define REST_MAX_RECORDS  128
#define REST_MAX_REQUESTS 50000 /* in one collection */
#define REST_MAX_SAME_URL 64    /* requests of one URL in one collection */
#define REST_URL_SLOTS    8192  /* distinct URLs counted (power of two) */

/* flags (byte 1) */
#define REST_F_PROBE_REPOS  0x01u /* [nexus] probe_repositories */
#define REST_F_PROBE_DOCKER 0x02u /* [nexus] probe_docker_ports */
#define REST_F_EXPECTED     0x04u /* [nexus] expected_repositories set */
#define REST_F_PROJECTS     0x08u /* [gitlab] projects listed (else every project) */
#define REST_F_PREFIX       0x10u /* [gitlab] image_prefix = "team/" */
#define REST_F_V6_DOCKER    0x20u /* [nexus] docker_host = "fd00::1" */
#define REST_F_NO_PAGE_CAP  0x40u /* [nexus] components_max_pages = 0 (no limit), else 3 */
#define REST_F_HTTPS        0x80u /* [nexus] url is https */

struct rest_record {
    long status;
    const char *key; /* NUL-terminated copies in rest_fuzz.text */
    size_t key_len;
    char *headers; /* "Name: value\r\n"... */
    const char *body;
    size_t body_len;
};

static struct {
    char *text; /* the input's records, keys cut into C strings */
    struct rest_record rec[REST_MAX_RECORDS];
    size_t n;
    size_t requests;
    struct {
        uint64_t hash; /* 0 = free */
        unsigned count;
    } url[REST_URL_SLOTS];
    size_t nurl;
} rest_fuzz;

static struct logger rest_fuzz_log;

static int rest_fuzz_respond(void *ctx, const char *method, const char *url, long *status,
                             const char **headers, const char **body, size_t *body_len)
{
    (void)ctx;
    (void)method;
    if (++rest_fuzz.requests > REST_MAX_REQUESTS) {
        fprintf(stderr, "rest_fuzz: more than %d requests in one collection: %s\n",
                REST_MAX_REQUESTS, url);
        abort(); /* an endless request loop */
    }
    /* The same URL over and over means a loop that only the deadline
     * would stop (retries and repeated listings stay far below this). */
    uint64_t h = 14695981039346656037u;
    for (const char *c = url; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211u;
    h |= 1;
    if (rest_fuzz.nurl < REST_URL_SLOTS / 2) {
        size_t j = h & (REST_URL_SLOTS - 1);
        while (rest_fuzz.url[j].hash && rest_fuzz.url[j].hash != h)
            j = (j + 1) & (REST_URL_SLOTS - 1);
        if (!rest_fuzz.url[j].hash) {
            rest_fuzz.url[j].hash = h;
            rest_fuzz.nurl++;
        }
        if (++rest_fuzz.url[j].count > REST_MAX_SAME_URL) {
            fprintf(stderr, "rest_fuzz: %s requested more than %d times in one collection\n", url,
                    REST_MAX_SAME_URL);
            abort();
        }
    }
    const char *path = strstr(url, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    if (!path)
        path = "/";
    size_t plen = strlen(path);
    const struct rest_record *best = NULL;
    for (size_t i = 0; i < rest_fuzz.n; i++) {
        const struct rest_record *r = &rest_fuzz.rec[i];
        if (r->key_len > plen || memcmp(r->key, path, r->key_len) != 0)
            continue;
        if (r->key_len == plen) {
            best = r;
            break;
        }
        if (!best || r->key_len > best->key_len)
            best = r;
    }
    if (!best) {
        *status = 404;
        return 0;
    }
    if (best->status == 0)
        return -1;
    *status = best->status;
    *headers = best->headers;
    *body = best->body;
    *body_len = best->body_len;
    return 0;
}

static void rest_fuzz_clear(void)
{
    for (size_t i = 0; i < rest_fuzz.n; i++)
        free(rest_fuzz.rec[i].headers);
    free(rest_fuzz.text);
    memset(&rest_fuzz, 0, sizeof rest_fuzz);
}

/* Splits the records; 0, or -1 when the input is unusable. */
static int rest_fuzz_load(const uint8_t *data, size_t size)
{
    rest_fuzz_clear();
    if (!(rest_fuzz.text = malloc(size + 1)))
        return -1;
    memcpy(rest_fuzz.text, data, size);
    rest_fuzz.text[size] = '\0';
    char *p = rest_fuzz.text, *end = rest_fuzz.text + size;
    while (p < end && rest_fuzz.n < REST_MAX_RECORDS) {
        char *rs = memchr(p, 0x1e, (size_t)(end - p));
        char *rend = rs ? rs : end;
        char *nl = memchr(p, '\n', (size_t)(rend - p));
        char *head_end = nl ? nl : rend;
        struct rest_record *r = &rest_fuzz.rec[rest_fuzz.n];
        r->body = nl ? nl + 1 : rend;
        r->body_len = (size_t)(rend - r->body);
        *head_end = '\0'; /* the head line is a C string now */
        char *q = p;
        r->status = 0;
        for (int k = 0; k < 3 && *q >= '0' && *q <= '9'; k++, q++)
            r->status = r->status * 10 + (*q - '0');
        while (*q == ' ')
            q++;
        r->key = q;
        char *tab = strchr(q, '\t');
        r->key_len = tab ? (size_t)(tab - q) : strlen(q);
        if (memchr(r->key, '\0', r->key_len))
            r->key_len = strlen(r->key);
        size_t hl = 0;
        for (char *h = tab; h; h = strchr(h + 1, '\t'))
            hl += strcspn(h + 1, "\t") + 2;
        if (!(r->headers = malloc(hl + 1)))
            return -1;
        r->headers[0] = '\0';
        for (char *h = tab; h; h = strchr(h + 1, '\t')) {
            size_t l = strcspn(h + 1, "\t");
            strncat(r->headers, h + 1, l);
            strcat(r->headers, "\r\n");
        }
        rest_fuzz.n++;
        p = rs ? rs + 1 : end;
    }
    return 0;
}

/* The configuration every target uses; flags pick the variants. */
struct rest_fuzz_cfg {
    struct config cfg;
    struct cfg_nexus nexus;
    struct cfg_gitlab gitlab;
    struct cfg_certificates certs;
    char *expected[2], *projects[3], *endpoints[2];
};

static void rest_fuzz_config(struct rest_fuzz_cfg *c, unsigned flags)
{
    static char exp0[] = "docker-hosted", exp1[] = "maven-releases";
    static char prj0[] = "team/app", prj1[] = "102", prj2[] = "gone/project";
    static char ep0[] = "registry.example.org:8443", ep1[] = "static.example.org:443";
    static char http_url[] = "http://nexus.example.org:8081/",
                https_url[] = "https://nexus.example.org";
    static char user[] = "metrics", pass[] = "metrics-secret",
                gl_url[] = "http://gitlab.example.org";
    static char token[] = "glpat-test-token", prefix[] = "team/", source[] = "nexus",
                v6[] = "fd00::1";
    memset(c, 0, sizeof *c);
    c->expected[0] = exp0;
    c->expected[1] = exp1;
    c->projects[0] = prj0;
    c->projects[1] = prj1;
    c->projects[2] = prj2;
    c->endpoints[0] = ep0;
    c->endpoints[1] = ep1;
    c->nexus.url = flags & REST_F_HTTPS ? https_url : http_url;
    c->nexus.username = user;
    c->nexus.password = pass;
    c->nexus.timeout_ms = 5000;
    c->nexus.probe_repositories = flags & REST_F_PROBE_REPOS;
    c->nexus.probe_docker_ports = flags & REST_F_PROBE_DOCKER;
    c->nexus.forward_metrics = true;
    c->nexus.docker_host = flags & REST_F_V6_DOCKER ? v6 : NULL;
    c->nexus.components_max_pages = flags & REST_F_NO_PAGE_CAP ? 0 : 3;
    if (flags & REST_F_EXPECTED) {
        c->nexus.expected_repositories.v = c->expected;
        c->nexus.expected_repositories.n = 2;
    }
    c->gitlab.url = gl_url;
    c->gitlab.token = token;
    c->gitlab.timeout_ms = 5000;
    c->gitlab.image_prefix = flags & REST_F_PREFIX ? prefix : NULL;
    if (flags & REST_F_PROJECTS) {
        c->gitlab.projects.v = c->projects;
        c->gitlab.projects.n = 3;
    }
    c->certs.source = source;
    c->certs.timeout_ms = 5000;
    c->certs.warn_days = 30;
    c->certs.endpoints.v = c->endpoints;
    c->certs.endpoints.n = 2;
    c->cfg.nexus = &c->nexus;
    c->cfg.gitlab = &c->gitlab;
    c->cfg.certificates = &c->certs;
}

static const struct collector *rest_fuzz_collector(const char *name)
{
    for (size_t i = 0; i < n_builtin_collectors; i++)
        if (strcmp(builtin_collectors[i]->name, name) == 0)
            return builtin_collectors[i];
    fprintf(stderr, "rest_fuzz: no collector %s\n", name);
    abort();
}

/* Runs collector `name` once on the input's records (data, size: the
 * records, after the selector and flags bytes). */
static void rest_fuzz_run(const char *name, unsigned flags, const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        logger_init(&rest_fuzz_log);
        rest_fuzz_log.level = LOG_DEBUG;   /* every message is formatted ... */
        rest_fuzz_log.quiet_stderr = true; /* ... and goes nowhere */
        log_use(&rest_fuzz_log);
        http_set_test_responder(rest_fuzz_respond, NULL);
        ready = true;
    }
    const struct collector *col = rest_fuzz_collector(name);
    if (rest_fuzz_load(data, size) < 0) {
        rest_fuzz_clear();
        return;
    }
    struct rest_fuzz_cfg c;
    rest_fuzz_config(&c, flags);
    struct err e = {{0}};
    void *state = NULL;
    if (col->init(&c.cfg, &state, &e) < 0) {
        fprintf(stderr, "rest_fuzz: %s init: %s\n", name, e.msg);
        abort(); /* the configuration is fixed: init must work */
    }
    struct sb_opts o = {.max_bytes = 4u << 20};
    struct series_buf *sb = sb_new(&o);
    if (sb) {
        sb_begin_cycle(sb, 1704067200000);
        sb_txn_begin(sb, name);
        /* GETs are tried 3 times on 5xx, but rest_get only pauses between
         * tries when the deadline leaves room for the pause (>= 200 ms)
         * plus 50 ms: with 250 ms it never sleeps */
        int64_t deadline = mono_ms() + 250;
        e.msg[0] = '\0';
        struct collect_ctx ctx = {.sb = sb, .deadline_mono = deadline, .e = &e};
        int rc = col->collect(state, &ctx);
        if (rc < 0 && !e.msg[0]) {
            fprintf(stderr, "rest_fuzz: %s failed without an error message\n", name);
            abort();
        }
        if (rc == 0)
            sb_txn_commit(sb);
        else
            sb_txn_rollback(sb);
        struct sb_sample *v;
        size_t k;
        if (sb_snapshot(sb, true, &v, &k) == 0) {
            struct buf txt, rw;
            buf_init(&txt, 0);
            buf_init(&rw, 0);
            struct rw_encoder *enc = rw_encoder_new();
            if (textfmt_write(sb, v, k, &txt) < 0)
                abort();
            if (enc && k && rw_encode(enc, sb, v, k, 1704067200000, &rw, &e) < 0)
                abort();
            rw_encoder_free(enc);
            buf_free(&txt);
            buf_free(&rw);
            free(v);
        }
        sb_free(sb);
    }
    col->destroy(state);
    rest_fuzz_clear();
}

#endif
