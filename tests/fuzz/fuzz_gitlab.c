/* libFuzzer target: gitlab_stale_tags on hostile answers from both sides:
 * Nexus (repositories, components paged by continuationToken) and GitLab
 * API v4 (projects, one project, branches and tags, paged by X-Next-Page
 * or Link rel="next"). Byte 0 is ignored (the Nexus target's selector,
 * so both corpora share one format), byte 1 picks the configuration
 * ([gitlab] projects listed or not, image_prefix); the rest are the
 * servers' answers (format and checks: rest_fuzz.h). */
#include "rest_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > (1u << 20))
        return 0;
    rest_fuzz_run("gitlab_stale_tags", data[1], data + 2, size - 2);
    return 0;
}
