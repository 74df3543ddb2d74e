/* nexus_certificates: TLS certificate expiry and validity (the old exporter's
 * certificates).
 *
 * Endpoints: every https docker connector of Nexus (repositorySettings
 * docker.httpsPort on [nexus] docker_host; needs [nexus]), the [nexus] url
 * itself when it is https, and every host:port of [certificates] endpoints
 * (duplicates checked once). Labels {host, port, repository} (repository
 * set for connector ports only):
 *
 *   nexus_certificate_up                     1 if the certificate could be read (TLS
 *                                            handshake, or Nexus's answer), else 0
 *   nexus_certificate_valid                  source=tls only: 1 if the chain verifies
 *                                            against the CA ([nexus] ca_file when set, else
 *                                            the system store) and the name matches
 *   nexus_certificate_expiry_timestamp_seconds{...,subject,issuer,serial}  notAfter
 *   nexus_certificate_expires_in_seconds     notAfter minus the cycle's time (negative
 *                                            once expired)
 *
 * source = tls: an OpenSSL handshake with SNI (not for IP literals), each
 * endpoint bounded by [certificates] timeout and the collector deadline.
 * source = nexus: GET /service/rest/v1/security/ssl?host=H&port=P (a 400
 * means Nexus could not reach it: up 0). subject and issuer are the common
 * names (the RFC 2253 name when there is no CN), serial is upper-case hex
 * for tls and Nexus's serialNumber for nexus. Certificates expiring within
 * warn_days are logged (rate-limited). A handshake failure is a value
 * (up 0), not a collector error; a broken Nexus answer is an error.
 * State: struct certs (nexus_api may be NULL, SSL_CTX), owned. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "collector.h"
#include "log.h"
#include "nexus_api.h"

static const struct metric_desc m_up = {
    "nexus_certificate_up", MT_GAUGE,
    "1 if the endpoint's certificate could be read (TLS handshake or Nexus's view), else 0.", ""};
static const struct metric_desc m_valid = {
    "nexus_certificate_valid", MT_GAUGE,
    "1 if the certificate chain verifies against the configured CA and the name matches, else 0.",
    ""};
static const struct metric_desc m_expiry = {"nexus_certificate_expiry_timestamp_seconds", MT_GAUGE,
                                            "When the endpoint's certificate expires (notAfter).",
                                            "seconds"};
static const struct metric_desc m_left = {
    "nexus_certificate_expires_in_seconds", MT_GAUGE,
    "Seconds until the certificate expires (negative once expired).", "seconds"};

struct target {
    char *host;
    int port;
    char *repository; /* "" for plain endpoints */
};

struct certs {
    const struct cfg_certificates *cfg;
    struct nexus_api *api; /* NULL without [nexus] */
    SSL_CTX *ssl;          /* source = tls */
    bool nexus_source;
    const char *ca_file;
};

struct tls_result {
    bool up, valid;
    int64_t not_after; /* seconds */
    char subject[256], issuer[256], serial[128];
    char error[256];
};

static bool enabled(const struct config *cfg)
{
    return cfg->certificates != NULL;
}

static void destroy(void *state)
{
    struct certs *c = state;
    if (!c)
        return;
    nexus_api_free(c->api);
    SSL_CTX_free(c->ssl);
    free(c);
}

static int parse_endpoint(const char *s, char *host, size_t hl, int *port);

static int init(const struct config *cfg, void **state, struct err *e)
{
    struct certs *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(e, "out of memory");
        return -1;
    }
    c->cfg = cfg->certificates;
    c->nexus_source = strcmp(cfg->certificates->source, "nexus") == 0;
    for (size_t i = 0; i < c->cfg->endpoints.n; i++) {
        char host[256];
        int port;
        if (parse_endpoint(c->cfg->endpoints.v[i], host, sizeof host, &port) < 0) {
            err_set(e, "[certificates] endpoints: \"%s\" is not host:port", c->cfg->endpoints.v[i]);
            goto fail;
        }
    }
    if (c->nexus_source && !cfg->nexus) {
        err_set(e, "[certificates] source = nexus needs a [nexus] section");
        goto fail;
    }
    if (cfg->nexus && !(c->api = nexus_api_new(cfg->nexus, e)))
        goto fail;
    if (cfg->nexus && cfg->nexus->ca_file && *cfg->nexus->ca_file)
        c->ca_file = cfg->nexus->ca_file;
    if (!c->nexus_source) {
        if (!(c->ssl = SSL_CTX_new(TLS_client_method()))) {
            err_set(e, "cannot create an OpenSSL context");
            goto fail;
        }
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_NONE, NULL); /* verified after, as a value */
        int ok = c->ca_file ? SSL_CTX_load_verify_locations(c->ssl, c->ca_file, NULL)
                            : SSL_CTX_set_default_verify_paths(c->ssl);
        if (ok != 1) {
            err_set(e, "cannot load CA certificates%s%s", c->ca_file ? " from " : "",
                    c->ca_file ? c->ca_file : "");
            goto fail;
        }
    }
    *state = c;
    return 0;
