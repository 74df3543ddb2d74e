#include "db.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define CANCEL_GRACE_MS 2000              /* after a client-side cancel, time allowed to drain */
#define CACHE_MAX_BYTES (8 * 1024 * 1024) /* values kept per cycle, all queries together */

/* One query's rows kept for the rest of the cycle. */
struct cached {
    struct cached *next;
    char *key; /* sql, then each parameter (see cache_key) */
    size_t key_len;
    PGresult *res; /* every row; NULL when there were none */
    long rows;
};

/* A query sent at the start of a cycle on the side connection. */
struct prefetch {
    struct prefetch *next;
    char *name;
    char *key; /* as cache_key(): sql, then the parameters */
    size_t key_len;
    char *sql;     /* points into key */
    char **params; /* point into key */
    size_t nparams;
};

struct db {
    struct db *next; /* the list of shared sessions */
    int refs;        /* db_new() handles on this session */
    char *conninfo;
    char *password; /* NULL = libpq's own lookup (.pgpass, PGPASSWORD) */
    int64_t stmt_timeout_ms;
    int64_t connect_timeout_ms;
    PGconn *conn;             /* NULL = not connected */
    PGconn *side;             /* the prefetch connection; NULL = not connected */
    struct prefetch *pf;      /* registered prefetches (db_prefetch); owned */
    struct prefetch *pf_busy; /* the one whose rows are in flight on side */
    int64_t pf_cycle;         /* the cycle the prefetches were sent for */
    int64_t pf_sent;          /* mono_ms() when pf_busy was sent */
    long rows;                /* rows handed to the callback by the last run() */
    int64_t cache_cycle;
    struct cached *cache; /* results of cache_cycle; owned */
    size_t cache_bytes;
};

/* Every session of the process, so collectors with the same [database]
 * settings share one (the scheduler runs collectors one at a time). */
static struct db *sessions;

static bool same_str(const char *a, const char *b)
{
    return (!a || !*a) ? (!b || !*b) : (b && strcmp(a, b) == 0);
}

struct db *db_new(const struct cfg_database *c, struct err *e)
{
    for (struct db *s = sessions; s; s = s->next)
        if (s->stmt_timeout_ms == c->statement_timeout_ms &&
            s->connect_timeout_ms == c->connect_timeout_ms && same_str(s->conninfo, c->conninfo) &&
            same_str(s->password, c->password)) {
            s->refs++;
            return s;
        }
    struct db *d = calloc(1, sizeof *d);
    if (!d)
        goto oom;
    d->stmt_timeout_ms = c->statement_timeout_ms;
    d->connect_timeout_ms = c->connect_timeout_ms;
    if (!(d->conninfo = strdup(c->conninfo ? c->conninfo : "")))
        goto oom;
    if (c->password && c->password[0] && !(d->password = strdup(c->password)))
        goto oom;
    d->refs = 1;
    d->next = sessions;
    sessions = d;
    return d;
oom:
    err_set(e, "database: out of memory");
    if (d) {
        free(d->conninfo);
        free(d);
    }
    return NULL;
}

static void send_cancel(PGconn *c);

static void drop(PGconn **cp)
{
    if (*cp) {
        PQfinish(*cp);
        *cp = NULL;
    }
}

static void drop_conn(struct db *d)
{
    drop(&d->conn);
}

static void cache_clear(struct db *d)
{
    while (d->cache) {
        struct cached *c = d->cache;
        d->cache = c->next;
        PQclear(c->res);
        free(c->key);
        free(c);
    }
    d->cache_bytes = 0;
}

void db_free(struct db *d)
{
    if (!d || --d->refs > 0)
        return;
    for (struct db **p = &sessions; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            break;
        }
    cache_clear(d);
    drop_conn(d);
    if (d->pf_busy) /* do not leave the server running a query nobody reads */
        send_cancel(d->side);
    drop(&d->side);
    while (d->pf) {
        struct prefetch *f = d->pf;
        d->pf = f->next;
        free(f->name);
        free(f->key);
        free(f->params);
        free(f);
    }
    free(d->conninfo);
    if (d->password) {
        memset(d->password, 0, strlen(d->password));
        free(d->password);
    }
    free(d);
}

