/* spool: durable, CRC-checked batch records in append-only logs, with an
 * in-memory index.
 *
 * Layout: spool_dir/<target>/<16 hex µs>-<8 hex pid>.log, one directory per
 * delivery target. A log holds consecutive records; each record is one
 * batch in the segment encoding below (header, then payload). A process
 * only ever appends to logs it created itself: a new log per process (and
 * per target), rotated at spool_set_rotate() bytes; the writer holds an
 * exclusive flock(2) on its log while it may append, so other processes
 * can tell a live log (an incomplete tail is a write in progress) from a
 * dead one (an incomplete tail is a torn write: SIGKILL, power loss). A
 * new log is created unnamed (O_TMPFILE), locked, given its first record,
 * fdatasync'd, linked into place and the directory fsync'd: it is never
 * visible empty or unlocked. Files spool_dir/<target>/NAME.seg are segment files of
 * the previous one-file-per-batch format: read, delivered and removed like
 * records (an upgrade with a full spool loses nothing); nothing writes them
 * any more. spool_dir/quarantine/ holds what a receiver rejected and what
 * is damaged, each as a standalone segment file (<target>__<name>.seg, or
 * the damaged file itself) with a .reason file (file, offset, why, the
 * receiver's answer). spool_dir/.lock serialises delivery between
 * processes: only its holder delivers, quarantines or replays.
 *
 * Durability: spool_append() = write at the end of the log + fdatasync
 * (one per batch; the first record of a new log also fsyncs the
 * directory). spool_append_nosync() writes only; spool_sync() makes every
 * record appended so far durable with one fdatasync. A record is visible
 * to delivery (spool_peek/spool_list/spool_usage) only once durable
 * (write-ahead: nothing is sent before it is on disk).
 *
 * Done: after a 2xx (or a drop, or quarantine) a record is marked done in
 * place: byte 11 of its header (excluded from the header CRC) is set with
 * pwrite + fdatasync: no size change, no metadata commit. A log whose
 * records are all done and which no live writer appends to is unlinked; a
 * .seg file is unlinked. SIGKILL at any moment resends at most the batch in
 * flight.
 *
 * Index: per target, the pending records (file, offset, length, meta) in
 * FIFO order (creation time), built by scanning the logs' headers (each
 * length checked against the file size; never trusted), rebuilt when the
 * spool lock is acquired (another process may have delivered meanwhile),
 * and then maintained on append, done and drop. spool_refresh() picks up
 * logs other processes created or appended to (a stat of the target
 * directory, plus an fstat per live foreign log), so delivery, the gauges
 * and the caps cost O(1) per batch, not O(backlog).
 *
 * Out of memory: room in the index is taken before a record is written,
 * so an append either fails (ENOMEM, nothing written) or is indexed. An
 * allocation failing while the index is built or refreshed makes the call
 * fail (-1, errno ENOMEM) and leaves the index stale: the next call
 * rebuilds it rather than trust it, a file not completely indexed is never
 * unlinked, and spool_remove on a stale index only marks the record done
 * in place. Callers retry later (the next delivery round; replay and
 * export exit non-zero): nothing is lost or reported delivered.
 *
 * Damage: a region that is not a valid record (header CRC or bounds fail)
 * becomes an index entry with a problem: delivery copies it to quarantine,
 * overwrites its first 8 bytes with "NXSHDEAD" (skipped silently by later
 * scans) and the scan has resynchronised on the next magic whose header CRC
 * verifies, so the rest still replays. A record whose payload CRC fails is
 * quarantined and marked done. An incomplete last record of a dead log (a
 * torn write, never acknowledged durable) is quarantined and cut off
 * (ftruncate). A zero-length or foreign file in a target directory is
 * moved to quarantine as a whole.
 *
 * Segment encoding (little endian):
 *   0 magic "NXSHSPL1" | 8 u16 version=1 | 10 u8 kind | 11 u8 state (0 =
 *   pending, else done; excluded from the header CRC) | 12 u32 header_len |
 *   16 i64 created_ms | 24 u32 series | 28 u32 samples | 32 i64 min_ts |
 *   40 i64 max_ts | 48 u32 payload_len | 52 u32 payload_crc |
 *   56 u16 target_len, target | u16 extra_len, extra | u32 header_crc
 *   then payload_len bytes of payload (snappy WriteRequest, or text body).
 *
 * Thread safety: every function taking a struct spool locks its mutex (a
 * collecting thread appends while a delivery thread delivers). */
#ifndef NS_SPOOL_H
#define NS_SPOOL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

enum seg_kind { SEG_REMOTE_WRITE = 1, SEG_PUSHGATEWAY = 2 };

#define SPOOL_MAX_PAYLOAD (64u << 20)
#define SPOOL_NAME_MAX    64
#define SPOOL_ROTATE      (8u << 20) /* default log size before a new one */

struct seg_meta {
    enum seg_kind kind;
    char target[SPOOL_NAME_MAX];
    int64_t created_ms;
    uint32_t series, samples;
    int64_t min_ts, max_ts;
    char extra[1024]; /* pushgateway: "<METHOD> <group path>" */
};

/* One index entry: a pending record, or a damaged region/file. */
struct seg_info {
    char path[PATH_MAX]; /* the file holding it */
    char name[96];       /* unique, stable: "<log stem>+<offset>.seg", or the .seg file name */
    char target[SPOOL_NAME_MAX];
    uint64_t offset;
    uint64_t file_size; /* bytes of this record (header + payload) or damaged region */
    struct seg_meta m;
    bool meta_ok;      /* false: damaged (problem says why) */
    char problem[200]; /* why the entry is damaged */
};

struct spool;