fail:
    destroy(c);
    return -1;
}

/* ---- targets --------------------------------------------------------- */

static void targets_free(struct target *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        free(t[i].host);
        free(t[i].repository);
    }
    free(t);
}

/* Appends host:port unless it is there already. 0, or -1 on OOM. */
static int target_add(struct target **v, size_t *n, size_t *cap, const char *host, int port,
                      const char *repo)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i].port == port && strcasecmp((*v)[i].host, host) == 0)
            return 0;
    struct target *nv = array_grow(*v, cap, *n, sizeof *nv, 16);
    if (!nv)
        return -1;
    *v = nv;
    struct target *t = &(*v)[*n];
    t->host = strdup(host);
    t->repository = strdup(repo ? repo : "");
    t->port = port;
    if (!t->host || !t->repository) {
        free(t->host);
        free(t->repository);
        return -1;
    }
    (*n)++;
    return 0;
}

/* "host:port", "[v6]:port"; port defaults to 443. */
static int parse_endpoint(const char *s, char *host, size_t hl, int *port)
{
    const char *colon;
    const char *h = s;
    size_t len;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb)
            return -1;
        h = s + 1;
        len = (size_t)(rb - h);
        colon = rb[1] == ':' ? rb + 1 : NULL;
        if (rb[1] && !colon)
            return -1;
    } else {
        colon = strrchr(s, ':');
        len = colon ? (size_t)(colon - s) : strlen(s);
    }
    if (!len || len >= hl)
        return -1;
    memcpy(host, h, len);
    host[len] = '\0';
    *port = 443;
    if (colon) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (*end || p < 1 || p > 65535 || end == colon + 1)
            return -1;
        *port = (int)p;
    }
    return 0;
}

/* ---- TLS ------------------------------------------------------------- */

static bool is_ip(const char *host)
{
    unsigned char b[16];
    return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

/* Waits for `ev` on fd until deadline; 0 ready, -1 timeout/error. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = ev};
        int r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int tcp_connect(const char *host, int port, int64_t deadline, char *err, size_t errlen)
{
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(g));
        return -1;
    }
    int fd = -1;
    snprintf(err, errlen, "no address for %s", host);
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc < 0 && errno == EINPROGRESS) {
            if (wait_fd(fd, POLLOUT, deadline) < 0) {
                snprintf(err, errlen, "connect to %s:%d: timed out", host, port);
                close(fd);
                fd = -1;
                continue;
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            rc = soerr ? -1 : 0;
            errno = soerr;
        }
        if (rc == 0)
            break;
        snprintf(err, errlen, "connect to %s:%d: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Common name of `n`, else its RFC 2253 form. */
static void name_string(X509_NAME *n, char *out, size_t len)
{
    out[0] = '\0';
    if (!n)
        return;
    int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
    if (i >= 0) {
        unsigned char *u = NULL;
        int l = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
        if (l >= 0) {
            snprintf(out, len, "%.*s", l, (const char *)u);
            OPENSSL_free(u);
            return;
        }
    }
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
        char *p;
        long l = BIO_get_mem_data(b, &p);
        snprintf(out, len, "%.*s", (int)(l < 0 ? 0 : l), p);
    }
    BIO_free(b);
}

static void ssl_error(const char *what, char *out, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e) {
        char buf[200];
        ERR_error_string_n(e, buf, sizeof buf);
        snprintf(out, len, "%s: %s", what, buf);
    } else {
        snprintf(out, len, "%s: connection closed", what);
    }
    ERR_clear_error();
}

