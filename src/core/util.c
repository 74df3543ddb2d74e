#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>

void buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max ? max : SIZE_MAX;
}

void buf_free(struct buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int buf_reserve(struct buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return -1;
    size_t need = b->len + extra + 1; /* room for the terminating NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *d = realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

void *array_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return v;
    size_t nc = *cap ? *cap * 2 : first;
    if (nc < *cap || nc > SIZE_MAX / elem)
        return NULL;
    void *nv = realloc(v, nc * elem);
    if (nv)
        *cap = nc;
    return nv;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    if (buf_reserve(b, (size_t)n) < 0)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

const char *buf_cstr(struct buf *b)
{
    if (!b->data && buf_reserve(b, 0) < 0)
        return NULL;
    b->data[b->len] = '\0';
    return b->data;
}

void err_set(struct err *e, const char *fmt, ...)
{
    if (!e)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

static int parse_number_unit(const char *s, double *num, const char **unit)
{
    if (!s)
        return -1;
    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s) && *s != '.')
        return -1;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        return -1; /* strtod would read hex: "0x10" is not 16 seconds */
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    *num = v;
    *unit = end;
    return 0;
}

static bool unit_is(const char *u, const char *name)
{
    size_t n = strlen(name);
    if (strncasecmp(u, name, n) != 0)
        return false;
    for (u += n; *u; u++)
        if (!isspace((unsigned char)*u))
            return false;
    return true;
}

int parse_duration_ms(const char *s, int64_t *out)
{
    double v;
    const char *u;
    if (parse_number_unit(s, &v, &u) < 0)
        return -1;
    double mult;
    if (*u == '\0' || unit_is(u, "s"))
        mult = 1000;
    else if (unit_is(u, "ms"))
        mult = 1;
    else if (unit_is(u, "m"))
        mult = 60e3;
    else if (unit_is(u, "h"))
        mult = 3600e3;
    else if (unit_is(u, "d"))
        mult = 86400e3;
    else
        return -1;
    double r = v * mult;
    if (r > 1e15)
        return -1;
    *out = (int64_t)(r + 0.5);
    return 0;
}

int parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *name;
        double mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"kib", 1024.0},
        {"mib", 1048576.0},
        {"gib", 1073741824.0},
        {"tib", 1099511627776.0},
        {"kb", 1e3},
        {"mb", 1e6},
        {"gb", 1e9},
        {"tb", 1e12},
        {"k", 1024.0},
        {"m", 1048576.0},
        {"g", 1073741824.0},
    };
    double v;
    const char *u;
    if (parse_number_unit(s, &v, &u) < 0)
        return -1;
    for (size_t i = 0; i < NS_ARRAY_LEN(units); i++) {
        if ((*u == '\0' && units[i].name[0] == '\0') ||
            (units[i].name[0] && unit_is(u, units[i].name))) {
            double r = v * units[i].mult;
            if (r > 9e18)
                return -1;
            *out = (uint64_t)(r + 0.5);
            return 0;
        }
    }
    return -1;
}

int parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"true", "yes", "on", "1"};
    static const char *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < NS_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int parse_int64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

void format_double(double v, char *out, size_t n)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v) {
            /* %g turns to an exponent once it reaches the precision: write
             * 10 and 2500000 in full, not 1e+01 and 2.5e+06 */
            const char *x = strchr(out, 'e');
            int exp = x ? atoi(x + 1) : -1;
            if (exp >= prec && exp < 17)
                snprintf(out, n, "%.*g", exp + 1, v);
            return;
        }
    }
}

