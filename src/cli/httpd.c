#include "httpd.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "config.h"
#include "exitcodes.h"
#include "log.h"
#include "textfmt.h"

#define METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"

/* Slow or hostile clients (issue 18): one epoll thread serves every
 * connection, so a slow client costs a descriptor, not a thread; these
 * bound how many descriptors and for how long. */
#define HTTPD_MAX_CONN       256u /* all clients */
#define HTTPD_LOOPBACK_ONLY  240u /* past this many, only loopback is accepted */
#define HTTPD_MAX_PER_CLIENT 16u  /* per non-loopback address */
#define HTTPD_HEADER_MS      5000  /* accept (or the previous answer) to a complete request */
#define HTTPD_ANSWER_MS      60000 /* a complete request to its answer sent (slow readers) */
#define HTTPD_IDLE_S         10u  /* no byte moved for this long: closed (libmicrohttpd) */

/* one TCP connection, from libmicrohttpd's STARTED to CLOSED notification */
struct hconn {
    struct hconn *next;
    int fd;
    bool loopback;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int64_t since;  /* start of the current request or answer, mono ms */
    bool in_answer; /* the request is complete: HTTPD_ANSWER_MS applies */
    bool cut;       /* shut down by the watchdog */
};

struct httpd {
    struct MHD_Daemon *d;
    pthread_mutex_t cmu;  /* guards conns, n_conns, stopping */
    pthread_cond_t ccond; /* wakes the watchdog to stop */
    struct hconn *conns;
    unsigned n_conns;
    bool stopping, watchdog_started;
    pthread_t watchdog;
    char addr[300]; /* bound "host:port" */
    char *listen;   /* as configured, owned */
    int64_t start_mono;
    pthread_mutex_t mu; /* guards everything below */
    char *text;         /* last rendered /metrics body, owned; NULL before the first cycle */
    size_t text_len;
    int64_t last_cycle_mono; /* 0: no cycle completed yet */
    int64_t interval_ms;
    char *spool_dir; /* owned */
    char *page;      /* status page (HTML), owned; NULL before the first cycle */
    size_t page_len;
    struct httpd_delivery dlv;
    int64_t start_ms; /* wall clock at start: the delivery age's origin */
};

/* ---- listen address ----------------------------------------------------- */

/* Splits "host:port", "[v6]:port" or ":port" into host (may be "") and
 * port. Returns -1 on a malformed string. */
static int split_hostport(const char *s, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        if ((size_t)(rb - s - 1) >= hn)
            return -1;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -1; /* no port, or a bare IPv6 address without brackets */
        if ((size_t)(colon - s) >= hn)
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    const char *p = colon + 1;
    if (!*p || strlen(p) >= pn || strspn(p, "0123456789") != strlen(p) || atol(p) > 65535)
        return -1;
    snprintf(port, pn, "%s", p);
    return 0;
}

/* ---- slow clients ----------------------------------------------------------- */

static bool is_loopback(const struct sockaddr *a)
{
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)a;
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->sa_family == AF_INET6) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *)a)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(v6))
            return true;
        return IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127;
    }
    return false;
}

static bool same_host(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return false;
}

/* libmicrohttpd's thread, before a connection is accepted: loopback
 * (healthcheck, a local scraper) is limited only by HTTPD_MAX_CONN; other
 * addresses by HTTPD_MAX_PER_CLIENT each and by HTTPD_LOOPBACK_ONLY in all,
 * which keeps room for `healthcheck` whoever holds the rest. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct httpd *h = cls;
    (void)len;
    if (is_loopback(addr))
        return MHD_YES;
    enum MHD_Result ok = MHD_YES;
    pthread_mutex_lock(&h->cmu);
    if (h->n_conns >= HTTPD_LOOPBACK_ONLY) {
        ok = MHD_NO;
    } else {
        unsigned same = 0;
        for (struct hconn *c = h->conns; c; c = c->next)
            if (same_host((const struct sockaddr *)&c->addr, addr))
                same++;
        if (same >= HTTPD_MAX_PER_CLIENT)
            ok = MHD_NO;
    }
    pthread_mutex_unlock(&h->cmu);
    return ok;
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct httpd *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct hconn *c = calloc(1, sizeof *c);
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!c || !fi) { /* untracked: only the idle timeout applies */
            free(c);
            *socket_context = NULL;
            return;
        }
        c->fd = fi->connect_fd;
        if (ai && ai->client_addr) {
            c->addr_len = ai->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                 : sizeof(struct sockaddr_in);
            memcpy(&c->addr, ai->client_addr, c->addr_len);
            c->loopback = is_loopback(ai->client_addr);
        }
        c->since = mono_ms();
        pthread_mutex_lock(&h->cmu);
        c->next = h->conns;
        h->conns = c;
        h->n_conns++;
        pthread_mutex_unlock(&h->cmu);
        *socket_context = c;
    } else if (*socket_context) {
        /* removed before libmicrohttpd closes the descriptor: the watchdog
         * never shuts down a number that another connection reuses */
        struct hconn *c = *socket_context;
        pthread_mutex_lock(&h->cmu);
        for (struct hconn **pp = &h->conns; *pp; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                h->n_conns--;
                break;
            }
        pthread_mutex_unlock(&h->cmu);
        free(c);
        *socket_context = NULL;
    }
}

