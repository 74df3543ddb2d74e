/* series_int: the series buffer's insides, shared by series.c (storing,
 * transactions, compaction) and series_read.c (snapshots and the read
 * accessors the encoders use). Internal to src/pipeline/: everything else
 * goes through series.h. The buffer owns every array here (freed by
 * sb_free); strings are ids into `pool` (strpool.h). */
#ifndef NS_SERIES_INT_H
#define NS_SERIES_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "series.h"
#include "strpool.h"

struct series {
    uint32_t lab; /* offset of the first (name id, value id) pair in sb->lab */
    uint32_t hash;
    uint32_t gen; /* cycle in which it was last set */
    uint16_t family;
    uint8_t nlab;  /* at most MAX_LABELS */
    uint8_t owner; /* the producer that last set it (sb_txn_begin_owner), 0 = none */
    double value;
};

struct family {
    struct metric_desc d; /* strings point into the pool */
    uint32_t name_id;
    bool dropped;
};

struct pending {
    uint32_t series;
    uint32_t prev_gen;
    double value;
};

struct series_buf {
    struct sb_opts o;
    uint32_t *ext; /* external label pairs, sorted by name, as pool ids */
    size_t n_ext;
    struct strpool pool;
    struct series *s;
    size_t n, cap;
    uint32_t *lab;
    size_t nlab, labcap;
    uint32_t *table;
    size_t tcap;
    struct family *fam;
    size_t nfam, famcap;
    uint32_t *famtab; /* family index + 1 by name hash */
    size_t famtcap;
    struct pending *pend;
    size_t npend, pendcap;
    uint32_t gen;
    uint32_t snap_gen; /* gen of the last snapshot */
    int64_t ts;
    uint64_t refused, rejected;
    uint32_t layout; /* changes when sb_compact renumbers the series */
    const char *owner;
    uint8_t owner_id;
};

#endif