int db_backend_pid(const struct db *d)
{
    return d->conn ? PQbackendPID(d->conn) : 0;
}

/* libpq messages end in "\n" and may span lines: one line, trimmed. */
static void one_line(const char *in, char *out, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; in && in[i] && j + 3 < n; i++) {
        if (in[i] == '\n') {
            if (in[i + 1])
                out[j++] = ';', out[j++] = ' ';
        } else if (in[i] == '\t') {
            if (j > 0 && out[j - 1] != ' ')
                out[j++] = ' ';
        } else if (in[i] != '\r') {
            out[j++] = in[i];
        }
    }
    while (j > 0 && (out[j - 1] == ' ' || out[j - 1] == ';'))
        j--;
    out[j] = 0;
    if (!out[0])
        snprintf(out, n, "unknown error");
}

/* Waits until the socket is ready; 1 ready, 0 deadline, -1 error. */
static int wait_sock(int fd, bool for_write, int64_t deadline)
{
    if (fd < 0)
        return -1;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = (short)(for_write ? POLLOUT : POLLIN)};
        int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static void notice_quiet(void *arg, const char *msg)
{
    (void)arg;
    char line[512];
    one_line(msg, line, sizeof line);
    log_debug("database notice: %s", line);
}

static long run(struct db *d, PGconn **cp, const char *name, const char *sql, size_t nparams,
                const char *const *params, size_t max_rows, int64_t deadline, db_row_fn fn,
                void *ud, struct err *e, bool *conn_lost);

/* Connects *cp (d->conn or d->side) and sets the session up. */
static int db_connect(struct db *d, PGconn **cp, int64_t deadline, struct err *e)
{
    char ct[32], line[400];
    if (mono_ms() >= deadline) {
        err_set(e, "database connect: no time left before the collector deadline");
        return -1;
    }
    int64_t cts = (d->connect_timeout_ms + 999) / 1000;
    snprintf(ct, sizeof ct, "%lld", (long long)(cts < 2 ? 2 : cts));
    /* later keywords override earlier ones: conninfo may set its own
     * connect_timeout / application_name; the password file wins */
    const char *kw[] = {"connect_timeout", "application_name", "dbname", "password", NULL};
    const char *val[] = {ct, "nexus-shipper", d->conninfo, d->password, NULL};
    if (!d->password)
        kw[3] = val[3] = NULL;
    PGconn *c = PQconnectStartParams(kw, val, 1);
    if (!c) {
        err_set(e, "database connect: out of memory");
        return -1;
    }
    int64_t dl = mono_ms() + d->connect_timeout_ms;
    if (deadline < dl)
        dl = deadline;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    if (PQstatus(c) == CONNECTION_BAD)
        st = PGRES_POLLING_FAILED;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            one_line(PQerrorMessage(c), line, sizeof line);
            err_set(e, "database connect: %s", line);
            PQfinish(c);
            return -1;
        }
        int w = wait_sock(PQsocket(c), st == PGRES_POLLING_WRITING, dl);
        if (w <= 0) {
            err_set(e, "database connect: %s after %.1f s", w == 0 ? "timed out" : "poll failed",
                    (double)d->connect_timeout_ms / 1000.0);
            PQfinish(c);
            return -1;
        }
        st = PQconnectPoll(c);
    }
    PQsetNoticeProcessor(c, notice_quiet, NULL);
    *cp = c;

    /* the session is read-only and bounded, whatever the role may do */
    char stm[32];
    snprintf(stm, sizeof stm, "%lld", (long long)d->stmt_timeout_ms);
    const char *p[] = {stm};
    bool lost;
    long n = run(d, cp, "session_setup",
                 "SELECT set_config('default_transaction_read_only', 'on', false),"
                 " set_config('statement_timeout', $1, false), set_config('jit', 'off', false),"
                 " set_config('work_mem', greatest(s.setting::bigint, 16384)::text || 'kB', false)"
                 " FROM pg_catalog.pg_settings s WHERE s.name = 'work_mem'",
                 1, p, 1, deadline, NULL, NULL, e, &lost);
    if (n != 1) {
        if (n >= 0)
            err_set(e, "database query session_setup: no answer");
        drop(cp);
        return -1;
    }
    PGresult *r = PQexec(*cp, "SHOW default_transaction_read_only");
    bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
              strcmp(PQgetvalue(r, 0, 0), "on") == 0;
    PQclear(r);
    if (!ok) {
        err_set(e, "database session_setup: default_transaction_read_only is not on; refusing "
                   "to use the session");
        drop(cp);
        return -1;
    }
    log_debug("database: connected%s (backend pid %d, statement_timeout %lld ms, read-only)",
              cp == &d->side ? " (prefetch connection)" : "", PQbackendPID(*cp),
              (long long)d->stmt_timeout_ms);
    return 0;
}

