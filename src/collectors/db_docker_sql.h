/* db_docker_sql: the one query behind db_docker and db_cleanup_estimate.
 *
 * Every docker metric of the database (images, tags by age, stale tags,
 * the per-image top-N, and the cleanup estimate) comes from one pass over
 * docker_component and docker_asset: the layer lists of the manifests
 * (attributes.docker.layers, jsonb) are expanded once per cycle, deduped
 * per image, and joined once to the layer blobs. Both collectors build the
 * same text with the same parameters from the same configuration and run
 * it through db_query_cycle(), so whichever runs first in a cycle asks
 * the server and the other replays the kept rows.
 *
 * Rows (text columns, numbers as SQL renders them), ordered by kind,
 * repository, image:
 *   kind "R", one per docker repository (docker_content_repository):
 *     DQ_REPO; DQ_IMAGES distinct images; DQ_AGE + 0..3 tags created at
 *     most 30/90/180/365 days ago; DQ_TAGS_ALL all tags; DQ_NEVER tags
 *     none of whose assets was ever downloaded; DQ_OLD tags last
 *     downloaded before [database] stale_days; with the estimate:
 *     DQ_DEL_TAGS, DQ_DEL_BYTES (NULL without it)
 *   kind "I", the top_images largest images of each repository and
 *     "_other" (the rest summed): DQ_REPO, DQ_IMAGE; DQ_TAGS tags,
 *     DQ_BYTES manifests + distinct layers, DQ_NEWEST / DQ_OLDEST the
 *     dates of the newest / oldest tag (epoch seconds, floor)
 * The definitions are the ones documented in db_docker.c and
 * db_cleanup_estimate.c; the estimate's rule predicate is rendered by
 * cleanup_rules_sql() (the definition `nexus-shipper cleanup` decides
 * with). Config values travel as parameters only: $1 top_images, $2
 * stale_days, $3 the bit of the other part, then the rules' and the repository
 * filters' strings.
 *
 * Parts: every row depends on one repository only (ranking, shared
 * layers and sums are per repository), so the pass is split by
 * the low bit of repository_id into two queries that together return exactly
 * the rows of one: part 0 is prefetched on the session's second
 * connection at the start of the cycle (db_prefetch), the others run on
 * the main connection while the server still works on it, so the pass
 * uses two cores of the database host (a single repository holding
 * everything just runs in one part). */
#ifndef NS_DB_DOCKER_SQL_H
#define NS_DB_DOCKER_SQL_H

#include <stdbool.h>
#include <stddef.h>

#include "cleanup_rules.h"
#include "collector.h"
#include "config.h"
#include "db.h"
#include "util.h"

enum {
    DQ_KIND = 0,
    DQ_REPO = 1,
    DQ_IMAGE = 2,
    /* kind R */
    DQ_IMAGES = 3,
    DQ_AGE = 4, /* 4..7: 30, 90, 180, 365 days */
    DQ_TAGS_ALL = 8,
    DQ_NEVER = 9,
    DQ_OLD = 10,
    DQ_DEL_TAGS = 11,
    DQ_DEL_BYTES = 12,
    /* kind I */
    DQ_TAGS = 3,
    DQ_BYTES = 4,
    DQ_NEWEST = 5,
    DQ_OLDEST = 6,
};

#define DOCKER_PARTS 2 /* by the low bit of repository_id: exactly 2 */

struct docker_sql {
    struct buf sql;
    char **params;
    size_t nparams;
    bool estimate; /* the R rows carry DQ_DEL_TAGS / DQ_DEL_BYTES */
};

/* Renders the query for [database] db; with rules (and the [cleanup]
 * section cl they were made from) the R rows carry the estimate of those
 * rules, with cl's include/exclude_repositories filters. -1 on OOM;
 * docker_sql_free() in every case. */
int docker_sql_build(struct docker_sql *q, const struct cfg_database *db,
                     const struct cleanup_rules *rules, const struct cfg_cleanup *cl);
void docker_sql_free(struct docker_sql *q);

/* Runs every part for ctx's cycle (db_query_cycle), rows to fn (in no
 * particular order across parts). -1 with ctx->e. */
int docker_sql_run(struct db *d, const struct docker_sql *q, struct collect_ctx *ctx, db_row_fn fn,
                   void *ud);

/* Has the session send part 0 early in every cycle on its second
 * connection (db_prefetch), so it runs while db_repositories and the
 * other parts run. -1 on OOM. */
int docker_sql_prefetch(struct db *d, const struct docker_sql *q, struct err *e);

/* What both docker collectors keep: the session, the [cleanup] rules and
 * the query rendered with them. */
struct docker_src {
    struct db *db;
    struct cleanup_rules rules;
    bool rules_ok;
    struct docker_sql q;
};

/* Sets up a docker_src for cfg: with [cleanup], compiles its rules so
 * the query carries the estimate — rules that do not compile are an error
 * when need_rules, else the query goes without the estimate (logged at
 * debug, naming `who`) — then renders the query, opens the session and
 * asks for the prefetch. NULL with e. Free with docker_src_free() (takes
 * a void * so it serves as a collector's destroy; NULL is a no-op). */
struct docker_src *docker_src_new(const struct config *cfg, bool need_rules, const char *who,
                                  struct err *e);
void docker_src_free(void *src);

#endif
