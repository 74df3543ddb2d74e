/* alloc_torture: allocation-failure injection over the core paths.
 *
 *   alloc_torture SCENARIO CONFIG [URL]
 *
 * Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,
 * --wrap=strndup,--wrap=free, so only the allocations of our own code (the
 * core library) are counted and failed; libcurl, json-c, libpq and
 * protobuf-c allocate normally. For N = 1, 2, ... a forked child prepares
 * the scenario, makes the N-th allocation of the scenario's armed part
 * return NULL (one failure, later ones succeed), runs it, tears down and
 * checks; the iteration stops at the first N that completes without an
 * injected failure. Each run must return an error (or succeed where the
 * failure is tolerated by design), never crash, and leak nothing:
 *  - every allocation our code made while armed is tracked (pointer and
 *    caller) and must be freed once the scenario is torn down;
 *  - under ASan the child's exit runs LeakSanitizer (ASAN_OPTIONS
 *    detect_leaks=1), which also sees what the libraries allocated;
 *  - the sender paths lose no sample: what the armed part delivered, plus
 *    what a fresh sender then delivers from the spool, plus what was
 *    counted as dropped, is every sample (deliver, replay and export also
 *    drop nothing: a good batch is never quarantined for an allocation).
 *
 * Scenarios (CONFIG is the configuration file to load, URL the receiver):
 *   config   config_load of CONFIG (a full configuration) and config_free
 *   cycle    sched_new + one collection cycle + snapshot against the
 *            collectors CONFIG enables (Nexus fake, PostgreSQL), sched_free
 *   encode   rw_encode of 3000 samples of 600 series
 *   spool    sender_new + sender_submit of 3000 samples into the spool
 *            (spool_only) + sender_free
 *   deliver  a spool filled beforehand (unarmed) delivered by sender_new +
 *            sender_deliver to CONFIG's [remote_write] receiver
 *   replay   the same spool sent by `spool replay --url URL`
 *   export   `spool export --to FILE` then `spool import FILE` into an empty spool
 * Each child uses its own spool_dir (NEXUS_SHIPPER_SHIPPER_SPOOL_DIR).
 *
 * Environment: ALLOC_TORTURE_STEP (default 1) tests every STEP-th N;
 * ALLOC_TORTURE_MAX (default 200000) stops there; ALLOC_TORTURE_VERBOSE=1
 * lets the children's log lines through; ALLOC_TORTURE_LOSS_OK=1 reports
 * lost samples (with the injection site) without failing: for a known
 * defect while it is being fixed, so that crashes and leaks stay judged
 * meanwhile (test_alloc_fail.sh sets it for no scenario: every one must
 * lose nothing, the spool's in-memory index included).
 * Exit 0 when every run passed, 1 otherwise (each failure printed with N). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "collector.h"
#include "config.h"
#include "remote_write.h"
#include "scheduler.h"
#include "sender.h"
#include "sender_int.h"
#include "series.h"
#include "spool_cli.h"
#include "util.h"

/* ---- the wrappers -------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void __real_free(void *p);

static bool g_armed;
static long g_count;    /* allocations while armed */
static long g_fail_at;  /* 0: never */
static bool g_injected; /* the failure happened */
static void *g_inject_site;

/* Live allocations made while armed: open addressing, pointer -> caller. */
struct live {
    void *p;
    void *site;
    size_t size;
};
static struct live *g_live;
static size_t g_live_cap, g_live_n;
#define TOMB ((void *)1)

static size_t slot_of(void *p, size_t cap)
{
    uintptr_t h = (uintptr_t)p;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (cap - 1);
}

static void live_add(void *p, void *site, size_t size);

static void live_grow(void)
{
    size_t ncap = g_live_cap ? g_live_cap * 2 : 4096;
    struct live *old = g_live;
    size_t ocap = g_live_cap;
    g_live = __real_calloc(ncap, sizeof *g_live);
    if (!g_live)
        abort();
    g_live_cap = ncap;
    g_live_n = 0;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].p && old[i].p != TOMB)
            live_add(old[i].p, old[i].site, old[i].size);
    __real_free(old);
}

