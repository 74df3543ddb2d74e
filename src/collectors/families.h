/* families: the metric families that more than one collector fills.
 *
 * One family, one meaning, one label set, whichever source fills it: the
 * REST collector (nexus_components, without [database]) and the database
 * collectors (db_repositories, db_docker, with [database]) report the
 * same repository and docker-image families, so a site that adds
 * [database] keeps its dashboards. Each such family is declared here
 * once (name, type, HELP, unit) and set only through the helpers below,
 * which fix its labels:
 *
 *   nexus_repository_components / _assets / _size_bytes   {repository, format}
 *   nexus_docker_tags, nexus_docker_image_newest_tag_age_seconds,
 *   nexus_docker_image_oldest_tag_age_seconds             {repository, image}
 *
 * The helpers return coll_set()'s result: 0, or -1 with ctx->e set. */
#ifndef NS_COLLECTORS_FAMILIES_H
#define NS_COLLECTORS_FAMILIES_H

#include <stdbool.h>

#include "collector.h"

/* The repository's component, asset and byte totals. */
int fam_repository_sizes(struct collect_ctx *ctx, const char *repository, const char *format,
                         double components, double assets, double bytes);

/* The image's tag count and, when has_age, its newest / oldest tag ages
 * in seconds. */
int fam_docker_image(struct collect_ctx *ctx, const char *repository, const char *image,
                     double tags, bool has_newest, double newest_age_s, bool has_oldest,
                     double oldest_age_s);

#endif