static struct hconn *conn_of(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? (struct hconn *)i->socket_context : NULL;
}

/* the answer went out: a keep-alive connection gets a new head deadline */
static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct httpd *h = cls;
    (void)con_cls;
    (void)toe;
    struct hconn *c = conn_of(connection);
    if (!c)
        return;
    pthread_mutex_lock(&h->cmu);
    c->in_answer = false;
    c->since = mono_ms();
    pthread_mutex_unlock(&h->cmu);
}

/* Shuts down (the socket, not the descriptor: libmicrohttpd closes it)
 * every connection whose request or answer is late, every 250 ms. */
static void *watchdog_main(void *arg)
{
    struct httpd *h = arg;
    pthread_mutex_lock(&h->cmu);
    while (!h->stopping) {
        int64_t now = mono_ms();
        for (struct hconn *c = h->conns; c; c = c->next)
            if (!c->cut && now - c->since > (c->in_answer ? HTTPD_ANSWER_MS : HTTPD_HEADER_MS)) {
                shutdown(c->fd, SHUT_RDWR);
                c->cut = true;
            }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->ccond, &h->cmu, &ts);
    }
    pthread_mutex_unlock(&h->cmu);
    return NULL;
}

/* ---- request handling (libmicrohttpd's thread) ---------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *ctype, char *body,
                             size_t len)
{
    /* takes ownership of the malloc'd body */
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code, const char *fmt, ...)
{
    char *body = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&body, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MHD_NO;
    return reply(c, code, "text/plain; charset=utf-8", body, (size_t)n);
}

static enum MHD_Result serve_metrics(struct httpd *h, struct MHD_Connection *c)
{
    pthread_mutex_lock(&h->mu);
    if (!h->text) {
        pthread_mutex_unlock(&h->mu);
        return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no cycle completed yet\n");
    }
    size_t len = h->text_len;
    char *copy = malloc(len ? len : 1);
    if (copy)
        memcpy(copy, h->text, len);
    pthread_mutex_unlock(&h->mu);
    if (!copy)
        return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    return reply(c, MHD_HTTP_OK, METRICS_CTYPE, copy, len);
}

static enum MHD_Result serve_page(struct httpd *h, struct MHD_Connection *c)
{
    pthread_mutex_lock(&h->mu);
    if (!h->page) {
        pthread_mutex_unlock(&h->mu);
        return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "nexus-shipper: no cycle completed yet; the status page follows the "
                          "first one\n/metrics  last cycle in Prometheus text format\n"
                          "/healthz  200 while cycles complete and the spool is writable\n");
    }
    size_t len = h->page_len;
    char *copy = malloc(len ? len : 1);
    if (copy)
        memcpy(copy, h->page, len);
    pthread_mutex_unlock(&h->mu);
    if (!copy)
        return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", copy, len);
}

/* Creates and removes a dot-file in the spool directory (dot-files are
 * ignored by the spool). A real write, not access(2): root passes
 * access() on a read-only mount or a chmod 000 directory. */