void format_duration(int64_t ms, char *out, size_t n)
{
    if (ms % 86400000 == 0 && ms)
        snprintf(out, n, "%lldd", (long long)(ms / 86400000));
    else if (ms % 3600000 == 0 && ms)
        snprintf(out, n, "%lldh", (long long)(ms / 3600000));
    else if (ms % 60000 == 0 && ms)
        snprintf(out, n, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(out, n, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, n, "%lldms", (long long)ms);
}

int read_file(const char *path, size_t max, bool trim, char **out, struct err *e)
{
    size_t len;
    return read_file_n(path, max, trim, out, &len, e);
}

int read_file_n(const char *path, size_t max, bool trim, char **out, size_t *len, struct err *e)
{
    int rc = -1;
    struct buf b;
    buf_init(&b, max);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(e, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        /* read at most up to `max`; one byte past it means "too large" */
        size_t room = b.max - b.len, chunk = room < 4096 ? room : 4096;
        char probe;
        if (chunk && buf_reserve(&b, chunk) < 0) {
            err_set(e, "out of memory reading %s", path);
            goto out;
        }
        ssize_t n = chunk ? read(fd, b.data + b.len, chunk) : read(fd, &probe, 1);
        if (n > 0 && !chunk) {
            err_set(e, "%s is larger than %zu bytes", path, max);
            goto out;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err_set(e, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
    }
    if (!buf_cstr(&b)) {
        err_set(e, "out of memory reading %s", path);
        goto out;
    }
    if (trim)
        while (b.len && isspace((unsigned char)b.data[b.len - 1]))
            b.data[--b.len] = '\0';
    *out = b.data;
    *len = b.len;
    b.data = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    buf_free(&b);
    return rc;
}

struct durable_file {
    int fd;
    char path[PATH_MAX];
    char tmp[PATH_MAX];
    char dir[PATH_MAX];
};

void durable_abort(struct durable_file *f)
{
    if (!f)
        return;
    if (f->fd >= 0) {
        close(f->fd);
        unlink(f->tmp);
    }
    free(f);
}

const char *durable_tmp_path(const struct durable_file *f)
{
    return f->tmp;
}

struct durable_file *durable_open(const char *path, mode_t mode, struct err *e)
{
    struct durable_file *f = calloc(1, sizeof *f);
    if (!f) {
        err_set(e, "out of memory writing %s", path);
        errno = ENOMEM;
        return NULL;
    }
    f->fd = -1;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!slash)
        snprintf(f->dir, sizeof f->dir, ".");
    else if (slash == path)
        snprintf(f->dir, sizeof f->dir, "/");
    else
        snprintf(f->dir, sizeof f->dir, "%.*s", (int)(slash - path), path);
    if (!*base || strlen(path) >= sizeof f->path - 40) {
        err_set(e, "cannot write %s: not a file name", path);
        errno = EINVAL;
        free(f);
        return NULL;
    }
    snprintf(f->path, sizeof f->path, "%s", path);
    for (int attempt = 0; attempt < 16; attempt++) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = (uint64_t)mono_ms() * 6364136223846793005u ^ (uint64_t)getpid() << 32 ^
                (uint64_t)attempt; /* no entropy: O_EXCL still refuses planted names */
        snprintf(f->tmp, sizeof f->tmp, "%s/.%.*s.%016llx.tmp", f->dir, 64, base,
                 (unsigned long long)r);
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (f->fd >= 0 || errno != EEXIST)
            break;
    }
    if (f->fd < 0) {
        int saved = errno;
        err_set(e, "cannot create a temporary file for %s in %s: %s", path, f->dir,
                strerror(saved));
        free(f);
        errno = saved;
        return NULL;
    }
    if (fchmod(f->fd, mode ? mode : 0600) < 0) {
        int saved = errno;
        err_set(e, "cannot set the mode of %s: %s", f->tmp, strerror(saved));
        durable_abort(f);
        errno = saved;
        return NULL;
    }
    return f;
}

int durable_write(struct durable_file *f, const void *data, size_t len, struct err *e)
{
    const char *p = data;
    while (len) {
        ssize_t w = write(f->fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            err_set(e, "cannot write %s (writing %s): %s", f->path, f->tmp, strerror(saved));
            errno = saved;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int durable_commit(struct durable_file *f, struct err *e)
{
    const char *step = "fsync";
    bool tmp_left = true;
    int fd = f->fd, dfd = -1;
    if (fsync(fd) < 0)
        goto fail;
    step = "close";
    f->fd = -1;
    if (close(fd) < 0)
        goto fail;
    step = "rename the temporary file onto";
    if (rename(f->tmp, f->path) < 0)
        goto fail;
    tmp_left = false; /* from here on the new file is in place, only not known durable */
    step = "fsync the directory of";
    dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0)
        goto fail;
    close(dfd);
    free(f);
    return 0;
fail:;
    int saved = errno;
    err_set(e, "cannot %s %s: %s", step, f->path, strerror(saved));
    if (dfd >= 0)
        close(dfd);
    if (f->fd >= 0)
        close(f->fd);
    if (tmp_left)
        unlink(f->tmp);
    free(f);
    errno = saved;
    return -1;
}

int durable_write_file(const char *path, const void *data, size_t len, mode_t mode, struct err *e)
{
    struct durable_file *f = durable_open(path, mode, e);
    if (!f)
        return -1;
    if (durable_write(f, data, len, e) < 0) {
        int saved = errno;
        durable_abort(f);
        errno = saved;
        return -1;
    }
    return durable_commit(f, e);
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    /* Test hook: shift the clock (outages longer than a receiver's window). */
    const char *off = getenv("NS_TEST_CLOCK_OFFSET_MS");
    int64_t o;
    if (off && parse_int64(off, &o) == 0)
        ms += o;
    return ms;
}

int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_until_mono(int64_t deadline_ms)
{
    int64_t left = deadline_ms - mono_ms();
    if (left <= 0)
        return;
    struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
    nanosleep(&ts, NULL); /* EINTR: return early so the caller sees the signal */
}

static uint32_t crc32c_table[8][256];
static int crc32c_ready;

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc32c_table[t][i] =
                (crc32c_table[t - 1][i] >> 8) ^ crc32c_table[0][crc32c_table[t - 1][i] & 0xff];
    crc32c_ready = 1;
}

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    if (!crc32c_ready)
        crc32c_init(); /* idempotent: racing initialisers write identical tables */
    const unsigned char *p = data;
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = crc32c_table[7][lo & 0xff] ^ crc32c_table[6][(lo >> 8) & 0xff] ^
              crc32c_table[5][(lo >> 16) & 0xff] ^ crc32c_table[4][lo >> 24] ^
              crc32c_table[3][p[4]] ^ crc32c_table[2][p[5]] ^ crc32c_table[1][p[6]] ^
              crc32c_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* SSE4.2 has a CRC32C instruction: 8 bytes per step. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *data,
                                                            size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_hw(crc, data, len);
    return crc32c_sw(crc, data, len);
}
#else
uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    return crc32c_sw(crc, data, len);
}
#endif