static void result_error(const PGresult *r, const char *name, struct err *e)
{
    const char *prim = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    char line[400];
    one_line(prim ? prim : PQresultErrorMessage(r), line, sizeof line);
    if (state)
        err_set(e, "database query %s: %s (SQLSTATE %s)", name, line, state);
    else
        err_set(e, "database query %s: %s", name, line);
}

static void send_cancel(PGconn *c)
{
    PGcancel *cn = PQgetCancel(c);
    if (cn) {
        char errbuf[256];
        PQcancel(cn, errbuf, sizeof errbuf);
        PQfreeCancel(cn);
    }
}

/* Sends a query on *cp in single-row mode: 0, or -1 with e->msg (then
 * *conn_lost tells whether the connection broke; it is then dropped). */
static int send_query(PGconn **cp, const char *name, const char *sql, size_t nparams,
                      const char *const *params, struct err *e, bool *conn_lost)
{
    PGconn *c = *cp;
    char line[400];
    *conn_lost = false;
    if (!PQsendQueryParams(c, sql, (int)nparams, NULL, params, NULL, NULL, 0)) {
        one_line(PQerrorMessage(c), line, sizeof line);
        err_set(e, "database query %s: %s", name, line);
        if (PQstatus(c) != CONNECTION_OK) {
            drop(cp);
            *conn_lost = true;
        }
        return -1;
    }
    if (!PQsetSingleRowMode(c)) { /* cannot happen right after a send; never read unbounded */
        err_set(e, "database query %s: cannot switch to single-row mode", name);
        send_cancel(c);
        PGresult *r;
        while ((r = PQgetResult(c)))
            PQclear(r);
        return -1;
    }
    return 0;
}

/* Reads the rows of the query sent on *cp to fn. *conn_lost tells
 * whether the connection broke (it is then dropped). */