static int probe_writable(const char *dir, char *why, size_t n)
{
    struct stat st;
    if (stat(dir, &st) < 0) {
        snprintf(why, n, "spool_dir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, n, "spool_dir %s is not a directory", dir);
        return -1;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/.healthz-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        snprintf(why, n, "spool_dir %s is not writable: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    if (write(fd, "x", 1) != 1) {
        snprintf(why, n, "spool_dir %s is not writable: %s", dir, strerror(errno));
        rc = -1;
    }
    close(fd);
    unlink(path);
    return rc;
}

/* max_delivery_age=SECONDS (decimal): ms, 0 when absent, -1 when bad */
static int64_t delivery_age_arg(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "max_delivery_age");
    if (!v)
        return 0;
    char *end = NULL;
    double s = strtod(v, &end);
    if (end == v || *end || !(s > 0) || s > 1e9)
        return -1;
    return (int64_t)(s * 1000.0 + 0.5);
}

/* The delivery-age verdict: 0 with an "ok" note in ok[], or -1 with the
 * reason in why[]. */
static int check_delivery(const struct httpd_delivery *d, int64_t start_ms, int64_t max_ms,
                          char *ok, size_t okn, char *why, size_t whyn)
{
    if (!d->targets) {
        snprintf(ok, okn, ", delivery age not checked (no remote-write target delivers)");
        return 0;
    }
    int64_t now = now_ms();
    int64_t since = d->newest_ms > start_ms ? d->newest_ms : start_ms;
    double age = (double)(now - since) / 1000.0, max = (double)max_ms / 1000.0;
    if (now - since <= max_ms) {
        if (d->newest_ms)
            snprintf(ok, okn, ", last delivery %.1f s ago (max_delivery_age %g s)", age, max);
        else
            snprintf(ok, okn, ", no delivery yet, started %.1f s ago (max_delivery_age %g s)", age,
                     max);
        return 0;
    }
    char t[40];
    time_t tt = (time_t)(since / 1000);
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (d->newest_ms && d->newest_ms >= start_ms)
        snprintf(why, whyn,
                 "unhealthy: no target delivered for %.1f s (max_delivery_age %g s), "
                 "last delivery at %s: %s",
                 age, max, t, d->detail);
    else
        snprintf(why, whyn,
                 "unhealthy: no target delivered since the start at %s, %.1f s ago "
                 "(max_delivery_age %g s): %s",
                 t, age, max, d->detail);
    return -1;
}

static enum MHD_Result serve_healthz(struct httpd *h, struct MHD_Connection *c)
{
    int64_t max_age = delivery_age_arg(c);
    if (max_age < 0)
        return reply_text(c, MHD_HTTP_BAD_REQUEST,
                          "bad max_delivery_age: expected seconds (a positive number)\n");
    pthread_mutex_lock(&h->mu);
    int64_t last = h->last_cycle_mono, interval = h->interval_ms;
    struct httpd_delivery dlv = h->dlv;
    char *dir = strdup(h->spool_dir);
    pthread_mutex_unlock(&h->mu);
    if (!dir)
        return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    int64_t now = mono_ms();
    char why[4400], okn[200] = "";
    enum MHD_Result rc;
    if (!last) {
        int64_t up = now - h->start_mono;
        if (up > 2 * interval)
            rc = reply_text(
                c, MHD_HTTP_SERVICE_UNAVAILABLE,
                "unhealthy: no cycle completed in %.1f s since start (interval %.1f s)\n",
                (double)up / 1000.0, (double)interval / 1000.0);
        else
            rc = reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "starting: no cycle completed yet\n");
    } else if (now - last > 2 * interval) {
        rc = reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                        "unhealthy: last cycle completed %.1f s ago (interval %.1f s)\n",
                        (double)(now - last) / 1000.0, (double)interval / 1000.0);
    } else if (probe_writable(dir, why, sizeof why) < 0) {
        rc = reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "unhealthy: %s\n", why);
    } else if (max_age &&
               check_delivery(&dlv, h->start_ms, max_age, okn, sizeof okn, why, sizeof why) < 0) {
        rc = reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "%s\n", why);
    } else {
        rc = reply_text(c, MHD_HTTP_OK,
                        "ok: last cycle completed %.1f s ago, spool_dir writable%s\n",
                        (double)(now - last) / 1000.0, okn);
    }
    free(dir);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct httpd *h = cls;
    (void)version;
    (void)upload_data;
    (void)con_cls;
    if (*upload_data_size) { /* swallow a body (still under the head deadline) */
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct hconn *hc = conn_of(c);
    if (hc) { /* from here on, the answer's deadline */
        pthread_mutex_lock(&h->cmu);
        hc->in_answer = true;
        hc->since = mono_ms();
        pthread_mutex_unlock(&h->cmu);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(h, c);
    if (strcmp(url, "/healthz") == 0)
        return serve_healthz(h, c);
    if (strcmp(url, "/") == 0)
        return serve_page(h, c);
    return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: try /, /metrics or /healthz\n");
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_warn("listen: %s", msg);
}

/* ---- life cycle ----------------------------------------------------------- */

struct httpd *httpd_new(const char *listen, int64_t interval_ms, const char *spool_dir,
                        struct err *e)
{
    char host[256], port[8];
    struct addrinfo *ai = NULL;
    struct httpd *h = NULL;
    if (split_hostport(listen, host, sizeof host, port, sizeof port) < 0) {
        err_set(e, "listen = %s: expected host:port, [ipv6]:port or :port", listen);
        return NULL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (g != 0) {
        err_set(e, "listen = %s: %s", listen, gai_strerror(g));
        return NULL;
    }
    if (!(h = calloc(1, sizeof *h)) || !(h->listen = strdup(listen)) ||
        !(h->spool_dir = strdup(spool_dir))) {
        err_set(e, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->cmu, NULL);
    pthread_cond_init(&h->ccond, NULL);
    h->interval_ms = interval_ms;
    h->start_mono = mono_ms();
    h->start_ms = now_ms();
    /* If no host was given, AI_PASSIVE may return :: first; prefer IPv4
     * 0.0.0.0 for ":port" (say "[::]:port" for IPv6). */
    struct addrinfo *pick = ai;
    if (!host[0])
        for (struct addrinfo *p = ai; p; p = p->ai_next)
            if (p->ai_family == AF_INET) {
                pick = p;
                break;
            }
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (pick->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The server thread inherits this mask: signals stay with the daemon loop. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    h->d = MHD_start_daemon(
        flags, 0, on_accept, h, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, pick->ai_addr, MHD_OPTION_CONNECTION_LIMIT, HTTPD_MAX_CONN,
        MHD_OPTION_CONNECTION_TIMEOUT, HTTPD_IDLE_S, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
    int saved = errno;
    if (h->d && pthread_create(&h->watchdog, NULL, watchdog_main, h) == 0)
        h->watchdog_started = true;
    else if (h->d)
        saved = errno = EAGAIN;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!h->d || !h->watchdog_started) {
        err_set(e, "listen = %s: cannot serve: %s", listen,
                saved ? strerror(saved) : "libmicrohttpd failed to start");
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = di ? di->port : (unsigned)atoi(port);
    const char *shown = host[0] ? host : "0.0.0.0";
    if (strchr(shown, ':'))
        snprintf(h->addr, sizeof h->addr, "[%s]:%u", shown, bound);
    else
        snprintf(h->addr, sizeof h->addr, "%s:%u", shown, bound);
    freeaddrinfo(ai);
    return h;
fail:
    if (ai)
        freeaddrinfo(ai);
    httpd_free(h);
    return NULL;
}

void httpd_free(struct httpd *h)
{
    if (!h)
        return;
    if (h->watchdog_started) {
        pthread_mutex_lock(&h->cmu);
        h->stopping = true;
        pthread_cond_signal(&h->ccond);
        pthread_mutex_unlock(&h->cmu);
        pthread_join(h->watchdog, NULL);
    }
    if (h->d)
        MHD_stop_daemon(h->d); /* CLOSED notifications free the hconns */
    if (h->spool_dir) {
        pthread_mutex_destroy(&h->mu);
        pthread_mutex_destroy(&h->cmu);
        pthread_cond_destroy(&h->ccond);
    }
    free(h->text);
    free(h->page);
    free(h->spool_dir);
    free(h->listen);
    free(h);
}

const char *httpd_address(const struct httpd *h)
{
    return h->addr;
}

const char *httpd_listen(const struct httpd *h)
{
    return h->listen;
}

int httpd_configure(struct httpd *h, int64_t interval_ms, const char *spool_dir)
{
    char *d = strdup(spool_dir);
    if (!d)
        return -1;
    pthread_mutex_lock(&h->mu);
    char *old = h->spool_dir;
    h->spool_dir = d;
    h->interval_ms = interval_ms;
    pthread_mutex_unlock(&h->mu);
    free(old);
    return 0;
}

int httpd_publish(struct httpd *h, struct series_buf *sb, bool completed)
{
    struct sb_sample *v = NULL;
    size_t n = 0;
    struct buf out;
    buf_init(&out, 0);
    int rc = -1;
    if (sb_snapshot(sb, true, &v, &n) < 0 || textfmt_write(sb, v, n, &out) < 0 || !buf_cstr(&out)) {
        log_error("listen: out of memory rendering /metrics; serving the previous cycle");
        buf_free(&out);
        goto out;
    }
    pthread_mutex_lock(&h->mu);
    char *old = h->text;
    h->text = out.data ? out.data : strdup("");
    h->text_len = out.len;
    if (completed)
        h->last_cycle_mono = mono_ms();
    pthread_mutex_unlock(&h->mu);
    free(old); /* out.data now belongs to h */
    rc = 0;
out:
    free(v);
    return rc;
}

int httpd_publish_status(struct httpd *h, const char *html, size_t len,
                         const struct httpd_delivery *d)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, html, len);
    copy[len] = '\0';
    pthread_mutex_lock(&h->mu);
    char *old = h->page;
    h->page = copy;
    h->page_len = len;
    int64_t newest = h->dlv.newest_ms > d->newest_ms ? h->dlv.newest_ms : d->newest_ms;
    h->dlv = *d;
    h->dlv.newest_ms = newest;
    pthread_mutex_unlock(&h->mu);
    free(old);
    return 0;
}

/* ---- `nexus-shipper healthcheck` ------------------------------------------ */

struct small_body {
    char b[1024];
    size_t n;
};

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    struct small_body *sb = ud;
    size_t len = sz * nm, room = sizeof sb->b - 1 - sb->n;
    memcpy(sb->b + sb->n, p, len < room ? len : room);
    sb->n += len < room ? len : room;
    sb->b[sb->n] = '\0';
    return len;
}

int httpd_healthcheck_main(const char *config_path, int argc, char **argv)
{
    const char *url_arg = NULL;
    long timeout_ms = 5000;
    int64_t max_age_ms = 0;
    for (int i = 1; i < argc; i++) {
        /* argv is normalized by cli_parse(), which prints --help */
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc) {
            url_arg = argv[++i];
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout_ms = atol(argv[++i]) * 1000;
            if (timeout_ms <= 0) {
                fprintf(stderr, "healthcheck: bad --timeout %s\n", argv[i]);
                return EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--max-delivery-age") == 0 && i + 1 < argc) {
            if (parse_duration_ms(argv[++i], &max_age_ms) < 0 || max_age_ms <= 0) {
                fprintf(stderr, "healthcheck: bad --max-delivery-age %s (a duration: 90s, 10m)\n",
                        argv[i]);
                return EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "healthcheck: unknown argument %s\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    char url[600], shown[URL_REDACT_MAX];
    if (url_arg) {
        snprintf(url, sizeof url, "%s", url_arg);
    } else {
        struct err e;
        struct config *cfg = config_load(config_path, &e);
        if (!cfg) {
            fprintf(stderr, "%s\n", e.msg);
            return EXIT_CONFIG;
        }
        char host[256], port[8];
        int bad = !cfg->shipper.listen[0] ||
                  split_hostport(cfg->shipper.listen, host, sizeof host, port, sizeof port) < 0;
        if (bad)
            fprintf(stderr, "healthcheck: %s: [shipper] listen is %s\n", config_path,
                    cfg->shipper.listen[0] ? "not host:port"
                                           : "not set (the daemon serves no /healthz)");
        config_free(cfg);
        if (bad)
            return EXIT_CONFIG;
        /* a wildcard address is probed on loopback */
        const char *h = host;
        if (!h[0] || strcmp(h, "0.0.0.0") == 0)
            h = "127.0.0.1";
        else if (strcmp(h, "::") == 0)
            h = "::1";
        if (strchr(h, ':'))
            snprintf(url, sizeof url, "http://[%s]:%s/healthz", h, port);
        else
            snprintf(url, sizeof url, "http://%s:%s/healthz", h, port);
    }
    if (max_age_ms > 0) {
        size_t ul = strlen(url);
        snprintf(url + ul, sizeof url - ul, "%cmax_delivery_age=%.3f", strchr(url, '?') ? '&' : '?',
                 (double)max_age_ms / 1000.0);
    }
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "healthcheck: cannot initialise libcurl\n");
        return EXIT_FAIL;
    }
    struct small_body body = {.n = 0};
    body.b[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK) {
        fprintf(stderr, "healthcheck: %s: %s\n", url_redact(url, shown, sizeof shown),
                curl_easy_strerror(cc));
        return EXIT_FAIL;
    }
    fputs(body.b, code == 200 ? stdout : stderr);
    if (body.n && body.b[body.n - 1] != '\n')
        fputc('\n', code == 200 ? stdout : stderr);
    if (code != 200) {
        fprintf(stderr, "healthcheck: %s answered %ld\n", url_redact(url, shown, sizeof shown),
                code);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