char *str_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

void strv_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int split_list(const char *s, char ***items, size_t *n)
{
    char **v = NULL;
    size_t cnt = 0;
    char *copy = strdup(s ? s : "");
    if (!copy)
        return -1;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = str_trim(tok);
        if (!*tok)
            continue;
        char **nv = realloc(v, (cnt + 1) * sizeof *v);
        if (!nv)
            goto fail;
        v = nv;
        if (!(v[cnt] = strdup(tok)))
            goto fail;
        cnt++;
    }
    free(copy);
    *items = v;
    *n = cnt;
    return 0;
fail:
    free(copy);
    strv_free(v, cnt);
    return -1;
}

bool str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* ---- url_redact ------------------------------------------------------- */

#include <curl/curl.h>

/* Query parameter names whose values are credentials: exact names, and
 * words that make any name containing them one ("x-amz-signature",
 * "client_secret", "refresh_token", "db_password"). */
static bool secret_param(const char *name, size_t n)
{
    static const char *const exact[] = {"key",     "sig",       "auth", "pass", "pwd",
                                        "session", "sessionid", "code", "jwt",  "creds"};
    static const char *const word[] = {"token",     "secret",     "passw",
                                       "apikey",    "api_key",    "api-key",
                                       "signature", "credential", "authorization"};
    char low[64];
    if (n >= sizeof low)
        n = sizeof low - 1; /* a longer name: its start decides */
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    low[n] = '\0';
    for (size_t i = 0; i < NS_ARRAY_LEN(exact); i++)
        if (strcmp(low, exact[i]) == 0)
            return true;
    for (size_t i = 0; i < NS_ARRAY_LEN(word); i++)
        if (strstr(low, word[i]))
            return true;
    return false;
}