/* Opens (creating) the spool directory. The index is built lazily. */
struct spool *spool_open(const char *dir, struct err *e);
/* Syncs pending appends, unlinks its own fully done logs, closes. */
void spool_close(struct spool *sp);
const char *spool_dir(const struct spool *sp);
/* Size at which a log is closed and a new one started (minimum 64 KiB). */
void spool_set_rotate(struct spool *sp, uint64_t bytes);

/* Appends one record durably. Returns 0, or -1 with errno kept (ENOSPC);
 * a failed append leaves nothing behind. name_out: the record's name. */
int spool_append(struct spool *sp, const struct seg_meta *m, const void *payload, size_t len,
                 char *name_out, size_t name_n, struct err *e);

/* The same without the fdatasync; spool_sync(target, NULL = every target)
 * makes all of them durable (and visible to delivery) at once. */
int spool_append_nosync(struct spool *sp, const struct seg_meta *m, const void *payload, size_t len,
                        struct err *e);
int spool_sync(struct spool *sp, const char *target);
/* Closes the target's current log (a new one is started by the next append). */
void spool_rotate(struct spool *sp, const char *target);

/* Picks up logs created or grown by other processes (target NULL: all).
 * 0, or -1 (errno) when the index could not be completed. */
int spool_refresh(struct spool *sp, const char *target);
/* The oldest entry of `target` (NULL: the oldest pending record of every
 * target, damaged entries skipped). 0 found, 1 none, -1 (errno ENOMEM)
 * the index could not be built: "none" is not known. */
int spool_peek(struct spool *sp, const char *target, struct seg_info *out);
/* Every entry of `target` (NULL: every target), FIFO per target, after a
 * refresh. with_meta is kept for callers; the index always has it. -1
 * (errno) when the list would be incomplete. */
int spool_list(struct spool *sp, const char *target, bool with_meta, struct seg_info **out,
               size_t *n);
/* Target names that have a directory. */
int spool_targets(struct spool *sp, char ***names, size_t *n);

/* Reads and verifies the record of an entry (both CRCs); -1 with e->msg
 * naming the file, offset and defect; 1 if it is gone: its file was
 * removed or it was marked done by another process (spool_remove it). */
int spool_read_rec(const struct seg_info *si, struct seg_meta *m, struct buf *payload,
                   struct err *e);
/* Reads and verifies a whole segment file (a .seg file or a quarantined
 * record); -1 with e->msg naming the file and the defect. */
int spool_read(const char *path, struct seg_meta *m, struct buf *payload, struct err *e);

/* Serialises a segment (header + payload, state pending) into out. */
int spool_encode(const struct seg_meta *m, const void *payload, size_t len, struct buf *out);
/* Parses one segment from memory (exactly len bytes; state ignored). */
int spool_decode(const void *data, size_t len, struct seg_meta *m, const void **payload,
                 size_t *plen, struct err *e);

/* Scans a log held in memory as spool_open's scanner does, calling cb for
 * each region: kind 0 pending record, 1 done record, 2 damaged region, 3
 * incomplete tail, 4 region marked dead. Returns where an incomplete
 * tail starts, or len (for the fuzzer and tests). */
typedef void (*spool_scan_cb)(void *arg, int kind, uint64_t off, uint64_t len,
                              const struct seg_meta *m, const char *problem);
uint64_t spool_scan_mem(const void *data, size_t len, spool_scan_cb cb, void *arg);

/* The kind of record a target directory holds: "pushgateway" holds
 * Pushgateway pushes, "rw-<name>" remote-write batches (<name>: letters,
 * digits, '_', '-', '.'); 0 for any other name. */
enum seg_kind spool_target_kind(const char *target);
/* Checks a record before it is imported or sent (archives and spool files
 * are untrusted): its target is `dir` (NULL: any known target name), its
 * kind is the target's kind, and a Pushgateway push's extra is "PUT
 * <group path>" (or POST) in the Pushgateway grouping grammar
 * (pgw_extra_check). 0, or -1 with e->msg saying what is wrong. */
int spool_record_check(const struct seg_meta *m, const char *dir, struct err *e);

/* Marks an entry done (removes it from the index; unlinks a file with
 * nothing pending left). 0 also when it was already gone. */
int spool_remove(struct spool *sp, const struct seg_info *si);
/* Copies the entry to quarantine/ with a .reason file (file, offset,
 * reason, answer) and marks it done. -1 with errno ENOMEM: nothing done,
 * the caller keeps the entry for later (do not spool_remove it). */
int spool_quarantine(struct spool *sp, const struct seg_info *si, const char *reason,
                     const char *answer);

/* Takes the delivery lock (non-blocking). 0 = held, 1 = another process
 * holds it, -1 error. Acquiring it rebuilds the index. */
int spool_lock(struct spool *sp);
void spool_unlock(struct spool *sp);
/* Writes `note` (who holds it: "daemon PID" or "cli PID") into the lock
 * file; only while this process holds the lock. 0 or -1 (errno). */
int spool_lock_note(struct spool *sp, const char *note);
/* Is the lock held by another process? 1 = held (note = what the holder
 * wrote, "" if nothing), 0 = free or held by this process, -1 = error. */
int spool_lock_holder(const struct spool *sp, char *note, size_t cap);

struct spool_usage {
    uint64_t bytes;    /* bytes of pending records */
    uint64_t segments; /* pending records (batches) */
    int64_t oldest_ms; /* creation time of the oldest, 0 if empty */
};
/* From the index: O(targets). -1 (errno) when it could not be built. */
int spool_usage(struct spool *sp, const char *target, struct spool_usage *u);

/* Durable write helper: temp file + fsync + rename + directory fsync. */
int write_file_durable(const char *dir, const char *name, const void *a, size_t alen, const void *b,
                       size_t blen, struct err *e);

#endif