static long receive(struct db *d, PGconn **cp, const char *name, size_t max_rows, int64_t deadline,
                    db_row_fn fn, void *ud, struct err *e, bool *conn_lost)
{
    PGconn *c = *cp;
    char line[400];
    long rows = 0;
    int rc = 0;
    bool cancelled = false;
    *conn_lost = false;
    d->rows = 0;
    for (;;) {
        while (PQisBusy(c)) {
            int w = wait_sock(PQsocket(c), false, deadline);
            if (w == 0 && !cancelled) {
                if (rc == 0)
                    err_set(e, "database query %s: cancelled at the collector deadline", name);
                rc = -1;
                cancelled = true;
                send_cancel(c);
                deadline = mono_ms() + CANCEL_GRACE_MS;
                continue;
            }
            if (w <= 0) { /* no answer even to the cancel: give the session up */
                if (rc == 0)
                    err_set(e, "database query %s: no answer from the server", name);
                drop(cp);
                *conn_lost = true;
                return -1;
            }
            if (!PQconsumeInput(c)) {
                one_line(PQerrorMessage(c), line, sizeof line);
                if (rc == 0)
                    err_set(e, "database query %s: %s", name, line);
                goto lost_or_fail;
            }
        }
        PGresult *r = PQgetResult(c);
        if (!r)
            break;
        switch (PQresultStatus(r)) {
        case PGRES_SINGLE_TUPLE:
        case PGRES_TUPLES_OK:
            for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
                rows++;
                d->rows = rows;
                if ((size_t)rows > max_rows) {
                    err_set(e, "database query %s: more than %zu rows (result cap)", name,
                            max_rows);
                    rc = -1;
                } else if (fn && fn(ud, r, e) < 0) {
                    rc = -1;
                }
                if (rc < 0 && !cancelled) {
                    cancelled = true;
                    send_cancel(c);
                }
            }
            break;
        case PGRES_COMMAND_OK:
        case PGRES_EMPTY_QUERY:
            break;
        default:
            if (rc == 0)
                result_error(r, name, e);
            rc = -1;
            break;
        }
        PQclear(r);
    }
    if (PQstatus(c) != CONNECTION_OK) {
        if (rc == 0) {
            one_line(PQerrorMessage(c), line, sizeof line);
            err_set(e, "database query %s: %s", name, line);
        }
        rc = -1;
        goto lost_or_fail;
    }
    return rc < 0 ? -1 : rows;
lost_or_fail:
    if (PQstatus(c) != CONNECTION_OK) {
        drop(cp);
        *conn_lost = true;
    }
    return -1;
}

/* One attempt on the connection *cp. */
static long run(struct db *d, PGconn **cp, const char *name, const char *sql, size_t nparams,
                const char *const *params, size_t max_rows, int64_t deadline, db_row_fn fn,
                void *ud, struct err *e, bool *conn_lost)
{
    d->rows = 0;
    if (send_query(cp, name, sql, nparams, params, e, conn_lost) < 0)
        return -1;
    return receive(d, cp, name, max_rows, deadline, fn, ud, e, conn_lost);
}

long db_query(struct db *d, const char *name, const char *sql, size_t nparams,
              const char *const *params, size_t max_rows, int64_t deadline_mono, db_row_fn fn,
              void *ud, struct err *e)
{
    for (int attempt = 0;; attempt++) {
        bool reused = d->conn != NULL;
        if (!d->conn && db_connect(d, &d->conn, deadline_mono, e) < 0)
            return -1;
        bool lost = false;
        int64_t t0 = mono_ms();
        /* e directly: a row callback reports into the caller's err too */
        long n =
            run(d, &d->conn, name, sql, nparams, params, max_rows, deadline_mono, fn, ud, e, &lost);
        if (n >= 0) {
            log_debug("database query %s: %ld rows in %lld ms", name, n,
                      (long long)(mono_ms() - t0));
            return n;
        }
        /* a session kept from an earlier cycle may have died meanwhile
         * (server restart): one fresh try, if nothing was delivered yet */
        if (lost && reused && d->rows == 0 && attempt == 0 && mono_ms() < deadline_mono) {
            log_info("database: session lost (%s); reconnecting", e->msg);
            continue;
        }
        return -1;
    }
}

/* The cache key: sql, then per parameter a NUL-terminated 'v'value or
 * a lone 'n' for SQL NULL, so no two calls that differ share a key. */
static int cache_key(struct buf *k, const char *sql, size_t nparams, const char *const *params)
{
    if (buf_append(k, sql, strlen(sql) + 1) < 0)
        return -1;
    for (size_t i = 0; i < nparams; i++)
        if (params[i]
                ? (buf_puts(k, "v") < 0 || buf_append(k, params[i], strlen(params[i]) + 1) < 0)
                : buf_append(k, "n", 2) < 0)
            return -1;
    return 0;
}

/* db_query_cycle's row callback: keeps a copy of each row (while the
 * cache has room), then hands the row to the caller's callback. */