static void live_add(void *p, void *site, size_t size)
{
    if ((g_live_n + 1) * 2 > g_live_cap)
        live_grow();
    size_t i = slot_of(p, g_live_cap);
    while (g_live[i].p && g_live[i].p != TOMB)
        i = (i + 1) & (g_live_cap - 1);
    g_live[i] = (struct live){p, site, size};
    g_live_n++;
}

static void live_del(void *p)
{
    if (!p || !g_live_cap)
        return;
    size_t i = slot_of(p, g_live_cap);
    while (g_live[i].p) {
        if (g_live[i].p == p) {
            g_live[i].p = TOMB;
            g_live_n--;
            return;
        }
        i = (i + 1) & (g_live_cap - 1);
    }
}

static size_t live_count(void)
{
    size_t n = 0;
    for (size_t i = 0; i < g_live_cap; i++)
        n += g_live[i].p && g_live[i].p != TOMB;
    return n;
}

/* true: this allocation must fail */
static bool should_fail(void *site)
{
    if (!g_armed)
        return false;
    if (++g_count == g_fail_at) {
        g_injected = true;
        g_inject_site = site;
        errno = ENOMEM;
        return true;
    }
    return false;
}

static void *track(void *p, void *site, size_t size)
{
    if (p && g_armed)
        live_add(p, site, size);
    return p;
}

