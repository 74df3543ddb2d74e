/* config_table: the one table of sections and keys behind the configuration
 * (internal to src/core/: config.c parses and validates with it,
 * config_doc.c writes the template and the man page from it).
 *
 * cfg_sections[] and cfg_keys[] are constant, defined in config_table.c,
 * cfg_n_sections and cfg_n_keys rows long; each key row names its section
 * by name and its field by offset in that section's struct (config.h).
 * Adding a key: one row in cfg_keys[] (and the field in config.h); the
 * template, the man page and the environment override follow. Nothing to
 * free; no errors. */
#ifndef NS_CONFIG_TABLE_H
#define NS_CONFIG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

enum cfg_type {
    T_STRING,
    T_URL,  /* http:// or https:// */
    T_FILE, /* a path whose content (a secret) is loaded into aux_offset */
    T_INT,  /* non-negative integer */
    T_BOOL,
    T_DURATION,   /* 30s, 5m, 1h */
    T_SIZE,       /* 512MiB */
    T_LIST,       /* comma-separated */
    T_LABELS,     /* k=v,k=v with valid label names */
    T_REGEX,      /* POSIX extended regular expression */
    T_LEVEL,      /* debug|info|warning|error */
    T_CHOICE,     /* one of the words in `choices` */
    T_PATH,       /* a file that must exist and be readable (CA bundle, client cert) */
    T_SELECTOR,   /* PromQL series selectors (relabel.h) */
    T_LABELNAMES, /* comma-separated label names */
    T_HEADER,     /* one `Name: value` header, appended; commas allowed */
};

#define REQUIRED 1u
#define REPEAT   2u /* may appear several times in a section; each one appends */

enum section_kind { SEC_ALWAYS, SEC_OPTIONAL, SEC_NAMED };

struct section_desc {
    const char *name;
    enum section_kind kind;
    size_t size; /* size of the section struct */
    size_t
        cfg_off; /* offset in struct config: struct (ALWAYS), pointer (OPTIONAL), array (NAMED) */
    size_t count_off; /* NAMED: offset of the size_t count */
    ssize_t line_off; /* offset of `int line` in the section struct, -1 if none */
    const char *help;
};

struct key_desc {
    const char *section;
    const char *key;
    enum cfg_type type;
    const char *def; /* default value as text, NULL = none */
    size_t off;      /* offset in the section struct */
    size_t aux_off;  /* T_FILE: offset of the loaded content */
    unsigned flags;
    const char *example; /* shown in the template when there is no default */
    const char *choices; /* T_CHOICE: "a|b|c" */
    const char *help;
};

#define CFG_MIN_SIZE 1024u /* T_SIZE: a spool or buffer smaller than this holds no batch */

/* upper bound on cfg_n_keys (config.c keeps per-key arrays of this size;
 * config_table.c checks it at compile time) */
#define CFG_KEYS_MAX 256

extern const struct section_desc cfg_sections[];
extern const size_t cfg_n_sections;
extern const struct key_desc cfg_keys[];
extern const size_t cfg_n_keys;

/* The field at offset `off` of a section struct. */
static inline void *cfg_field(void *sec, size_t off)
{
    return (char *)sec + off;
}

/* config_value.c: parses `val` into the field of key `k` in section struct
 * `sec` (replacing what was there); 0, or -1 with e->msg (no location). */
int cfg_set_value(const struct key_desc *k, void *sec, const char *val, struct err *e);
/* config_value.c: frees every value of section `sd` held in `sec` (NULL:
 * nothing), leaving the pointers NULL. */
void cfg_free_section_values(const struct section_desc *sd, void *sec);

/* config_suggest.c: Levenshtein distance between two strings. */
size_t cfg_edit_distance(const char *a, const char *b);
/* config_suggest.c: a hint for the unknown `key` of [section] (written to
 * out, "" when none): "; did you mean ...?", the Prometheus equivalent, or
 * the section it belongs to. */
void cfg_suggest(const char *section, const char *key, char *out, size_t n);

/* Problems found while loading, each with where (config_diag.c). */
struct problem {
    int line; /* sort key: file line; environment ones last */
    char *msg;
};

struct diag {
    const char *file;
    struct problem *v;
    size_t n, cap;
    bool oom;
};

/* config_diag.c: line > 0: "FILE:LINE: msg"; line == 0: "FILE: msg"; line < 0:
 * msg as is (environment), reported after the file's problems. Out of
 * memory sets d->oom. */
void cfg_report(struct diag *d, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cfg_diag_free(struct diag *d);
/* config_diag.c: records (or updates) the line key k of section instance
 * sec was set on; -1 when out of memory. cfg_keyline_bad marks its value
 * refused (reported once, no further checks). */
int cfg_keyline_set(struct config *cfg, const void *sec, const struct key_desc *k, int line);
void cfg_keyline_bad(struct config *cfg, const void *sec, const struct key_desc *k);
/* config_diag.c: the line key k of section instance sec was set on (NULL k: the
 * section header), 0 if not from the file; whether its value was refused. */
int cfg_keyline_get(const struct config *cfg, const void *sec, const struct key_desc *k);
bool cfg_key_bad(const struct config *cfg, const void *sec, const struct key_desc *k);
/* config_diag.c: src upper-cased, '-' as '_', into dst (n bytes, always
 * terminated): the environment spelling of a section or key name. */
void cfg_upper_copy(char *dst, size_t n, const char *src);
/* config_validate.c: every check across keys after parsing; problems go to
 * d. 0, or -1 when out of memory. */
int cfg_validate(struct config *cfg, struct diag *d);
/* config_validate.c: where the configuration holds a secret itself rather
 * than through a *_file key (e.g. "the [nexus] url"), or NULL. */
const char *cfg_inline_secret(const struct config *cfg);

#endif
