/* The families filled by more than one collector; see families.h. */
#include "families.h"

#include "nexus_api.h"

static const struct metric_desc m_comps = {"nexus_repository_components", MT_GAUGE,
                                           "Components in the repository.", ""};
static const struct metric_desc m_assets = {"nexus_repository_assets", MT_GAUGE,
                                            "Assets in the repository.", ""};
static const struct metric_desc m_size = {"nexus_repository_size_bytes", MT_GAUGE,
                                          "Sum of the sizes of the repository's assets.", "bytes"};
static const struct metric_desc m_tags = {
    "nexus_docker_tags", MT_GAUGE,
    "Tags of the docker image in the repository (with [database]: the top_images largest "
    "images, the rest summed as image=\"_other\").",
    ""};
static const struct metric_desc m_newest = {"nexus_docker_image_newest_tag_age_seconds", MT_GAUGE,
                                            "Age of the image's newest tag.", "seconds"};
static const struct metric_desc m_oldest = {"nexus_docker_image_oldest_tag_age_seconds", MT_GAUGE,
                                            "Age of the image's oldest tag.", "seconds"};

int fam_repository_sizes(struct collect_ctx *ctx, const char *repository, const char *format,
                         double components, double assets, double bytes)
{
    if (coll_set(ctx, &m_comps, components, "repository", repository, "format", format, NULL) < 0 ||
        coll_set(ctx, &m_assets, assets, "repository", repository, "format", format, NULL) < 0 ||
        coll_set(ctx, &m_size, bytes, "repository", repository, "format", format, NULL) < 0)
        return -1;
    return 0;
}

int fam_docker_image(struct collect_ctx *ctx, const char *repository, const char *image,
                     double tags, bool has_newest, double newest_age_s, bool has_oldest,
                     double oldest_age_s)
{
    if (coll_set(ctx, &m_tags, tags, "repository", repository, "image", image, NULL) < 0 ||
        (has_newest && coll_set(ctx, &m_newest, newest_age_s, "repository", repository, "image",
                                image, NULL) < 0) ||
        (has_oldest && coll_set(ctx, &m_oldest, oldest_age_s, "repository", repository, "image",
                                image, NULL) < 0))
        return -1;
    return 0;
}