void *__wrap_malloc(size_t n)
{
    void *site = __builtin_return_address(0);
    return should_fail(site) ? NULL : track(__real_malloc(n), site, n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    void *site = __builtin_return_address(0);
    return should_fail(site) ? NULL : track(__real_calloc(n, m), site, n * m);
}

void *__wrap_realloc(void *p, size_t n)
{
    void *site = __builtin_return_address(0);
    if (should_fail(site))
        return NULL; /* p stays valid, as realloc promises */
    void *q = __real_realloc(p, n);
    if (q) {
        live_del(p);
        track(q, site, n);
    }
    return q;
}

char *__wrap_strdup(const char *s)
{
    void *site = __builtin_return_address(0);
    return should_fail(site) ? NULL : track(__real_strdup(s), site, strlen(s) + 1);
}

char *__wrap_strndup(const char *s, size_t n)
{
    void *site = __builtin_return_address(0);
    return should_fail(site) ? NULL : track(__real_strndup(s, n), site, n + 1);
}

void __wrap_free(void *p)
{
    live_del(p);
    __real_free(p);
}

static void arm(long fail_at)
{
    g_count = 0;
    g_fail_at = fail_at;
    g_armed = true;
}

static void disarm(void)
{
    g_armed = false;
}

/* "function+0xOFF (binary)" for an address in our code */
static void describe(void *site, char *out, size_t n)
{
    Dl_info di;
    if (dladdr(site, &di) && di.dli_fname) {
        uintptr_t off = (uintptr_t)site - (uintptr_t)di.dli_fbase;
        if (di.dli_sname)
            snprintf(out, n, "%s+0x%lx (%s)", di.dli_sname,
                     (unsigned long)((uintptr_t)site - (uintptr_t)di.dli_saddr), di.dli_fname);
        else
            snprintf(out, n, "addr2line -f -e %s 0x%lx", di.dli_fname, (unsigned long)off);
    } else {
        snprintf(out, n, "%p", site);
    }
}

/* ---- scenarios -------------------------------------------------------- */

static const char *g_conf, *g_url, *g_dir;
static const char *g_spool = "spool"; /* spool_dir = g_dir/g_spool */

static struct config *load(void)
{
    struct err e;
    struct config *cfg = config_load(g_conf, &e);
    if (!cfg) {
        fprintf(stderr, "alloc_torture: cannot load %s: %s\n", g_conf, e.msg);
        exit(30);
    }
    return cfg;
}

static const struct metric_desc m_g = {"torture_gauge", MT_GAUGE, "A gauge for the torture.", ""};

/* A buffer with 600 series x 5 families = 3000 samples. */
static struct series_buf *fill_buffer(struct sb_sample **v, size_t *n)
{
    static const char *ext[] = {"instance", "torture"};
    struct sb_opts o = {.ext_labels = ext, .n_ext = 1};
    struct series_buf *sb = sb_new(&o);
    if (!sb)
        exit(31);
    sb_begin_cycle(sb, now_ms());
    sb_txn_begin(sb, "torture");
    for (int f = 0; f < 5; f++) {
        char fam[32];
        snprintf(fam, sizeof fam, "family_%d", f);
        for (int i = 0; i < 600; i++) {
            char id[32];
            snprintf(id, sizeof id, "repo-%d", i);
            sb_set(sb, &m_g, i * 1.5 + f, "family", fam, "repository", id, "format",
                   i % 2 ? "docker" : "maven2", NULL);
        }
    }
    sb_txn_commit(sb);
    if (sb_snapshot(sb, true, v, n) < 0)
        exit(31);
    return sb;
}

static void spool_env(bool spool_only)
{
    char d[4096];
    snprintf(d, sizeof d, "%s/%s", g_dir, g_spool);
    setenv("NEXUS_SHIPPER_SHIPPER_SPOOL_DIR", d, 1);
    setenv("NEXUS_SHIPPER_SHIPPER_SPOOL_ONLY", spool_only ? "true" : "false", 1);
}

/* Unarmed: writes a spool of a few batches for deliver/replay/export. */
static void prefill_spool(void)
{
    spool_env(true);
    struct config *cfg = load();
    struct err e;
    struct sender *snd = sender_new(cfg, &e);
    size_t n;
    struct sb_sample *v;
    struct series_buf *sb = fill_buffer(&v, &n);
    if (!snd || sender_submit(snd, sb, v, n) < 1)
        exit(32);
    sender_free(snd);
    free(v);
    sb_free(sb);
    config_free(cfg);
    spool_env(false);
}

/* Every scenario: prepare (unarmed), run(fail_at) armed, tear down.
 * Returns 0 when the outcome is acceptable, else prints why and returns -1.
 * *errored: the armed part reported an error. */
static int run_config(long fail_at, bool *errored)
{
    struct err e = {{0}};
    arm(fail_at);
    struct config *cfg = config_load(g_conf, &e);
    disarm();
    *errored = !cfg;
    if (!cfg && !e.msg[0]) {
        fprintf(stderr, "config_load failed without a message\n");
        return -1;
    }
    config_free(cfg);
    return 0;
}

static int run_cycle(long fail_at, bool *errored)
{
    struct config *cfg = load();
    struct err e = {{0}};
    arm(fail_at);
    struct scheduler *s = sched_new(cfg, builtin_collectors, n_builtin_collectors, NULL, &e);
    long n = -1;
    if (s)
        n = sched_cycle(s, now_ms());
    sched_free(s);
    disarm();
    *errored = !s || n < 0;
    if (!s && !e.msg[0]) {
        fprintf(stderr, "sched_new failed without a message\n");
        return -1;
    }
    config_free(cfg);
    return 0;
}

static int run_encode(long fail_at, bool *errored)
{
    size_t n;
    struct sb_sample *v;
    struct series_buf *sb = fill_buffer(&v, &n);
    struct buf out;
    struct err e = {{0}};
    buf_init(&out, 0);
    arm(fail_at);
    struct rw_encoder *enc = rw_encoder_new();
    int rc = enc ? rw_encode(enc, sb, v, n, sb_cycle_ts(sb), &out, &e) : -1;
    rw_encoder_free(enc);
    buf_free(&out);
    disarm();
    *errored = rc < 0;
    free(v);
    sb_free(sb);
    if (enc && rc < 0 && !e.msg[0]) {
        fprintf(stderr, "rw_encode failed without a message\n");
        return -1;
    }
    return 0;
}

/* Samples sent and dropped (every reason) by a sender's targets. */
static void sender_counts(const struct sender *snd, uint64_t *sent, uint64_t *dropped,
                          uint64_t *mem_bytes)
{
    for (size_t i = 0; snd && i < snd->n; i++) {
        *sent += snd->t[i]->samples_sent;
        for (int r = 0; r < DROP_NREASONS; r++)
            *dropped += snd->t[i]->samples_dropped[r];
        *mem_bytes += snd->t[i]->mem_bytes;
    }
}

/* Unarmed: delivers whatever the spool holds; adds to *sent, *dropped. */
static void drain(uint64_t *sent, uint64_t *dropped)
{
    spool_env(false);
    struct config *cfg = load();
    struct err e;
    struct sender *snd = sender_new(cfg, &e);
    if (!snd)
        exit(33);
    sender_deliver(snd, mono_ms() + 20000, 0, 0);
    uint64_t mem = 0;
    sender_counts(snd, sent, dropped, &mem);
    sender_free(snd);
    config_free(cfg);
}

#define SAMPLES 3000 /* fill_buffer's */

/* Nothing lost: what the armed part delivered, plus what is still spooled
 * (delivered now), plus what it counted as dropped, is every sample. */
static int check_accounting(const char *what, uint64_t sent, uint64_t dropped, uint64_t mem,
                            bool allow_drops)
{
    uint64_t sent2 = 0, dropped2 = 0;
    drain(&sent2, &dropped2);
    if ((dropped || dropped2) && !allow_drops) {
        fprintf(stderr, "%s: %llu + %llu samples dropped (quarantined?) by an allocation failure\n",
                what, (unsigned long long)dropped, (unsigned long long)dropped2);
        return -1;
    }
    if (mem == 0 && sent + sent2 + dropped + dropped2 < SAMPLES) {
        fprintf(stderr, "%s: samples lost: %llu sent, %llu sent after, %llu dropped, of %d\n", what,
                (unsigned long long)sent, (unsigned long long)sent2,
                (unsigned long long)(dropped + dropped2), SAMPLES);
        return -1;
    }
    return 0;
}

static int run_spool(long fail_at, bool *errored)
{
    spool_env(true);
    struct config *cfg = load();
    size_t n;
    struct sb_sample *v;
    struct series_buf *sb = fill_buffer(&v, &n);
    struct err e = {{0}};
    arm(fail_at);
    struct sender *snd = sender_new(cfg, &e);
    int rc = snd ? sender_submit(snd, sb, v, n) : -1;
    uint64_t sent = 0, dropped = 0, mem = 0;
    sender_counts(snd, &sent, &dropped, &mem); /* allocates nothing */
    sender_free(snd);
    disarm();
    *errored = rc < 0 || !snd;
    free(v);
    sb_free(sb);
    config_free(cfg);
    /* a batch that could not be encoded is counted (reason rejected) */
    return snd ? check_accounting("spool", sent, dropped, mem, true) : 0;
}

static int run_deliver(long fail_at, bool *errored)
{
    prefill_spool();
    struct config *cfg = load();
    struct err e = {{0}};
    arm(fail_at);
    struct sender *snd = sender_new(cfg, &e);
    size_t left = snd ? sender_deliver(snd, mono_ms() + 10000, 0, 0) : 1;
    uint64_t sent = 0, dropped = 0, mem = 0;
    sender_counts(snd, &sent, &dropped, &mem); /* allocates nothing */
    sender_free(snd);
    disarm();
    *errored = left > 0;
    config_free(cfg);
    return check_accounting("deliver", sent, dropped, 0, false);
}

/* Runs `nexus-shipper spool ...` armed; its stdout goes to g_dir/cli.out. */
static int run_cli(long fail_at, bool *errored, int argc, char **argv)
{
    struct config *cfg = load();
    char out[4200];
    snprintf(out, sizeof out, "%s/cli.out", g_dir);
    fflush(stdout);
    int saved = dup(1), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    dup2(fd, 1);
    close(fd);
    arm(fail_at);
    int rc = spool_cli(cfg, argc, argv, NULL);
    disarm();
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    *errored = rc != 0;
    config_free(cfg);
    return 0;
}

static int run_replay(long fail_at, bool *errored)
{
    prefill_spool();
    char *argv[] = {"spool", "replay", "--url", (char *)g_url, NULL};
    run_cli(fail_at, errored, 4, argv);
    char out[4200];
    snprintf(out, sizeof out, "%s/cli.out", g_dir);
    unsigned long long segs = 0, samples = 0, quarantined = 0;
    FILE *f = fopen(out, "re");
    if (f) {
        if (fscanf(f, "replayed %llu segment(s), %llu samples; %llu quarantined", &segs, &samples,
                   &quarantined) != 3)
            samples = quarantined = 0;
        fclose(f);
    }
    if (!*errored && samples < SAMPLES) {
        fprintf(stderr, "replay: exit 0 after replaying only %llu of %d samples\n", samples,
                SAMPLES);
        return -1;
    }
    return check_accounting("replay", samples, quarantined, 0, false);
}

static int run_export(long fail_at, bool *errored)
{
    prefill_spool();
    char file[4096];
    snprintf(file, sizeof file, "%s/export.nxs", g_dir);
    char *ex[] = {"spool", "export", "--to", file, NULL};
    int rc = run_cli(fail_at, errored, 4, ex);
    if (rc < 0 || *errored)
        return rc;
    /* import into a fresh spool */
    g_spool = "spool2";
    spool_env(false);
    long left = fail_at - g_count; /* the same N counts on across both halves */
    char *im[] = {"spool", "import", file, NULL};
    rc = run_cli(left > 0 ? left : 0, errored, 3, im);
    if (rc < 0 || *errored)
        return rc;
    /* everything exported was imported: deliver the new spool, count */
    return check_accounting("export", 0, 0, 0, false);
}

struct scenario {
    const char *name;
    int (*run)(long fail_at, bool *errored);
};

static const struct scenario scenarios[] = {
    {"config", run_config},   {"cycle", run_cycle},   {"encode", run_encode}, {"spool", run_spool},
    {"deliver", run_deliver}, {"replay", run_replay}, {"export", run_export},
};

/* ---- the driver -------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

enum { CHILD_INJECTED = 0, CHILD_CLEAN = 10, CHILD_LEAK = 20, CHILD_BAD = 21 };

static int child(const struct scenario *sc, long fail_at, const char *errlog)
{
    if (!getenv("ALLOC_TORTURE_VERBOSE")) {
        int fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
    }
    bool errored = false;
    int rc = sc->run(fail_at, &errored);
    if (g_injected) {
        char where[512];
        describe(g_inject_site, where, sizeof where);
        fprintf(stderr, "injected at %s: %s\n", where, errored ? "error returned" : "tolerated");
    }
    if (rc < 0)
        return CHILD_BAD;
    if (g_live_cap && live_count()) {
        fprintf(stderr, "LEAK: %zu allocation(s) made while armed were never freed:\n",
                live_count());
        size_t shown = 0;
        for (size_t i = 0; i < g_live_cap && shown < 10; i++) {
            if (!g_live[i].p || g_live[i].p == TOMB)
                continue;
            char where[512];
            describe(g_live[i].site, where, sizeof where);
            fprintf(stderr, "  %zu bytes allocated at %s\n", g_live[i].size, where);
            shown++;
        }
        return CHILD_LEAK;
    }
    /* the parent reads errored from the file below */
    char p[4096];
    snprintf(p, sizeof p, "%s/.errored", g_dir);
    if (errored) {
        FILE *f = fopen(p, "we");
        if (f)
            fclose(f);
    }
    return g_injected ? CHILD_INJECTED : CHILD_CLEAN;
}