static void tls_probe(SSL_CTX *sctx, const char *host, int port, int64_t deadline,
                      struct tls_result *res)
{
    memset(res, 0, sizeof *res);
    SSL *ssl = NULL;
    X509 *cert = NULL;
    /* a peer that closes early must not kill us with SIGPIPE (blocked in this
     * thread only, a SIGPIPE raised meanwhile is consumed below) */
    sigset_t pipe, old;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    int fd = tcp_connect(host, port, deadline, res->error, sizeof res->error);
    if (fd < 0)
        goto out;
    ERR_clear_error();
    if (!(ssl = SSL_new(sctx)) || SSL_set_fd(ssl, fd) != 1) {
        ssl_error("SSL_new", res->error, sizeof res->error);
        goto out;
    }
    if (is_ip(host)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    } else {
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
    }
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        int se = SSL_get_error(ssl, r);
        if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(fd, se == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) < 0) {
                snprintf(res->error, sizeof res->error, "TLS handshake with %s:%d: timed out", host,
                         port);
                goto out;
            }
            continue;
        }
        char what[300];
        snprintf(what, sizeof what, "TLS handshake with %s:%d", host, port);
        ssl_error(what, res->error, sizeof res->error);
        goto out;
    }
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    cert = SSL_get1_peer_certificate(ssl);
#else
    cert = SSL_get_peer_certificate(ssl);
#endif
    if (!cert) {
        snprintf(res->error, sizeof res->error, "%s:%d sent no certificate", host, port);
        goto out;
    }
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
        snprintf(res->error, sizeof res->error, "%s:%d: unreadable notAfter", host, port);
        goto out;
    }
    res->not_after = (int64_t)timegm(&tm);
    name_string(X509_get_subject_name(cert), res->subject, sizeof res->subject);
    name_string(X509_get_issuer_name(cert), res->issuer, sizeof res->issuer);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(res->serial, sizeof res->serial, "%s", hex ? hex : "");
    OPENSSL_free(hex);
    BN_free(bn);
    long vr = SSL_get_verify_result(ssl);
    res->valid = vr == X509_V_OK;
    if (!res->valid)
        snprintf(res->error, sizeof res->error, "%s:%d: certificate not valid: %s", host, port,
                 X509_verify_cert_error_string(vr));
    res->up = true;
out:
    X509_free(cert);
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    ERR_clear_error();
    /* drop a SIGPIPE raised meanwhile, then restore the mask */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe, NULL, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- Nexus's view ---------------------------------------------------- */

static int nexus_view(struct certs *c, const char *host, int port, int64_t deadline,
                      struct tls_result *res, struct err *e)
{
    struct buf path;
    struct http_response r;
    buf_init(&path, 0);
    http_response_init(&r);
    json_object *j = NULL;
    int rc = -1;
    memset(res, 0, sizeof *res);
    if (buf_puts(&path, "/service/rest/v1/security/ssl?host=") < 0 || url_escape(host, &path) < 0 ||
        buf_printf(&path, "&port=%d", port) < 0) {
        err_set(e, "out of memory");
        goto out;
    }
    char what[600];
    snprintf(what, sizeof what, "GET %s", path.data);
    if (rest_get_json(&c->api->rest, path.data, what, deadline, &j, &r, e) < 0) {
        if (r.status == 400) { /* Nexus could not retrieve it: a value, not an error */
            snprintf(res->error, sizeof res->error, "%s", e->msg);
            rc = 0;
        }
        goto out;
    }
    struct jdec d;
    jd_init(&d, what, e);
    json_object *top;
    int64_t expires;
    const char *subj = NULL, *iss = NULL, *serial = NULL;
    if (jd_object(&d, j, NULL, 0, &top) < 0 || jd_int64(&d, top, "expiresOn", 0, &expires) < 0 ||
        jd_string(&d, top, "subjectCommonName", JD_MAYBE, &subj) < 0 ||
        jd_string(&d, top, "issuerCommonName", JD_MAYBE, &iss) < 0 ||
        jd_string(&d, top, "serialNumber", JD_MAYBE, &serial) < 0)
        goto out;
    res->up = true;
    res->not_after = expires / 1000;
    snprintf(res->subject, sizeof res->subject, "%s", subj ? subj : "");
    snprintf(res->issuer, sizeof res->issuer, "%s", iss ? iss : "");
    snprintf(res->serial, sizeof res->serial, "%s", serial ? serial : "");
    rc = 0;
out:
    json_object_put(j);
    http_response_free(&r);
    buf_free(&path);
    return rc;
}

