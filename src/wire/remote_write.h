/* remote_write: Prometheus remote-write 1.0 encoding and answers.
 *
 * rw_encode() turns samples of a series buffer into one WriteRequest
 * (protobuf-c), with MetricMetadata for every family present, and
 * snappy-compresses it (block format) into `out`. The encoder keeps
 * scratch arrays between calls; free it with rw_encoder_free().
 *
 * rw_classify() maps an HTTP answer to the three outcomes every send
 * ends in: delivered, retry later, or drop (counted and logged with the
 * receiver's reason). */
#ifndef NS_REMOTE_WRITE_H
#define NS_REMOTE_WRITE_H

#include <stdint.h>

#include "series.h"
#include "util.h"

enum send_outcome { SEND_OK = 0, SEND_RETRY = 1, SEND_DROP = 2 };
const char *send_outcome_name(enum send_outcome o);

/* status 0 = no HTTP answer (connection error, timeout) -> RETRY;
 * 2xx -> OK; 5xx and 429 -> RETRY; 408 -> RETRY; other 4xx (and 1xx/3xx) -> DROP. */
enum send_outcome rw_classify(long status);

/* Why samples were dropped: the reason label of the dropped-samples
 * counter (names in sender.h's drop_reason_names). The receiver's answer
 * gives the first four (rw_drop_reason); the sender adds the others. */
enum drop_reason {
    DROP_REJECTED,
    DROP_OUT_OF_BOUNDS,
    DROP_UNAUTHORIZED,
    DROP_TOO_LARGE,
    DROP_SPOOL_FULL,
    DROP_SPOOL_AGE,
    DROP_CORRUPT,
    DROP_NREASONS
};

/* Prometheus answers 400 with "out of bounds" / "too old" / "out of order"
 * when samples fall outside its TSDB head: a reason of its own. */
enum drop_reason rw_drop_reason(long status, const char *body);

struct rw_encoder;
struct rw_encoder *rw_encoder_new(void);
void rw_encoder_free(struct rw_encoder *enc);

/* Encodes n samples (all at timestamp ts_ms) into a compressed WriteRequest.
 * A value of -0 is sent as 0: proto3 omits a zero double (protobuf-c and
 * Prometheus's own encoder alike); every other value travels bit for bit.
 * The direct encoder: byte-identical to protobuf-c's generated packer
 * (the tests compare it with tests/lib/rw_reference.c), several times
 * faster (no message tree, no reflection). */
int rw_encode(struct rw_encoder *enc, const struct series_buf *sb, const struct sb_sample *s,
              size_t n, int64_t ts_ms, struct buf *out, struct err *e);

/* The request headers (without Content-Length), NULL-terminated. */
extern const char *const rw_headers[];

/* For tests and spool tools: decompress and decode a payload. The result
 * is owned by the caller (prometheus__write_request__free_unpacked). */
struct Prometheus__WriteRequest;
struct Prometheus__WriteRequest *rw_decode(const void *payload, size_t len, struct err *e);
void rw_decoded_free(struct Prometheus__WriteRequest *wr);

#endif