static void show_log(const char *errlog)
{
    FILE *f = fopen(errlog, "re");
    if (!f)
        return;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f) && n++ < 60)
        fprintf(stderr, "    | %s", line);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: alloc_torture SCENARIO CONFIG [URL]\n");
        return 2;
    }
    const struct scenario *sc = NULL;
    for (size_t i = 0; i < NS_ARRAY_LEN(scenarios); i++)
        if (strcmp(scenarios[i].name, argv[1]) == 0)
            sc = &scenarios[i];
    if (!sc) {
        fprintf(stderr, "alloc_torture: unknown scenario %s\n", argv[1]);
        return 2;
    }
    g_conf = argv[2];
    g_url = argc > 3 ? argv[3] : "http://127.0.0.1:9/api/v1/write";
    long step = getenv("ALLOC_TORTURE_STEP") ? atol(getenv("ALLOC_TORTURE_STEP")) : 1;
    long max = getenv("ALLOC_TORTURE_MAX") ? atol(getenv("ALLOC_TORTURE_MAX")) : 200000;
    if (step < 1)
        step = 1;
    char base[] = "/tmp/alloc-torture.XXXXXX";
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 2;
    }
    char errlog[4200], dir[4200], errored_flag[4300];
    snprintf(errlog, sizeof errlog, "%s/child.err", base);
    snprintf(dir, sizeof dir, "%s/run", base);
    snprintf(errored_flag, sizeof errored_flag, "%s/.errored", dir);
    g_dir = dir;
    signal(SIGPIPE, SIG_IGN);
    int64_t t0 = mono_ms();
    long runs = 0, errors = 0, tolerated = 0, failures = 0, losses = 0, n;
    bool loss_ok = getenv("ALLOC_TORTURE_LOSS_OK") != NULL;
    bool done = false;
    for (n = 1; n <= max && !done; n += step) {
        mkdir(dir, 0700);
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0)
            exit(child(sc, n, errlog));
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        runs++;
        bool errored = access(errored_flag, F_OK) == 0;
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        if (WIFEXITED(st) && WEXITSTATUS(st) == CHILD_CLEAN) {
            done = true;
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == CHILD_INJECTED) {
            if (errored)
                errors++;
            else
                tolerated++;
        } else if (loss_ok && WIFEXITED(st) && WEXITSTATUS(st) == CHILD_BAD) {
            losses++;
            fprintf(stderr, "%s: N=%ld: KNOWN DEFECT, not judged (ALLOC_TORTURE_LOSS_OK):\n",
                    sc->name, n);
            show_log(errlog);
        } else {
            failures++;
            if (WIFSIGNALED(st))
                fprintf(stderr, "%s: N=%ld: the child died of signal %d (%s)\n", sc->name, n,
                        WTERMSIG(st), strsignal(WTERMSIG(st)));
            else
                fprintf(stderr, "%s: N=%ld: the child exited %d (%s)\n", sc->name, n,
                        WEXITSTATUS(st),
                        WEXITSTATUS(st) == CHILD_LEAK  ? "leak"
                        : WEXITSTATUS(st) == CHILD_BAD ? "bad result"
                        : WEXITSTATUS(st) == 23        ? "LeakSanitizer"
                                                       : "sanitizer or setup error");
            show_log(errlog);
            if (failures >= 10) {
                fprintf(stderr, "%s: stopping after 10 failures\n", sc->name);
                break;
            }
        }
    }
    nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    printf("%-8s %ld runs (N = 1..%ld step %ld) in %.1f s: %ld errors returned, %ld tolerated, "
           "%s%.0ld%s%ld failures%s\n",
           sc->name, runs, n - step, step, (double)(mono_ms() - t0) / 1000.0, errors, tolerated,
           losses ? "KNOWN DEFECT: " : "", losses, losses ? " run(s) lost samples, " : "", failures,
           done ? "" : " (did not reach a clean run)");
    return failures || !done ? 1 : 0;
}
