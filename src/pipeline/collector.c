/* The collector API's shared parts (collector.h): coll_set, and the
 * descriptor parts of the collectors whose state is one client —
 * nexus_collector_* (declared in nexus_api.h) and db_collector_*
 * (declared in db.h) — so a collector includes only the client it uses. */
#include "collector.h"

#include <stdarg.h>

#include "db.h"
#include "nexus_api.h"

int coll_set(struct collect_ctx *ctx, const struct metric_desc *d, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    int rc = sb_vset(ctx->sb, d, v, ap, 16, ctx->e);
    va_end(ap);
    return rc;
}

int coll_set_probe(struct collect_ctx *ctx, const struct probe_descs *d, bool up, double seconds,
                   long status, ...)
{
    const struct metric_desc *const descs[3] = {d->up, d->seconds, d->status};
    const double vals[3] = {up ? 1 : 0, seconds, (double)status};
    for (int i = 0; i < 3; i++) {
        va_list ap;
        va_start(ap, status);
        int rc = sb_vset(ctx->sb, descs[i], vals[i], ap, 16, ctx->e);
        va_end(ap);
        if (rc < 0)
            return -1;
    }
    return 0;
}

bool nexus_collector_enabled(const struct config *cfg)
{
    return cfg->nexus != NULL;
}

int nexus_collector_init(const struct config *cfg, void **state, struct err *e)
{
    *state = nexus_api_new(cfg->nexus, e);
    return *state ? 0 : -1;
}

void nexus_collector_destroy(void *state)
{
    nexus_api_free(state);
}

bool db_collector_enabled(const struct config *cfg)
{
    return cfg->database != NULL;
}

int db_collector_init(const struct config *cfg, void **state, struct err *e)
{
    *state = db_new(cfg->database, e);
    return *state ? 0 : -1;
}

void db_collector_destroy(void *state)
{
    db_free(state);
}
