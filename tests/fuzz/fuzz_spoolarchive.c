/* libFuzzer target: the `spool import` archive reader
 * (spool_archive_check_sig, then spool_archive_parse) on arbitrary bytes,
 * as a damaged or forged archive carried across an air gap would be.
 * Whatever it accepts, every segment handed out has a safe name and
 * target, decodes, and passes the record check (its kind is its target's
 * kind; a Pushgateway push is PUT + a grouping-grammar path). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"
#include "spool_archive.h"

static int check(void *arg, const char *name, const struct seg_meta *m, const void *payload,
                 size_t len)
{
    size_t *n = arg;
    (*n)++;
    if (!name || strchr(name, '/') || name[0] == '.' || !m->target[0] || strchr(m->target, '/') ||
        m->target[0] == '.' || len > SPOOL_MAX_PAYLOAD || (len && !payload))
        abort();
    struct err e;
    if (spool_record_check(m, m->target, &e) < 0)
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
    /* a signature line is stripped first (keyless: not checked), as import does */
    size_t inner = size;
    if (spool_archive_check_sig(copy, size, NULL, &inner, &e) < 0 || inner > size)
        abort(); /* without a key nothing is refused for its signature */
    int rc = spool_archive_parse(copy, inner, check, &n, &e);
    if (rc >= 0 && (size_t)rc != n)
        abort();
    /* with a key: refused unless signed with it; never reads past size */
    if (spool_archive_check_sig(copy, size, "fuzz-key-0123456789", &inner, &e) > 0 && inner > size)
        abort();
    free(copy);
    return 0;
}
