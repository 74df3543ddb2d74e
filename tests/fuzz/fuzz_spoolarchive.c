/* libFuzzer target: the `spool import` archive reader
 * (spool_archive_parse) on arbitrary bytes, as a damaged or forged archive
 * carried across an air gap would be. Whatever it accepts, every segment
 * handed out has a safe name and target and decodes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "spool_cli.h"

static int check(void *arg, const char *name, const struct seg_meta *m, const void *payload,
                 size_t len)
{
    size_t *n = arg;
    (*n)++;
    if (!name || strchr(name, '/') || name[0] == '.' || !m->target[0] || strchr(m->target, '/') ||
        m->target[0] == '.' || len > SPOOL_MAX_PAYLOAD || (len && !payload))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* spool_archive_parse reads a NUL-terminated buffer (as read_file gives) */
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    size_t n = 0;
    struct err e;
    int rc = spool_archive_parse(copy, size, check, &n, &e);
    if (rc >= 0 && (size_t)rc != n)
        abort();
    free(copy);
    return 0;
}
