/* rw_reference: the remote-write encoder through protobuf-c's generated
 * packer, for tests only (check_encode, fuzz_rwencode): the direct encoder
 * rw_encode() (src/wire/remote_write.c) must write the same bytes.
 *
 * Builds a Prometheus__WriteRequest tree over the buffer's interned strings
 * (nothing is copied), packs and snappy-compresses it into `out` (its
 * content is replaced). Scratch arrays are allocated and freed per call.
 * 0, or -1 with e->msg (out of memory, compression failure). */
#ifndef NS_RW_REFERENCE_H
#define NS_RW_REFERENCE_H

#include <stdint.h>

#include "remote_write.h"

int rw_encode_reference(const struct series_buf *sb, const struct sb_sample *s, size_t n,
                        int64_t ts_ms, struct buf *out, struct err *e);

#endif