/* The query with the secret values replaced; NULL when nothing changed
 * (*oom set when out of memory). Caller frees. */
static char *redact_query(const char *q, bool *oom)
{
    struct buf b;
    buf_init(&b, 0);
    bool changed = false;
    const char *p = q;
    for (;;) {
        size_t l = strcspn(p, "&;");
        const char *eq = memchr(p, '=', l);
        size_t nl = eq ? (size_t)(eq - p) : l;
        char name[64];
        size_t dn = 0;
        /* decode the name (%XX) for the comparison */
        for (size_t i = 0; i < nl && dn < sizeof name - 1; i++) {
            if (p[i] == '%' && i + 2 < nl && isxdigit((unsigned char)p[i + 1]) &&
                isxdigit((unsigned char)p[i + 2])) {
                char hx[3] = {p[i + 1], p[i + 2], 0};
                name[dn++] = (char)strtol(hx, NULL, 16);
                i += 2;
            } else
                name[dn++] = p[i] == '+' ? ' ' : p[i];
        }
        if (eq && secret_param(name, dn) && l > nl + 1) {
            buf_append(&b, p, nl + 1);
            buf_puts(&b, "REDACTED");
            changed = true;
        } else
            buf_append(&b, p, l);
        if (!p[l])
            break;
        buf_append(&b, p + l, 1);
        p += l + 1;
    }
    if (!changed || !buf_cstr(&b)) {
        *oom = changed;
        buf_free(&b);
        return NULL;
    }
    return b.data;
}

const char *url_redact(const char *url, char *out, size_t outlen)
{
    if (!out || !outlen)
        return "";
    out[0] = '\0';
    if (!url)
        return out;
    const char *fail = "<unparseable url>";
    CURLU *h = curl_url();
    char *user = NULL, *pw = NULL, *opts = NULL, *query = NULL, *nq = NULL, *full = NULL;
    bool oom = false;
    if (!h)
        goto bad;
    if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
        goto bad;
    curl_url_get(h, CURLUPART_USER, &user, 0);
    curl_url_get(h, CURLUPART_PASSWORD, &pw, 0);
    curl_url_get(h, CURLUPART_OPTIONS, &opts, 0);
    curl_url_get(h, CURLUPART_QUERY, &query, 0);
    if (query && !(nq = redact_query(query, &oom)) && oom)
        goto bad;
    if (!user && !pw && !opts && !nq) { /* nothing secret: as written */
        snprintf(out, outlen, "%s", url);
        goto out;
    }
    if (user || pw || opts) {
        if (curl_url_set(h, CURLUPART_USER, "REDACTED", 0) != CURLUE_OK ||
            curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
            curl_url_set(h, CURLUPART_OPTIONS, NULL, 0) != CURLUE_OK)
            goto bad;
    }
    if (nq && curl_url_set(h, CURLUPART_QUERY, nq, 0) != CURLUE_OK)
        goto bad;
    if (curl_url_get(h, CURLUPART_URL, &full, 0) != CURLUE_OK || !full)
        goto bad;
    snprintf(out, outlen, "%s", full);
    goto out;
bad: /* nothing to redact without userinfo or query: shown as written */
    snprintf(out, outlen, "%s", oom || strpbrk(url, "@?") ? fail : url);
out:
    curl_free(user);
    curl_free(pw);
    curl_free(opts);
    curl_free(query);
    curl_free(full);
    free(nq);
    curl_url_cleanup(h);
    return out;
}
/* ---- end url_redact ---- */
