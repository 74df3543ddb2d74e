/* spool_int.h: the spool's internals, shared by the files that implement
 * spool.h. Not an API: only src/delivery/spool*.c include it; everyone
 * else uses spool.h (whose comment is the contract: layout, durability,
 * done marks, index, out of memory, damage).
 *
 * Who owns what:
 *   spool_record.c     the record (segment) encoding: header, CRCs,
 *                      spool_encode/decode, the log scanner (scan_core,
 *                      resync), spool_target_kind, spool_record_check
 *   spool_index.c      the in-memory index: struct tgt/sfile/ent, building
 *                      (ensure, tgt_rebuild), refreshing (tgt_refresh)
 *   spool_writer.c     our own logs: append, fdatasync, rotate, writer
 *                      open/close; spool_append*, spool_sync, spool_rotate
 *   spool_quarantine.c retiring records: done marks (spool_remove) and
 *                      spool_quarantine
 *   spool.c            open/close, reads, listing, the spool lock, usage
 *
 * Locking: the index and writer functions expect sp->mu held by their
 * caller (the public spool_* entry points take it); the encoding
 * functions, rd_read, read_at and fsync_dir touch no spool state. Memory: struct tgt
 * and its files/entries belong to the spool and are freed by
 * spool_close; ent_free frees an entry's strings, not the entry.
 * Errors: -1 with errno (ENOMEM: the index is left stale, see spool.h). */
#ifndef NS_SPOOL_INT_H
#define NS_SPOOL_INT_H

#include "spool.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#define MAGIC      "NXSHSPL1"
#define DEAD       "NXSHDEAD" /* a quarantined damaged region starts with this */
#define VERSION    1
#define FIXED_LEN  56
#define MAX_HEADER (64 * 1024)
#define STATE_OFF  11
#define MIN_ROTATE (64u << 10)

enum dmg { DMG_NONE, DMG_REGION, DMG_TAIL, DMG_FILE };

struct sfile { /* a log or .seg file of a target known to the index */
    struct sfile *next;
    char name[64];
    uint64_t end; /* scanned up to here */
    size_t refs;  /* index entries in it */
    bool legacy;  /* *.seg: one record, done = unlink */
    bool live;    /* another live process appends to it */
    bool partial; /* not all of it is indexed (out of memory): never unlinked */
};

struct ent { /* an index entry */
    struct sfile *f;
    uint64_t off, len;
    int64_t created_ms, min_ts, max_ts;
    uint32_t series, samples;
    uint8_t kind;
    uint8_t dmg;
    bool gone;
    char *extra;   /* pushgateway: "<METHOD> <group>" */
    char *problem; /* damaged */
};

struct entv {
    struct ent *v;
    size_t head, n, cap;
};

struct spool;

struct tgt {
    struct tgt *next;
    struct spool *sp;
    char name[SPOOL_NAME_MAX];
    char dir[PATH_MAX];
    struct sfile *files;
    struct entv q;         /* durable entries, FIFO from q.head */
    uint64_t bytes, count; /* pending records (damaged excluded) */
    struct timespec mtime; /* of dir at the last listing */
    bool listed;
    /* our writer */
    struct sfile *wf;
    int wfd;
    uint64_t wend, wsynced;
    bool wdir_unsynced; /* the log's directory entry is not fsync'd yet */
    struct entv u;      /* appended, not yet fdatasync'd */
    uint64_t ubytes, ucount;
};

struct spool {
    char *dir;
    int lock_fd;
    bool stale; /* index must be (re)built */
    int ierr;   /* why the last build or refresh was incomplete (errno) */
    uint64_t rotate;
    pthread_mutex_t mu;
    struct tgt *t;
};

static inline void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static inline void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* spool_record.c: the record header (header_check: -1 damaged with `why`),
 * reading a file or memory (struct rd), scanning a log from an offset */
struct rd { /* a file (pread) or memory */
    int fd;
    const unsigned char *mem;
};
int header_check(const unsigned char *h, size_t avail, uint32_t *hl_out, uint32_t *pl_out,
                 struct seg_meta *m, char *why, size_t whyn);
int encode_header(const struct seg_meta *m, const void *payload, size_t len, struct buf *out);
size_t rd_read(const struct rd *r, uint64_t off, void *buf, size_t n, uint64_t size);
uint64_t scan_core(const struct rd *r, uint64_t off, uint64_t size, spool_scan_cb cb, void *arg);

/* spool_index.c */
void ent_free(struct ent *e);
int entv_reserve(struct entv *q, size_t k);
struct ent *entv_push(struct entv *q);
void entv_free(struct entv *q);
void file_path(const struct tgt *t, const struct sfile *f, char *out, size_t n);
void sfile_unlink_free(struct tgt *t, struct sfile *f, bool unlink_it);
void ent_drop(struct tgt *t, struct ent *e, bool unlink_file);
void ent_publish(struct tgt *t, struct ent *e);
struct tgt *tgt_get(struct spool *sp, const char *name, bool create);
void index_fail(struct tgt *t, struct sfile *f);
int cmp_str(const void *a, const void *b);
bool is_target_dir(const struct spool *sp, const char *name);
int ensure(struct spool *sp);
int tgt_refresh(struct tgt *t);

/* spool_writer.c */
void writer_close(struct tgt *t);
int fsync_dir(const char *dir);

/* spool.c */
int read_at(const char *path, uint64_t off, uint64_t len, struct buf *b, struct err *e);

#endif