struct capture {
    struct db *d;
    PGresult *res; /* rows so far; NULL before the first */
    size_t bytes;
    bool over; /* no room: nothing kept */
    db_row_fn fn;
    void *ud;
};

static int capture_row(void *ud, const PGresult *row, struct err *e)
{
    struct capture *c = ud;
    if (!c->over) {
        int nf = PQnfields(row);
        if (!c->res && !(c->res = PQcopyResult(row, PG_COPYRES_ATTRS)))
            c->over = true;
        int t = c->res ? PQntuples(c->res) : 0;
        c->bytes += 16 + 8 * (size_t)nf;
        for (int i = 0; i < nf && !c->over; i++) {
            bool null = PQgetisnull(row, 0, i);
            int len = null ? -1 : PQgetlength(row, 0, i);
            c->bytes += null ? 0 : (size_t)len;
            if (c->d->cache_bytes + c->bytes > CACHE_MAX_BYTES ||
                !PQsetvalue(c->res, t, i, null ? NULL : PQgetvalue(row, 0, i), len))
                c->over = true;
        }
        if (c->over) {
            PQclear(c->res);
            c->res = NULL;
        }
    }
    return c->fn ? c->fn(c->ud, row, e) : 0;
}

/* Hands the kept rows to fn as one-row results, like a live query. */
static long replay(const struct cached *c, const char *name, size_t max_rows, db_row_fn fn,
                   void *ud, struct err *e)
{
    if ((size_t)c->rows > max_rows) {
        err_set(e, "database query %s: more than %zu rows (result cap)", name, max_rows);
        return -1;
    }
    for (int r = 0; r < c->rows && fn; r++) {
        PGresult *one = PQcopyResult(c->res, PG_COPYRES_ATTRS);
        bool ok = one != NULL;
        for (int i = 0; ok && i < PQnfields(c->res); i++) {
            bool null = PQgetisnull(c->res, r, i);
            ok = PQsetvalue(one, 0, i, null ? NULL : PQgetvalue(c->res, r, i),
                            null ? -1 : PQgetlength(c->res, r, i));
        }
        if (!ok) {
            PQclear(one);
            err_set(e, "database query %s: out of memory", name);
            return -1;
        }
        int rc = fn(ud, one, e);
        PQclear(one);
        if (rc < 0)
            return -1;
    }
    log_debug("database query %s: %ld rows from this cycle's cache", name, c->rows);
    return c->rows;
}

int db_prefetch(struct db *d, const char *name, const char *sql, size_t nparams,
                const char *const *params, struct err *e)
{
    struct buf k;
    buf_init(&k, 0);
    struct prefetch *f = NULL;
    if (cache_key(&k, sql, nparams, params) < 0)
        goto oom;
    for (struct prefetch *o = d->pf; o; o = o->next)
        if (o->key_len == k.len && memcmp(o->key, k.data, k.len) == 0) {
            buf_free(&k);
            return 0;
        }
    if (!(f = calloc(1, sizeof *f)) || !(f->name = strdup(name)) ||
        (nparams && !(f->params = calloc(nparams, sizeof *f->params))))
        goto oom;
    f->key = k.data; /* sql, then per parameter 'v'value or 'n' (cache_key) */
    f->key_len = k.len;
    f->sql = f->key;
    f->nparams = nparams;
    char *p = f->key + strlen(f->key) + 1;
    for (size_t i = 0; i < nparams; i++) {
        f->params[i] = *p == 'v' ? p + 1 : NULL;
        p += strlen(p) + 1;
    }
    /* appended: sent in registration order, one at a time */
    struct prefetch **tail = &d->pf;
    while (*tail)
        tail = &(*tail)->next;
    *tail = f;
    return 0;
oom:
    if (f) {
        free(f->name);
        free(f);
    }
    buf_free(&k);
    err_set(e, "database: out of memory");
    return -1;
}

/* Gives up a prefetch nobody asked for (its cycle is over): a finished
 * one is discarded, a running one cancelled with its connection closed. */