/* ---- collect --------------------------------------------------------- */

static int collect(void *state, struct collect_ctx *ctx)
{
    struct certs *c = state;
    struct target *t = NULL;
    size_t n = 0, cap = 0;
    struct docker_conn *dc = NULL;
    size_t ndc = 0;
    int rc = -1;
    if (c->api) {
        if (nexus_docker_connectors(c->api, ctx->deadline_mono, &dc, &ndc, ctx->e) < 0)
            goto out;
        for (size_t i = 0; i < ndc; i++)
            if (dc[i].https &&
                target_add(&t, &n, &cap, c->api->docker_host, dc[i].port, dc[i].repository) < 0)
                goto oom;
        if (c->api->https) {
            char ignored[256];
            int port;
            if (url_split(c->api->base, NULL, ignored, sizeof ignored, &port) == 0 &&
                target_add(&t, &n, &cap, c->api->host, port, "") < 0)
                goto oom;
        }
    }
    for (size_t i = 0; i < c->cfg->endpoints.n; i++) {
        char host[256];
        int port;
        if (parse_endpoint(c->cfg->endpoints.v[i], host, sizeof host, &port) < 0) {
            err_set(ctx->e, "[certificates] endpoints: \"%s\" is not host:port",
                    c->cfg->endpoints.v[i]);
            goto out;
        }
        if (target_add(&t, &n, &cap, host, port, "") < 0)
            goto oom;
    }
    double now = (double)sb_cycle_ts(ctx->sb) / 1000.0;
    for (size_t i = 0; i < n; i++) {
        int64_t deadline = mono_ms() + (c->cfg->timeout_ms > 0 ? c->cfg->timeout_ms : 10000);
        if (ctx->deadline_mono && ctx->deadline_mono < deadline)
            deadline = ctx->deadline_mono;
        if (mono_ms() >= deadline) {
            err_set(ctx->e, "deadline reached before checking %s:%d", t[i].host, t[i].port);
            goto out;
        }
        struct tls_result res;
        if (c->nexus_source) {
            if (nexus_view(c, t[i].host, t[i].port, deadline, &res, ctx->e) < 0)
                goto out;
        } else {
            tls_probe(c->ssl, t[i].host, t[i].port, deadline, &res);
        }
        char port[16];
        snprintf(port, sizeof port, "%d", t[i].port);
        const char *h = t[i].host, *repo = t[i].repository;
        char key[96];
        snprintf(key, sizeof key, "certificate-%s:%d", h, t[i].port);
        if (!res.up)
            log_complain(key, "certificate of %s:%d: %s", h, t[i].port, res.error);
        else if (!res.valid && !c->nexus_source)
            log_complain(key, "%s", res.error);
        if (coll_set(ctx, &m_up, res.up ? 1 : 0, "host", h, "port", port, "repository", repo,
                     NULL) < 0)
            goto out;
        if (!res.up)
            continue;
        double left = (double)res.not_after - now;
        if (left < (double)c->cfg->warn_days * 86400.0) {
            snprintf(key, sizeof key, "certificate-expiry-%s:%d", h, t[i].port);
            if (left < 0)
                log_complain(key, "certificate of %s:%d (%s) expired %.0f days ago", h, t[i].port,
                             res.subject, -left / 86400.0);
            else
                log_complain(key, "certificate of %s:%d (%s) expires in %.0f days", h, t[i].port,
                             res.subject, left / 86400.0);
        }
        if ((!c->nexus_source && coll_set(ctx, &m_valid, res.valid ? 1 : 0, "host", h, "port", port,
                                          "repository", repo, NULL) < 0) ||
            coll_set(ctx, &m_expiry, (double)res.not_after, "host", h, "port", port, "repository",
                     repo, "subject", res.subject, "issuer", res.issuer, "serial", res.serial,
                     NULL) < 0 ||
            coll_set(ctx, &m_left, left, "host", h, "port", port, "repository", repo, NULL) < 0)
            goto out;
    }
    rc = 0;
    goto out;
oom:
    err_set(ctx->e, "out of memory");
out:
    docker_conns_free(dc, ndc);
    targets_free(t, n);
    return rc;
}

const struct collector collector_nexus_certificates = {
    .name = "nexus_certificates",
    .enabled = enabled,
    .init = init,
    .collect = collect,
    .destroy = destroy,
};
