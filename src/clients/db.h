/* db: a read-only, bounded libpq session on the Nexus PostgreSQL database.
 *
 * Sessions are shared: db_new() with the same settings (conninfo,
 * password, timeouts) as a live session returns that session with one
 * more reference, so every database collector of a configuration uses one
 * connection (the scheduler runs collectors one at a time; the module is
 * not thread-safe). Each user frees its handle with db_free(); the last
 * one closes the session (and its prefetch connection, see db_prefetch).
 * Sessions are persistent across cycles. The
 * connection is made lazily by the first query and re-made by the next
 * query after it was lost, so a database that is down at start-up or
 * restarts mid-run only marks the collectors down for the cycles it is
 * away.
 *
 * Session: [database] conninfo (keyword=value or URI; sslmode etc. are
 * honoured as given), connect_timeout, application_name=nexus-shipper
 * (conninfo may override it), password from password_file (else libpq's
 * .pgpass / PGPASSWORD). Right after connecting, every session runs
 *   SET default_transaction_read_only = on; SET statement_timeout = <ms>
 * (as set_config() calls, checked): the shipper never writes. It also
 * sets jit = off: the aggregates run a few hundred milliseconds, and the
 * row estimates of jsonb_array_elements (100 a call) made the planner JIT
 * compile for seconds (measured: 4.1 s of a 4.7 s query at 1M assets).
 * And it raises work_mem to at least 16MB (a higher server setting is
 * kept): the docker pass's hash aggregates spilled to disk at the 4MB
 * default (+13 % CPU at 1M assets); one query runs at a time.
 *
 * Queries: parameterised only (PQsendQueryParams; values never spliced
 * into SQL text), rows streamed one at a time (single-row mode) to a
 * callback, at most max_rows rows (more = error, query cancelled), bounded
 * by the session's statement_timeout and by the caller's monotonic
 * deadline (then cancelled client-side). Every error names the query and
 * carries the server's message and SQLSTATE, e.g.
 *   "database query repository_sizes[maven2]: canceling statement due to
 *    statement timeout (SQLSTATE 57014)". */
#ifndef NS_DB_H
#define NS_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util.h"

struct db;

/* Copies what it needs from c (c may be freed afterwards). Does not
 * connect. NULL with e->msg on OOM. */
struct db *db_new(const struct cfg_database *c, struct err *e);
void db_free(struct db *d);

/* Called once per row: `row` is a one-row result (column access with
 * PQgetvalue(row, 0, col) / the db_col_* helpers). Return 0 to go on, -1
 * (with e->msg set) to stop: the query is cancelled and db_query fails. */
typedef int (*db_row_fn)(void *ud, const PGresult *row, struct err *e);

/* Runs `sql` with text parameters params[0..nparams-1] ($1..; NULL = SQL
 * NULL). `name` names the query in errors and logs. Connects first if
 * needed; when a connection kept from an earlier cycle turns out to be
 * dead before any row arrived, reconnects once and retries. Returns the
 * number of rows (>= 0) or -1 with e->msg. */
long db_query(struct db *d, const char *name, const char *sql, size_t nparams,
              const char *const *params, size_t max_rows, int64_t deadline_mono, db_row_fn fn,
              void *ud, struct err *e);

/* Per-cycle result cache: db_query() that keeps the rows of a successful
 * query for the rest of the cycle `cycle` (the scheduler's cycle
 * timestamp, sb_cycle_ts), so collectors that read the same data in a
 * cycle ask the server once. A call with the same sql and params (the
 * key, compared byte for byte) in the same cycle replays the kept rows to
 * fn, one-row results as from a live query, without a round trip.
 * Owner: the session (shared by the handles of one configuration); the
 * first call for a newer cycle drops what older cycles kept, db_free() of
 * the last handle drops the rest. At most 8 MiB of values are kept per
 * session: a result that does not fit is not kept (the next caller asks
 * the server again); a failed query is never kept. */
long db_query_cycle(struct db *d, int64_t cycle, const char *name, const char *sql, size_t nparams,
                    const char *const *params, size_t max_rows, int64_t deadline_mono, db_row_fn fn,
                    void *ud, struct err *e);

/* Registers a query for prefetching: once the first db_query_cycle() of
 * a cycle has been answered, the session sends this query (sql, params
 * copied; same key rules as the cache) on a second connection (made like
 * the main one: application_name, read-only, statement_timeout, checked),
 * without waiting for it, so the server runs it while the collectors
 * that come first use the main connection. The db_query_cycle() of that
 * cycle with the same sql and params then reads its rows from there (and
 * keeps them for the cycle like any other). A prefetch nobody asked for
 * by the next cycle is cancelled. Rows are read only by that call
 * (single-row mode), so memory stays bounded as for a live query. If the
 * second connection cannot be made or is found dead before any row, the
 * query runs on the main connection instead. One prefetch in flight at a
 * time (the first registered); registering the same query again is a
 * no-op. -1 on OOM. */
int db_prefetch(struct db *d, const char *name, const char *sql, size_t nparams,
                const char *const *params, struct err *e);

/* Nexus formats whose {f}_content_repository, {f}_component, {f}_asset
 * tables are all visible (search_path), sorted; a format missing any of
 * them is skipped. *fmts is malloc'd (strv_free). Names are checked to be
 * [a-z0-9]+ so they can be used as SQL identifiers. Asked once per
 * cycle (db_query_cycle). */
int db_formats(struct db *d, int64_t cycle, int64_t deadline_mono, char ***fmts, size_t *n,
               struct err *e);

/* Renders a per-format query: every "{f}" in tmpl becomes the format
 * name (which must be [a-z0-9]+, as db_formats() guarantees; -1
 * otherwise), so "{f}_asset" names that format's table. */
int db_sql_fmt(struct buf *out, const char *tmpl, const char *fmt);

/* *exists = whether a table or view `name` is visible on the search_path. */
int db_relation_exists(struct db *d, const char *name, int64_t deadline_mono, bool *exists,
                       struct err *e);

/* Column helpers on a one-row result. db_col_double returns false for SQL
 * NULL (and *v = 0). */
const char *db_col_str(const PGresult *row, int col);
bool db_col_double(const PGresult *row, int col, double *v);

/* Descriptor parts shared by the database collectors whose state is one
 * struct db: enabled when [database] is present; init does not connect
 * (defined in collector.c with the rest of the collector API). */
bool db_collector_enabled(const struct config *cfg);
int db_collector_init(const struct config *cfg, void **state, struct err *e);
void db_collector_destroy(void *state);

/* The server's pid of the current session (0 when not connected): tests
 * and logs. */
int db_backend_pid(const struct db *d);

#endif