static void prefetch_abandon(struct db *d)
{
    if (d->pf_busy) {
        log_debug("database query %s: prefetched rows not used", d->pf_busy->name);
        d->pf_busy = NULL;
        if (PQconsumeInput(d->side) && !PQisBusy(d->side)) { /* done (e.g. failed): keep */
            PGresult *r;
            while (!PQisBusy(d->side) && (r = PQgetResult(d->side)))
                PQclear(r);
            if (!PQisBusy(d->side))
                return;
        }
        send_cancel(d->side);
        drop(&d->side);
    }
}

/* Sends the first registered prefetch on the side connection (made
 * here when needed; a dead one kept from an earlier cycle is re-made
 * once). Failures only mean no prefetch: the query then runs live. */
static void prefetch_start(struct db *d, int64_t deadline)
{
    struct prefetch *f = d->pf;
    if (!f)
        return;
    struct err e2 = {{0}};
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = d->side != NULL, lost = false;
        if (!d->side && db_connect(d, &d->side, deadline, &e2) < 0)
            break;
        if (send_query(&d->side, f->name, f->sql, f->nparams, (const char *const *)f->params, &e2,
                       &lost) == 0) {
            d->pf_busy = f;
            d->pf_sent = mono_ms();
            return;
        }
        if (!(lost && reused))
            break;
    }
    log_debug("database query %s: not prefetched: %s", f->name, e2.msg);
}

/* Reads the rows of the prefetch in flight to fn: rows (>= 0), -1 with
 * e->msg, or -2 when the side connection turned out to be dead before
 * any row (the caller then asks on the main connection). */
static long prefetch_take(struct db *d, const char *name, size_t max_rows, int64_t deadline,
                          db_row_fn fn, void *ud, struct err *e)
{
    struct err e2 = {{0}};
    bool lost = false;
    int64_t t0 = mono_ms();
    d->pf_busy = NULL;
    long n = receive(d, &d->side, name, max_rows, deadline, fn, ud, &e2, &lost);
    if (n >= 0) {
        log_debug("database query %s: %ld rows in %lld ms (prefetched %lld ms earlier)", name, n,
                  (long long)(mono_ms() - t0), (long long)(t0 - d->pf_sent));
        return n;
    }
    if (lost && d->rows == 0 && mono_ms() < deadline) {
        log_info("database: prefetch session lost (%s); asking on the main session", e2.msg);
        return -2;
    }
    *e = e2;
    return -1;
}

long db_query_cycle(struct db *d, int64_t cycle, const char *name, const char *sql, size_t nparams,
                    const char *const *params, size_t max_rows, int64_t deadline_mono, db_row_fn fn,
                    void *ud, struct err *e)
{
    if (cycle != d->cache_cycle) {
        cache_clear(d);
        prefetch_abandon(d);
        d->cache_cycle = cycle;
    }
    struct buf k;
    buf_init(&k, 0);
    if (cache_key(&k, sql, nparams, params) < 0) {
        buf_free(&k);
        err_set(e, "database query %s: out of memory", name);
        return -1;
    }
    for (const struct cached *c = d->cache; c; c = c->next)
        if (c->key_len == k.len && memcmp(c->key, k.data, k.len) == 0) {
            buf_free(&k);
            return replay(c, name, max_rows, fn, ud, e);
        }
    struct capture cap = {.d = d, .fn = fn, .ud = ud};
    long n = -2;
    if (d->pf_busy && d->pf_busy->key_len == k.len && memcmp(d->pf_busy->key, k.data, k.len) == 0)
        n = prefetch_take(d, name, max_rows, deadline_mono, capture_row, &cap, e);
    if (n == -2) {
        PQclear(cap.res);
        cap = (struct capture){.d = d, .fn = fn, .ud = ud};
        n = db_query(d, name, sql, nparams, params, max_rows, deadline_mono, capture_row, &cap, e);
    }
    /* the cycle's prefetch goes out once the main session answered (so a
     * database that is away costs one connection attempt, not two) */
    if (n >= 0 && d->pf_cycle != cycle) {
        d->pf_cycle = cycle;
        prefetch_start(d, deadline_mono);
    }
    struct cached *c = NULL;
    if (n >= 0 && !cap.over && (c = calloc(1, sizeof *c)) && (c->key = malloc(k.len))) {
        memcpy(c->key, k.data, k.len);
        c->key_len = k.len;
        c->res = cap.res;
        c->rows = n;
        c->next = d->cache;
        d->cache = c;
        d->cache_bytes += cap.bytes + k.len;
    } else {
        free(c);
        PQclear(cap.res);
    }
    buf_free(&k);
    return n;
}

