/* libFuzzer target: the spool segment reader (spool_decode) on arbitrary
 * bytes, as a damaged or foreign file carried between sites would be. A
 * decoded segment is re-encoded and must decode to the same content. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seg_meta m;
    const void *p;
    size_t pl;
    struct err e;
    if (spool_decode(data, size, &m, &p, &pl, &e) < 0)
        return 0;
    struct buf b;
    buf_init(&b, 0);
    if (spool_encode(&m, p, pl, &b) == 0) {
        struct seg_meta m2;
        const void *p2;
        size_t pl2;
        if (spool_decode(b.data, b.len, &m2, &p2, &pl2, &e) < 0 || pl2 != pl ||
            memcmp(p, p2, pl) != 0 || m2.samples != m.samples || strcmp(m2.target, m.target) != 0)
            abort();
    }
    buf_free(&b);
    return 0;
}
