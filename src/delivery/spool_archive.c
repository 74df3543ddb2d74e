/* The `spool export` archive format: reading, verifying, signing and
 * writing archives, and the import ledger. Contract: spool_archive.h. */
#include "spool_archive.h"

#include "json_bound.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#define EXPORT_MAGIC "NXSHEXP1\n"
#define SIG_PREFIX   "HMAC-SHA256 "
#define SIG_LINE_LEN (sizeof SIG_PREFIX - 1 + 64 + 1)

/* HMAC-SHA256 (RFC 2104) over EVP digests: incremental, and the same
 * code on OpenSSL 1.1 and 3 (no deprecated HMAC_CTX). */

static void hmac_free(struct spool_hmac *h)
{
    EVP_MD_CTX_free(h->in);
    EVP_MD_CTX_free(h->out);
    h->in = h->out = NULL;
}

static int hmac_init(struct spool_hmac *h, const void *key, size_t keylen)
{
    unsigned char k[64] = {0}, pad[64];
    unsigned int kl = 0;
    h->in = EVP_MD_CTX_new();
    h->out = EVP_MD_CTX_new();
    if (!h->in || !h->out)
        goto fail;
    if (keylen > sizeof k) {
        if (EVP_Digest(key, keylen, k, &kl, EVP_sha256(), NULL) != 1)
            goto fail;
    } else {
        memcpy(k, key, keylen);
    }
    for (size_t i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    if (EVP_DigestInit_ex(h->in, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(h->in, pad, sizeof pad) != 1)
        goto fail;
    for (size_t i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    if (EVP_DigestInit_ex(h->out, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(h->out, pad, sizeof pad) != 1)
        goto fail;
    return 0;
fail:
    hmac_free(h);
    return -1;
}

static int hmac_update(struct spool_hmac *h, const void *p, size_t n)
{
    return h->in && EVP_DigestUpdate(h->in, p, n) == 1 ? 0 : -1;
}

/* hex: 64 lowercase hex digits + NUL; frees the contexts */
static int hmac_final(struct spool_hmac *h, char hex[65])
{
    unsigned char inner[32], mac[32];
    unsigned int n = 0;
    int rc = -1;
    if (h->in && EVP_DigestFinal_ex(h->in, inner, &n) == 1 && n == 32 &&
        EVP_DigestUpdate(h->out, inner, 32) == 1 && EVP_DigestFinal_ex(h->out, mac, &n) == 1 &&
        n == 32) {
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", mac[i]);
        rc = 0;
    }
    hmac_free(h);
    return rc;
}

int spool_archive_sign(const char *key, const void *data, size_t len, char hex[65])
{
    struct spool_hmac h;
    if (hmac_init(&h, key, strlen(key)) < 0)
        return -1;
    if (hmac_update(&h, data, len) < 0) {
        hmac_free(&h);
        return -1;
    }
    return hmac_final(&h, hex);
}

int spool_archive_check_sig(const char *data, size_t len, const char *key, size_t *inner,
                            struct err *e)
{
    *inner = len;
    size_t sl = SIG_LINE_LEN, pl = strlen(SIG_PREFIX);
    const char *line = len >= sl ? data + len - sl : NULL;
    bool signed_ = line && memcmp(line, SIG_PREFIX, pl) == 0 && line[sl - 1] == '\n' &&
                   (line == data || line[-1] == '\n');
    for (size_t i = pl; signed_ && i < sl - 1; i++)
        signed_ = (line[i] >= '0' && line[i] <= '9') || (line[i] >= 'a' && line[i] <= 'f');
    if (!signed_) {
        if (key && *key) {
            err_set(e, "not signed, and archive_key_file is set: refusing it (export it with the "
                       "same archive_key_file)");
            return -1;
        }
        return 0;
    }
    *inner = len - sl;
    if (!key || !*key)
        return 2;
    char want[65];
    if (spool_archive_sign(key, data, len - sl, want) < 0) {
        err_set(e, "cannot compute its HMAC-SHA256 (OpenSSL failed)");
        return -1;
    }
    /* constant time: the comparison does not tell how much matched */
    unsigned char diff = 0;
    for (size_t i = 0; i < 64; i++)
        diff |= (unsigned char)(want[i] ^ line[pl + i]);
    if (diff) {
        err_set(e, "signature does not match archive_key_file (a different key, or the archive "
                   "was modified): refusing it");
        return -1;
    }
    return 1;
}

int spool_archive_out_write(struct spool_archive_out *a, const void *p, size_t n)
{
    a->crc = crc32c(a->crc, p, n);
    if (a->sign && hmac_update(&a->h, p, n) < 0) {
        err_set(&a->e, "HMAC-SHA256 failed (OpenSSL)");
        return -1;
    }
    return durable_write(a->f, p, n, &a->e);
}

int spool_archive_out_hmac_init(struct spool_archive_out *a, const char *key)
{
    return hmac_init(&a->h, key, strlen(key));
}

int spool_archive_out_head(struct spool_archive_out *a, const char *manifest)
{
    if (spool_archive_out_write(a, EXPORT_MAGIC, strlen(EXPORT_MAGIC)) < 0 ||
        spool_archive_out_write(a, manifest, strlen(manifest)) < 0 ||
        spool_archive_out_write(a, "\n", 1) < 0)
        return -1;
    return 0;
}

int spool_archive_out_tail(struct spool_archive_out *a)
{
    char trailer[32];
    snprintf(trailer, sizeof trailer, "END %08x\n", a->crc);
    if (spool_archive_out_write(a, trailer, strlen(trailer)) < 0)
        return -1;
    if (a->sign) {
        char hex[65], line[SIG_LINE_LEN + 1];
        if (hmac_final(&a->h, hex) < 0) {
            err_set(&a->e, "HMAC-SHA256 failed (OpenSSL)");
            return -1;
        }
        snprintf(line, sizeof line, "%s%s\n", SIG_PREFIX, hex);
        if (durable_write(a->f, line, strlen(line), &a->e) < 0)
            return -1;
    }
    return 0;
}

void spool_archive_out_free(struct spool_archive_out *a)
{
    durable_abort(a->f);
    a->f = NULL;
    hmac_free(&a->h);
}

int spool_archive_parse(const char *data, size_t len, spool_archive_cb cb, void *arg, struct err *e)
{
    json_object *man = NULL;
    int rc = -1;
    size_t ml = strlen(EXPORT_MAGIC);
    if (len < ml + 14 || memcmp(data, EXPORT_MAGIC, ml) != 0) {
        err_set(e, "not a nexus-shipper spool export (bad magic)");
        return -1;
    }
    /* trailer: "END xxxxxxxx\n" */
    const char *tr = data + len - 13;
    unsigned int want;
    char hex[9];
    memcpy(hex, tr + 4, 8);
    hex[8] = '\0';
    if (strncmp(tr, "END ", 4) != 0 || tr[12] != '\n' || strspn(hex, "0123456789abcdef") != 8 ||
        sscanf(hex, "%8x", &want) != 1) {
        err_set(e, "truncated (no END trailer); refusing it");
        return -1;
    }
    if (crc32c(0, data, len - 13) != want) {
        err_set(e, "damaged (checksum mismatch); refusing it");
        return -1;
    }
    const char *nl = memchr(data + ml, '\n', len - 13 - ml);
    if (!nl) {
        err_set(e, "no manifest line");
        return -1;
    }
    /* a hand-carried file: its manifest may cost a small multiple of its
     * size to parse, never a JSON bomb's hundreds */
    size_t mlen = (size_t)(nl - data - (long)ml);
    char why[200];
    man = json_parse_bounded(data + ml, mlen, 16 * mlen + (64u << 20), why, sizeof why);
    if (!man) {
        err_set(e, "manifest refused: %s", why);
        goto out;
    }
    json_object *segs;
    if (!json_object_object_get_ex(man, "segments", &segs) ||
        !json_object_is_type(segs, json_type_array)) {
        err_set(e, "manifest is not valid JSON with a segments array");
        goto out;
    }
    /* pass 1 verifies every segment, pass 2 hands them out */
    size_t ns = json_object_array_length(segs);
    for (int pass = 1; pass <= 2; pass++) {
        const char *p = nl + 1, *end = data + len - 13;
        for (size_t i = 0; i < ns; i++) {
            json_object *s = json_object_array_get_idx(segs, i), *jsize, *jcrc, *jname;
            if (!json_object_object_get_ex(s, "size", &jsize) ||
                !json_object_object_get_ex(s, "crc32c", &jcrc) ||
                !json_object_object_get_ex(s, "name", &jname)) {
                err_set(e, "manifest entry %zu lacks size/crc32c/name", i);
                goto out;
            }
            int64_t sz = json_object_get_int64(jsize);
            if (sz <= 0 || sz > end - p) {
                err_set(e, "segment %zu claims %lld bytes, archive has %lld left", i, (long long)sz,
                        (long long)(end - p));
                goto out;
            }
            const char *nm = json_object_get_string(jname), *jc = json_object_get_string(jcrc);
            char crc[16];
            snprintf(crc, sizeof crc, "%08x", crc32c(0, p, (size_t)sz));
            struct seg_meta m;
            const void *pl;
            size_t pll;
            struct err e2;
            if (!jc || strcmp(crc, jc) != 0 ||
                spool_decode(p, (size_t)sz, &m, &pl, &pll, &e2) < 0) {
                err_set(e, "segment %s is damaged; refusing the archive", nm ? nm : "?");
                goto out;
            }
            if (!nm || !str_has_suffix(nm, ".seg") || strchr(nm, '/') || nm[0] == '.' ||
                strlen(nm) > 128 || strchr(m.target, '/') || m.target[0] == '.' || !m.target[0] ||
                strcmp(m.target, "quarantine") == 0) {
                err_set(e, "bad segment name or target in the manifest (entry %zu)", i);
                goto out;
            }
            if (spool_record_check(&m, NULL, &e2) < 0) {
                err_set(e, "segment %.128s refused: %s; refusing the archive", nm, e2.msg);
                goto out;
            }
            if (pass == 2 && cb && cb(arg, nm, &m, pl, pll) < 0) {
                err_set(e, "stopped at segment %s", nm);
                goto out;
            }
            p += sz;
        }
        if (p != end) {
            err_set(e, "%lld unexpected bytes after the last segment", (long long)(end - p));
            goto out;
        }
    }
    rc = (int)ns;
out:
    json_object_put(man);
    return rc;
}

/* 128-bit digests of the ledger's lines (FNV-1a and a multiply-xorshift,
 * finished with murmur3's fmix64). */
struct spool_digest {
    uint64_t a, b;
};

struct digest_state {
    uint64_t a, b;
};

static void digest_start(struct digest_state *s)
{
    s->a = 0xcbf29ce484222325u; /* FNV-1a */
    s->b = 0x9e3779b97f4a7c15u;
}

static void digest_add(struct digest_state *s, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        s->a = (s->a ^ c[i]) * 0x100000001b3u;
        s->b = (s->b + c[i] + 1) * 0xff51afd7ed558ccdu;
        s->b ^= s->b >> 29;
    }
}

static struct spool_digest digest_end(const struct digest_state *s)
{
    uint64_t b = s->b; /* murmur3 fmix64 */
    b ^= b >> 33;
    b *= 0xc4ceb9fe1a85ec53u;
    b ^= b >> 33;
    return (struct spool_digest){s->a, b};
}

static struct spool_digest digest_of(const char *key)
{
    struct digest_state s;
    digest_start(&s);
    digest_add(&s, key, strlen(key));
    return digest_end(&s);
}

static int digest_cmp(const void *x, const void *y)
{
    const struct spool_digest *p = x, *q = y;
    return p->a != q->a ? (p->a < q->a ? -1 : 1) : p->b != q->b ? (p->b < q->b ? -1 : 1) : 0;
}

static int ledger_push(struct spool_ledger *l, struct spool_digest d)
{
    struct spool_digest *nd = array_grow(l->d, &l->cap, l->n, sizeof *nd, 4096);
    if (!nd)
        return -1;
    l->d = nd;
    l->d[l->n++] = d;
    return 0;
}

void spool_ledger_close(struct spool_ledger *l)
{
    if (l->fd >= 0)
        close(l->fd); /* releases the flock */
    l->fd = -1;
    free(l->d);
    l->d = NULL;
}

/* Opens, locks (waiting for another import) and loads the ledger. */
int spool_ledger_open(struct spool_ledger *l, const char *spool, struct err *e)
{
    memset(l, 0, sizeof *l);
    l->fd = -1;
    snprintf(l->path, sizeof l->path, "%s/.imported", spool);
    l->fd = open(l->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (l->fd < 0) {
        err_set(e, "cannot open the import ledger %s: %s", l->path, strerror(errno));
        return -1;
    }
    if (flock(l->fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) {
            err_set(e, "cannot lock the import ledger %s: %s", l->path, strerror(errno));
            goto fail;
        }
        fprintf(stderr, "spool import: waiting for another import into this spool (lock on %s)\n",
                l->path);
        while (flock(l->fd, LOCK_EX) < 0) {
            if (errno != EINTR) {
                err_set(e, "cannot lock the import ledger %s: %s", l->path, strerror(errno));
                goto fail;
            }
        }
    }
    enum { CHUNK = 1 << 16 };
    char *chunk = malloc(CHUNK);
    if (!chunk)
        goto oom;
    struct digest_state st;
    digest_start(&st);
    bool in_line = false;
    for (off_t off = 0;;) {
        ssize_t r = pread(l->fd, chunk, CHUNK, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err_set(e, "cannot read the import ledger %s: %s", l->path, strerror(errno));
            free(chunk);
            goto fail;
        }
        if (r == 0)
            break;
        off += r;
        for (const char *p = chunk, *end = chunk + r; p < end;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *stop = nl ? nl : end;
            digest_add(&st, p, (size_t)(stop - p));
            in_line = in_line || stop > p;
            if (nl) {
                if (in_line && ledger_push(l, digest_end(&st)) < 0) { /* empty lines: none */
                    free(chunk);
                    goto oom;
                }
                digest_start(&st);
                in_line = false;
            }
            p = stop + (nl ? 1 : 0);
        }
    }
    free(chunk);
    if (in_line && ledger_push(l, digest_end(&st)) < 0) /* a last line without '\n' */
        goto oom;
    if (l->n) /* an empty ledger has no array: qsort(NULL) is undefined */
        qsort(l->d, l->n, sizeof *l->d, digest_cmp);
    return 0;
oom:
    err_set(e, "out of memory loading the import ledger %s (%zu entries)", l->path, l->n);
fail:
    spool_ledger_close(l);
    return -1;
}

bool spool_ledger_has(const struct spool_ledger *l, const char *key)
{
    struct spool_digest d = digest_of(key);
    return l->n && bsearch(&d, l->d, l->n, sizeof *l->d, digest_cmp) != NULL;
}

int spool_archive_read(const char *file, struct buf *out, struct err *e)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(e, "cannot open %s: %s", file, strerror(errno));
        return -1;
    }
    int rc = -1;
    for (;;) {
        if (buf_reserve(out, 1 << 20) < 0) {
            err_set(e, "%s: larger than %zu bytes or out of memory", file, out->max);
            goto done;
        }
        ssize_t r = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err_set(e, "cannot read %s: %s", file, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        out->len += (size_t)r;
    }
    buf_cstr(out);
    rc = 0;
done:
    close(fd);
    return rc;
}

int spool_ledger_append(struct spool_ledger *l, const char *kp, size_t kl)
{
    while (kl) {
        ssize_t w = write(l->fd, kp, kl);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            break;
        kp += w;
        kl -= (size_t)w;
    }
    return kl || fsync(l->fd) < 0 ? -1 : 0;
}