const char *db_col_str(const PGresult *row, int col)
{
    return PQgetisnull(row, 0, col) ? NULL : PQgetvalue(row, 0, col);
}

bool db_col_double(const PGresult *row, int col, double *v)
{
    *v = 0;
    if (PQgetisnull(row, 0, col))
        return false;
    *v = strtod(PQgetvalue(row, 0, col), NULL);
    return true;
}

struct fmt_walk {
    char **v;
    size_t n;
};

static bool fmt_name_ok(const char *s)
{
    if (!*s || strlen(s) > 40)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

static int fmt_row(void *ud, const PGresult *row, struct err *e)
{
    struct fmt_walk *w = ud;
    const char *f = db_col_str(row, 0);
    if (!f || !fmt_name_ok(f))
        return 0;
    char **nv = realloc(w->v, (w->n + 1) * sizeof *nv);
    if (!nv || !(nv[w->n] = strdup(f))) {
        if (nv)
            w->v = nv;
        err_set(e, "database: out of memory");
        return -1;
    }
    w->v = nv;
    w->n++;
    return 0;
}

int db_formats(struct db *d, int64_t cycle, int64_t deadline_mono, char ***fmts, size_t *n,
               struct err *e)
{
    static const char sql[] =
        "SELECT f FROM (SELECT left(c.relname, -length('_content_repository')) AS f"
        " FROM pg_catalog.pg_class c"
        " WHERE c.relkind IN ('r', 'p', 'v', 'm')"
        " AND c.relname LIKE '%\\_content\\_repository' AND pg_catalog.pg_table_is_visible(c.oid)) "
        "s"
        " WHERE f ~ '^[a-z0-9]+$'"
        " AND to_regclass(f || '_component') IS NOT NULL"
        " AND to_regclass(f || '_asset') IS NOT NULL"
        " ORDER BY f";
    struct fmt_walk w = {0};
    if (db_query_cycle(d, cycle, "formats", sql, 0, NULL, 500, deadline_mono, fmt_row, &w, e) < 0) {
        strv_free(w.v, w.n);
        return -1;
    }
    *fmts = w.v;
    *n = w.n;
    return 0;
}

static int exists_row(void *ud, const PGresult *row, struct err *e)
{
    (void)e;
    *(bool *)ud = strcmp(PQgetvalue(row, 0, 0), "t") == 0;
    return 0;
}

int db_relation_exists(struct db *d, const char *name, int64_t deadline_mono, bool *exists,
                       struct err *e)
{
    const char *p[] = {name};
    *exists = false;
    char qn[96];
    snprintf(qn, sizeof qn, "exists[%s]", name);
    return db_query(d, qn, "SELECT to_regclass($1) IS NOT NULL", 1, p, 1, deadline_mono, exists_row,
                    exists, e) < 0
               ? -1
               : 0;
}

int db_sql_fmt(struct buf *out, const char *tmpl, const char *fmt)
{
    if (!fmt_name_ok(fmt))
        return -1;
    buf_reset(out);
    for (const char *p = tmpl; *p;) {
        const char *q = strstr(p, "{f}");
        if (!q)
            return buf_puts(out, p);
        if (buf_append(out, p, (size_t)(q - p)) < 0 || buf_puts(out, fmt) < 0)
            return -1;
        p = q + 3;
    }
    return buf_cstr(out) ? 0 : -1;
}
