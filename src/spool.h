/* spool: durable, CRC-checked batch files ("segments") in spool_dir.
 *
 * Layout: spool_dir/<target>/<16 hex µs>-<8 hex pid>-<4 hex n>.seg, one
 * directory per delivery target, file names ordered by creation time so
 * listing a directory gives the FIFO order. spool_dir/quarantine/ holds
 * segments a receiver rejected (with a .reason file holding its answer)
 * and damaged ones. spool_dir/.lock serialises replays between processes.
 *
 * A segment is written to a temp name, fsync'd, renamed, and the directory
 * fsync'd (DESIGN rule 6). Readers check magic, version, both CRC32Cs and
 * that the payload length matches the file size exactly; they never trust
 * a length field. Layout (little endian):
 *   0 magic "NXSHSPL1" | 8 u16 version=1 | 10 u8 kind | 11 u8 0 |
 *   12 u32 header_len | 16 i64 created_ms | 24 u32 series | 28 u32 samples |
 *   32 i64 min_ts | 40 i64 max_ts | 48 u32 payload_len | 52 u32 payload_crc |
 *   56 u16 target_len, target | u16 extra_len, extra | u32 header_crc
 *   then payload_len bytes of payload (snappy WriteRequest, or text body). */
#ifndef NS_SPOOL_H
#define NS_SPOOL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

enum seg_kind { SEG_REMOTE_WRITE = 1, SEG_PUSHGATEWAY = 2 };

#define SPOOL_MAX_PAYLOAD (64u << 20)
#define SPOOL_NAME_MAX    64

struct seg_meta {
    enum seg_kind kind;
    char target[SPOOL_NAME_MAX];
    int64_t created_ms;
    uint32_t series, samples;
    int64_t min_ts, max_ts;
    char extra[1024]; /* pushgateway: "<METHOD> <group path>" */
};

struct seg_info {
    char path[PATH_MAX];
    char name[64];
    uint64_t file_size;
    struct seg_meta m; /* filled by spool_read_meta / spool_list(with_meta) */
    bool meta_ok;
    char problem[160]; /* why the header could not be read */
};

struct spool;

/* Opens (creating) the spool directory. */
struct spool *spool_open(const char *dir, struct err *e);
void spool_close(struct spool *sp);
const char *spool_dir(const struct spool *sp);

/* Writes one segment durably. Returns 0, or -1 with errno kept (ENOSPC). */
int spool_append(struct spool *sp, const struct seg_meta *m, const void *payload, size_t len,
                 char *name_out, size_t name_n, struct err *e);

/* The same without the directory fsync, for several segments in a row;
 * spool_sync(target) afterwards makes all of them durable at once. */
int spool_append_nosync(struct spool *sp, const struct seg_meta *m, const void *payload, size_t len,
                        struct err *e);
int spool_sync(struct spool *sp, const char *target);

/* Lists segments of `target` (NULL: every target) oldest first. With
 * with_meta, each header is read and checked (payload CRC is not). */
int spool_list(struct spool *sp, const char *target, bool with_meta, struct seg_info **out,
               size_t *n);
/* Target names that have a directory. */
int spool_targets(struct spool *sp, char ***names, size_t *n);

/* Reads and verifies a whole segment; -1 with e->msg naming the file and
 * the defect (truncated, bad magic, CRC mismatch, ...). */
int spool_read(const char *path, struct seg_meta *m, struct buf *payload, struct err *e);

/* Serialises a segment (header + payload) into out (for export). */
int spool_encode(const struct seg_meta *m, const void *payload, size_t len, struct buf *out);
/* Parses a segment from memory; same checks as spool_read. */
int spool_decode(const void *data, size_t len, struct seg_meta *m, const void **payload,
                 size_t *plen, struct err *e);

int spool_remove(struct spool *sp, const struct seg_info *si);
/* Moves a segment to quarantine/ with a .reason file (reason + answer). */
int spool_quarantine(struct spool *sp, const struct seg_info *si, const char *reason,
                     const char *answer);

/* Takes the replay lock (non-blocking). 0 = held, 1 = another process holds it, -1 error. */
int spool_lock(struct spool *sp);
void spool_unlock(struct spool *sp);

struct spool_usage {
    uint64_t bytes;
    uint64_t segments;
    int64_t oldest_ms; /* 0 if empty */
};
int spool_usage(struct spool *sp, const char *target, struct spool_usage *u);

/* Durable write helper: temp file + fsync + rename + directory fsync. */
int write_file_durable(const char *dir, const char *name, const void *a, size_t alen, const void *b,
                       size_t blen, struct err *e);

#endif
