/* Unit tests for config.c (parsing, validation, environment, secrets,
 * template) and the parsers and helpers of util.c. */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"
#include "config.h"
#include "util.h"

extern char **environ;

static char cfgpath[PATH_MAX + 32];

/* Removes every NEXUS_SHIPPER_* variable (the tests run in one process). */
static void clear_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **ev = environ; ev && *ev; ev++)
            if (str_has_prefix(*ev, "NEXUS_SHIPPER_")) {
                const char *eq = strchr(*ev, '=');
                snprintf(name, sizeof name, "%.*s", (int)(eq ? eq - *ev : (long)strlen(*ev)), *ev);
                break;
            }
        if (!name[0])
            break;
        unsetenv(name);
    }
    unsetenv("NS_TEST_HOST");
    unsetenv("NS_TEST_EMPTY");
    unsetenv("NS_TEST_UNSET");
}

static void setup(void)
{
    clear_env();
    tl_tmpdir_setup();
    snprintf(cfgpath, sizeof cfgpath, "%s/test.conf", tmpdir);
}

static void teardown(void)
{
    clear_env();
    tl_tmpdir_teardown();
}

static struct config *load(const char *text, struct err *e)
{
    tl_write_file(cfgpath, text, 0600);
    e->msg[0] = '\0';
    return config_load(cfgpath, e);
}

static struct config *load_ok(const char *text)
{
    struct err e;
    struct config *c = load(text, &e);
    ck_assert_msg(c != NULL, "config refused: %s", e.msg);
    return c;
}

/* `want` is the message after "FILE:" (or the whole message when it does
 * not start with a digit, e.g. "environment ..."). */
static void expect_error(const char *text, const char *want)
{
    struct err e;
    struct config *c = load(text, &e);
    ck_assert_msg(c == NULL, "accepted:\n%s", text);
    char full[1024];
    if (want[0] >= '0' && want[0] <= '9')
        snprintf(full, sizeof full, "%s:%s", cfgpath, want);
    else
        snprintf(full, sizeof full, "%s", want);
    ck_assert_str_eq(e.msg, full);
}

static void expect_error_prefix(const char *text, const char *want)
{
    struct err e;
    struct config *c = load(text, &e);
    ck_assert_msg(c == NULL, "accepted:\n%s", text);
    char full[1024];
    snprintf(full, sizeof full, "%s:%s", cfgpath, want);
    ck_assert_msg(str_has_prefix(e.msg, full), "got \"%s\", want prefix \"%s\"", e.msg, full);
}

/* ---- util parsers --------------------------------------------------------- */

START_TEST(test_parse_duration)
{
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"30s", 30000},    {"5m", 300000}, {"1h", 3600000}, {"250ms", 250},  {"1d", 86400000},
        {"10", 10000},     {"0", 0},       {"1.5s", 1500},  {"0.5m", 30000}, {" 2m ", 120000},
        {"7d", 604800000}, {"5 s", 5000},  {"100MS", 100},  {"2H", 7200000},
    };
    for (size_t i = 0; i < NS_ARRAY_LEN(ok); i++) {
        int64_t v = -1;
        ck_assert_msg(parse_duration_ms(ok[i].s, &v) == 0, "\"%s\" refused", ok[i].s);
        ck_assert_msg(v == ok[i].ms, "\"%s\" -> %lld", ok[i].s, (long long)v);
    }
    static const char *bad[] = {"",      " ",     "s",   "ms",  "-5s", "5x",   "5sec",  "abc",
                                "5 m s", "1e400", "nan", "inf", "5s5", "0x10", "0x1p3s"};
    for (size_t i = 0; i < NS_ARRAY_LEN(bad); i++) {
        int64_t v = 12345;
        ck_assert_msg(parse_duration_ms(bad[i], &v) == -1, "\"%s\" accepted", bad[i]);
        ck_assert_int_eq(v, 12345); /* untouched on error */
    }
    ck_assert_int_eq(parse_duration_ms(NULL, &(int64_t){0}), -1);
    /* format_duration writes what the parser reads back */
    static const int64_t round[] = {0,      1,       250,     1000,     1500,      30000,   90000,
                                    300000, 3600000, 5400000, 86400000, 604800000, 86401000};
    for (size_t i = 0; i < NS_ARRAY_LEN(round); i++) {
        char s[32];
        int64_t v;
        format_duration(round[i], s, sizeof s);
        ck_assert_int_eq(parse_duration_ms(s, &v), 0);
        ck_assert_msg(v == round[i], "%lld -> %s -> %lld", (long long)round[i], s, (long long)v);
    }
    char s[32];
    format_duration(300000, s, sizeof s);
    ck_assert_str_eq(s, "5m");
    format_duration(250, s, sizeof s);
    ck_assert_str_eq(s, "250ms");
    format_duration(604800000, s, sizeof s);
    ck_assert_str_eq(s, "7d");
}
END_TEST

START_TEST(test_parse_size)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"512MiB", 536870912ULL},
        {"1GiB", 1073741824ULL},
        {"64KiB", 65536},
        {"1000", 1000},
        {"10MB", 10000000},
        {"1kb", 1000},
        {"1.5KiB", 1536},
        {"1k", 1024},
        {"2M", 2097152},
        {"1g", 1073741824ULL},
        {"0", 0},
        {"100b", 100},
        {"1TiB", 1099511627776ULL},
        {"3 GB", 3000000000ULL},
        {" 7 ", 7},
    };
    for (size_t i = 0; i < NS_ARRAY_LEN(ok); i++) {
        uint64_t v = 0;
        ck_assert_msg(parse_size(ok[i].s, &v) == 0, "\"%s\" refused", ok[i].s);
        ck_assert_msg(v == ok[i].v, "\"%s\" -> %llu", ok[i].s, (unsigned long long)v);
    }
    static const char *bad[] = {"",     "-1",  "12XB",  "MiB",  "1 lightyear",
                                "1e30", "abc", "1MiBs", "0x400"};
    for (size_t i = 0; i < NS_ARRAY_LEN(bad); i++) {
        uint64_t v = 99;
        ck_assert_msg(parse_size(bad[i], &v) == -1, "\"%s\" accepted", bad[i]);
        ck_assert_uint_eq(v, 99);
    }
}
END_TEST

START_TEST(test_parse_bool_int)
{
    static const char *yes[] = {"true", "TRUE", "yes", "Yes", "on", "1"};
    static const char *no[] = {"false", "False", "no", "NO", "off", "0"};
    static const char *bad[] = {"", "2", "truee", "y", "n", "enabled", " true"};
    for (size_t i = 0; i < NS_ARRAY_LEN(yes); i++) {
        bool b = false;
        ck_assert_int_eq(parse_bool(yes[i], &b), 0);
        ck_assert(b);
    }
    for (size_t i = 0; i < NS_ARRAY_LEN(no); i++) {
        bool b = true;
        ck_assert_int_eq(parse_bool(no[i], &b), 0);
        ck_assert(!b);
    }
    for (size_t i = 0; i < NS_ARRAY_LEN(bad); i++) {
        bool b = true;
        ck_assert_msg(parse_bool(bad[i], &b) == -1, "\"%s\" accepted", bad[i]);
        ck_assert(b);
    }
    int64_t v;
    ck_assert_int_eq(parse_int64("42", &v), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(parse_int64("-7", &v), 0);
    ck_assert_int_eq(v, -7);
    ck_assert_int_eq(parse_int64("9223372036854775807", &v), 0);
    ck_assert_int_eq(v, INT64_MAX);
    ck_assert_int_eq(parse_int64("9223372036854775808", &v), -1);
    ck_assert_int_eq(parse_int64("", &v), -1);
    ck_assert_int_eq(parse_int64("12a", &v), -1);
    ck_assert_int_eq(parse_int64("1.5", &v), -1);
}
END_TEST

START_TEST(test_crc32c)
{
    ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c(0, "", 0), 0);
    /* RFC 3720 B.4 test vectors */
    unsigned char b[32];
    memset(b, 0, sizeof b);
    ck_assert_uint_eq(crc32c(0, b, 32), 0x8A9136AAu);
    memset(b, 0xff, sizeof b);
    ck_assert_uint_eq(crc32c(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)i;
    ck_assert_uint_eq(crc32c(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        b[i] = (unsigned char)(31 - i);
    ck_assert_uint_eq(crc32c(0, b, 32), 0x113FDB5Cu);
    /* incremental over any split (and unaligned starts) equals one pass */
    unsigned char big[1003];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 131 + 7);
    uint32_t whole = crc32c(0, big, sizeof big);
    for (size_t cut = 0; cut <= sizeof big; cut += 37) {
        uint32_t c = crc32c(0, big, cut);
        c = crc32c(c, big + cut, sizeof big - cut);
        ck_assert_uint_eq(c, whole);
    }
    ck_assert_uint_eq(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}
END_TEST

START_TEST(test_util_helpers)
{
    char **v;
    size_t n;
    ck_assert_int_eq(split_list(" a, b ,,c ,", &v, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(v[0], "a");
    ck_assert_str_eq(v[1], "b");
    ck_assert_str_eq(v[2], "c");
    strv_free(v, n);
    ck_assert_int_eq(split_list("", &v, &n), 0);
    ck_assert_uint_eq(n, 0);
    strv_free(v, n);
    char s[] = "  \t hi there \n";
    ck_assert_str_eq(str_trim(s), "hi there");
    ck_assert(str_has_prefix("nexus_up", "nexus_"));
    ck_assert(!str_has_prefix("nex", "nexus_"));
    ck_assert(str_has_suffix("a.seg", ".seg"));
    ck_assert(!str_has_suffix("seg", ".seg"));
    /* a buffer never grows past its maximum and stays intact */
    struct buf b;
    buf_init(&b, 10);
    ck_assert_int_eq(buf_puts(&b, "0123456789"), 0);
    ck_assert_int_eq(buf_puts(&b, "x"), -1);
    ck_assert_int_eq(buf_printf(&b, "%d", 1), -1);
    ck_assert_uint_eq(b.len, 10);
    ck_assert_str_eq(buf_cstr(&b), "0123456789");
    buf_reset(&b);
    ck_assert_str_eq(buf_cstr(&b), "");
    char big[600];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(buf_printf(&b, "%s", big), -1);
    buf_free(&b);
    buf_init(&b, 0);
    ck_assert_int_eq(buf_printf(&b, "<%s>", big), 0); /* longer than the small-path buffer */
    ck_assert_uint_eq(b.len, sizeof big + 1);
    ck_assert_int_eq(b.data[b.len], '\0');
    buf_free(&b);
    buf_free(NULL);
    /* shortest round-trip formatting of doubles */
    static const struct {
        double v;
        const char *s;
    } fd[] = {
        {0.1, "0.1"},    {10, "10"},           {2.5, "2.5"},    {0.005, "0.005"},
        {1e-7, "1e-07"}, {2500000, "2500000"}, {1e20, "1e+20"}, {1.0 / 3, "0.3333333333333333"}};
    for (size_t i = 0; i < NS_ARRAY_LEN(fd); i++) {
        char out[64];
        format_double(fd[i].v, out, sizeof out);
        ck_assert_str_eq(out, fd[i].s);
    }
}
END_TEST

/* url_redact (issue 18): no password, token or key of a URL reaches a log line */
START_TEST(test_url_redact)
{
    static const struct {
        const char *in, *out;
    } c[] = {
        {"http://alice:TopSecretPW@127.0.0.1:9090/api/v1/write",
         "http://REDACTED@127.0.0.1:9090/api/v1/write"},
        {"https://tokenonly@host/x", "https://REDACTED@host/x"},
        {"http://127.0.0.1:9090/api/v1/write", "http://127.0.0.1:9090/api/v1/write"},
        {"http://h/p?a=1&token=abc&b=2", "http://h/p?a=1&token=REDACTED&b=2"},
        {"http://h/p?Access_Token=abc", "http://h/p?Access_Token=REDACTED"},
        {"http://h/p?private_token=abc;x=1", "http://h/p?private_token=REDACTED;x=1"},
        {"http://h/p?PASSWORD=pw&apikey=k&api_key=k2&X-Amz-Signature=s",
         "http://h/p?PASSWORD=REDACTED&apikey=REDACTED&api_key=REDACTED&X-Amz-Signature=REDACTED"},
        {"http://h/p?%74oken=abc", "http://h/p?%74oken=REDACTED"},
        {"http://h/p?client_secret=s&key=k&sig=z",
         "http://h/p?client_secret=REDACTED&key=REDACTED&sig=REDACTED"},
        {"http://h/p?token=&page=2", "http://h/p?token=&page=2"},
        {"http://u:p@h/p?token=t", "http://REDACTED@h/p?token=REDACTED"},
        {"http://[::1]:8080/x?n=1", "http://[::1]:8080/x?n=1"},
        {"http://u:p@[::1]:8080/x", "http://REDACTED@[::1]:8080/x"},
        {"http://al ice:pw@h", "<unparseable url>"},
        {"not a url at all", "not a url at all"},
        {"alice:pw@h:80/x", "<unparseable url>"},
        {"h?token=x", "<unparseable url>"},
        {"", ""},
    };
    char out[URL_REDACT_MAX];
    for (size_t i = 0; i < NS_ARRAY_LEN(c); i++)
        ck_assert_str_eq(url_redact(c[i].in, out, sizeof out), c[i].out);
    ck_assert_str_eq(url_redact(NULL, out, sizeof out), "");
    /* truncated, never overflowing, still redacted */
    char small[20];
    ck_assert_str_eq(url_redact("http://alice:TopSecretPW@example.com/", small, sizeof small),
                     "http://REDACTED@exa");
    ck_assert_str_eq(url_redact("http://x/", out, 0), "");
}
END_TEST

START_TEST(test_read_file)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/f", tmpdir);
    tl_write_file(p, "secret \n\n", 0600);
    char *s = NULL;
    struct err e;
    ck_assert_int_eq(read_file(p, 100, true, &s, &e), 0);
    ck_assert_str_eq(s, "secret");
    free(s);
    ck_assert_int_eq(read_file(p, 100, false, &s, &e), 0);
    ck_assert_str_eq(s, "secret \n\n");
    free(s);
    ck_assert_int_eq(read_file(p, 4, false, &s, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "larger than 4 bytes"));
    ck_assert_int_eq(read_file(p, 9, false, &s, &e), 0); /* exactly max bytes */
    ck_assert_str_eq(s, "secret \n\n");
    free(s);
    ck_assert_int_eq(read_file(p, 8, false, &s, &e), -1);
    /* sizes around the read chunk */
    char big[5001];
    memset(big, 'b', 5000);
    big[5000] = '\0';
    tl_write_file(p, big, 0600);
    ck_assert_int_eq(read_file(p, 5000, false, &s, &e), 0);
    ck_assert_uint_eq(strlen(s), 5000);
    free(s);
    ck_assert_int_eq(read_file(p, 4999, false, &s, &e), -1);
    ck_assert_int_eq(read_file(p, 0, false, &s, &e), 0);
    ck_assert_uint_eq(strlen(s), 5000);
    free(s);
    snprintf(p, sizeof p, "%s/missing", tmpdir);
    ck_assert_int_eq(read_file(p, 100, false, &s, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "No such file"));
}
END_TEST

/* ---- config: defaults and values ------------------------------------------- */

START_TEST(test_defaults)
{
    struct config *c = load_ok("# nothing but comments\n; and this\n\n[shipper]\n");
    const struct cfg_shipper *s = &c->shipper;
    ck_assert_int_eq(s->interval_ms, 30000);
    ck_assert_str_eq(s->spool_dir, "/var/lib/nexus-shipper/spool");
    ck_assert_uint_eq(s->spool_max_size, 1ULL << 30);
    ck_assert_int_eq(s->spool_max_age_ms, 7 * 86400000LL);
    ck_assert(!s->spool_only);
    ck_assert_int_eq(s->replay_rate, 50);
    ck_assert_int_eq(s->shutdown_timeout_ms, 10000);
    ck_assert_str_eq(s->state_dir, "/var/lib/nexus-shipper");
    ck_assert_str_eq(s->log_file, "");
    ck_assert_str_eq(s->log_level, "info");
    ck_assert_str_eq(s->log_format, "text");
    ck_assert_int_eq(s->collector_timeout_ms, 20000);
    ck_assert_uint_eq(s->buffer_max_size, 64ULL << 20);
    ck_assert_uint_eq(s->external_labels.n, 0);
    ck_assert(!c->has_drop_re && !c->has_keep_re);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    ck_assert_str_eq(s->instance, host[0] ? host : "localhost");
    ck_assert_uint_eq(c->n_rw, 0);
    ck_assert_ptr_null(c->pushgateway);
    ck_assert_ptr_null(c->nexus);
    ck_assert(!c->world_readable_secrets);
    ck_assert_str_eq(c->path, cfgpath);
    config_free(c);
    /* an empty file is a valid configuration too */
    c = load_ok("");
    ck_assert_int_eq(c->shipper.interval_ms, 30000);
    config_free(c);
    config_free(NULL);

    c = load_ok("[remote_write]\nurl = http://127.0.0.1:9/api/v1/write\n"
                "[pushgateway]\nurl = http://127.0.0.1:9091\n"
                "[nexus]\nurl = https://nexus:8081\n");
    ck_assert_uint_eq(c->n_rw, 1);
    const struct cfg_remote_write *rw = c->rw[0];
    ck_assert_str_eq(rw->name, "");
    ck_assert_int_eq(rw->line, 1);
    ck_assert_int_eq(rw->timeout_ms, 30000);
    ck_assert_int_eq(rw->max_samples_per_send, 10000);
    ck_assert_int_eq(rw->min_backoff_ms, 500);
    ck_assert_int_eq(rw->max_backoff_ms, 5000);
    ck_assert_str_eq(rw->basic_auth_user, "");
    ck_assert_ptr_null(rw->basic_auth_password);
    ck_assert_ptr_null(rw->bearer_token);
    ck_assert(!rw->insecure_skip_verify);
    ck_assert_uint_eq(rw->headers.n, 0);
    ck_assert_ptr_nonnull(c->pushgateway);
    ck_assert_int_eq(c->pushgateway->line, 3);
    ck_assert_str_eq(c->pushgateway->job, "nexus-shipper");
    ck_assert_int_eq(c->pushgateway->timeout_ms, 30000);
    ck_assert_ptr_nonnull(c->nexus);
    ck_assert_int_eq(c->nexus->line, 5);
    ck_assert_str_eq(c->nexus->url, "https://nexus:8081");
    ck_assert_int_eq(c->nexus->timeout_ms, 10000);
    config_free(c);
}
END_TEST

START_TEST(test_values)
{
    struct config *c = load_ok("[Shipper]\n"
                               "  Interval   =   45s  \n"
                               "instance = \"  spaced # not a comment \"\n"
                               "external_labels = env=prod, dc = eu1\n"
                               "spool_max_size = 2GiB\n"
                               "spool_only = yes\n"
                               "replay_rate = 0\n"
                               "log_level = debug\n"
                               "log_format = json\n"
                               "collector_timeout = 1500ms\n"
                               "drop_metrics = _debug$\n"
                               "keep_metrics = '^nexus_'\n"
                               "\n"
                               "[remote_write]\n"
                               "url = https://mimir/api/v1/push\n"
                               "tenant = team-a\n"
                               "headers = X-A: 1, X-B: two\n"
                               "max_samples_per_send = 500\n"
                               "min_backoff = 30ms\n"
                               "max_backoff = 5s\n"
                               "insecure_skip_verify = on\n"
                               "[remote_write backup]\n"
                               "url = http://vm:8428/api/v1/write\n"
                               "[remote_write eu-west_2]\n"
                               "url = http://vm2:8428/api/v1/write\n");
    const struct cfg_shipper *s = &c->shipper;
    ck_assert_int_eq(s->interval_ms, 45000);
    ck_assert_str_eq(s->instance, "  spaced # not a comment ");
    ck_assert_uint_eq(s->external_labels.n, 2);
    ck_assert_str_eq(s->external_labels.v[0], "env=prod");
    ck_assert_str_eq(s->external_labels.v[1], "dc=eu1");
    ck_assert_uint_eq(s->spool_max_size, 2ULL << 30);
    ck_assert(s->spool_only);
    ck_assert_int_eq(s->replay_rate, 0);
    ck_assert_str_eq(s->log_level, "debug");
    ck_assert_str_eq(s->log_format, "json");
    ck_assert_int_eq(s->collector_timeout_ms, 1500);
    ck_assert(c->has_drop_re);
    ck_assert(c->has_keep_re);
    ck_assert_int_eq(regexec(&c->drop_re, "x_debug", 0, NULL, 0), 0);
    ck_assert_int_ne(regexec(&c->drop_re, "x_debugger", 0, NULL, 0), 0);
    ck_assert_int_eq(regexec(&c->keep_re, "nexus_up", 0, NULL, 0), 0);
    ck_assert_uint_eq(c->n_rw, 3);
    ck_assert_str_eq(c->rw[0]->name, "");
    ck_assert_int_eq(c->rw[0]->line, 14);
    ck_assert_str_eq(c->rw[0]->tenant, "team-a");
    ck_assert_uint_eq(c->rw[0]->headers.n, 2);
    ck_assert_str_eq(c->rw[0]->headers.v[0], "X-A: 1");
    ck_assert_str_eq(c->rw[0]->headers.v[1], "X-B: two");
    ck_assert_int_eq(c->rw[0]->max_samples_per_send, 500);
    ck_assert_int_eq(c->rw[0]->min_backoff_ms, 30);
    ck_assert_int_eq(c->rw[0]->max_backoff_ms, 5000);
    ck_assert(c->rw[0]->insecure_skip_verify);
    ck_assert_str_eq(c->rw[1]->name, "backup");
    ck_assert_int_eq(c->rw[1]->line, 22);
    ck_assert_str_eq(c->rw[1]->url, "http://vm:8428/api/v1/write");
    ck_assert_str_eq(c->rw[2]->name, "eu-west_2");
    config_free(c);
}
END_TEST

/* ---- config: every error, with its location ------------------------------------ */

START_TEST(test_syntax_errors)
{
    expect_error("[shipper]\n[bogus]\n", "2: unknown section [bogus]");
    expect_error("[shipper]\n[]\n", "2: unknown section []");
    expect_error("[shipper]\ninterval = 5s\nfoo = 1\n",
                 "3: unknown key \"foo\" in section [shipper]");
    expect_error("[remote_write]\nurl = http://x\njob = y\n",
                 "3: unknown key \"job\" in section [remote_write] (\"job\" is a key of "
                 "[pushgateway])");
    expect_error("[shipper\n", "1: malformed section header \"[shipper\"");
    expect_error("\n\n[shipper] extra\n", "3: malformed section header \"[shipper] extra\"");
    expect_error("[shipper]\njunk line\n", "2: expected `key = value`, got \"junk line\"");
    expect_error("interval = 5s\n", "1: key outside of any section (start with [shipper])");
    expect_error("# comment\ninterval = 5s\n[shipper]\n",
                 "2: key outside of any section (start with [shipper])");
    expect_error("[shipper]\ninterval = 5s\n\n# again\ninterval = 6s\n",
                 "5: key \"interval\" already set on line 2");
    expect_error("[shipper]\nInterval = 5s\ninterval = 6s\n",
                 "3: key \"interval\" already set on line 2");
    expect_error("[shipper]\n[pushgateway]\nurl = http://x\n\n[pushgateway]\n",
                 "5: section [pushgateway] appears twice (first on line 2)");
    expect_error("[shipper]\ninterval = 5s\n[shipper]\ninterval = 6s\n",
                 "3: section [shipper] appears twice (first on line 1)");
    expect_error("[remote_write a]\nurl = http://x\n[remote_write a]\nurl = http://y\n",
                 "3: section [remote_write a] appears twice (first on line 1)");
    expect_error("[remote_write]\nurl = http://x\n[remote_write]\nurl = http://y\n",
                 "3: section [remote_write] appears twice (first on line 1)");
    expect_error("[shipper main]\n", "1: section [shipper] takes no name");
    expect_error("[pushgateway x]\n", "1: section [pushgateway] takes no name");
    expect_error("[remote_write a.b]\n",
                 "1: section name \"a.b\" may only hold letters, digits, '-' and '_'");
    /* the same key in two different sections is fine */
    struct config *c =
        load_ok("[remote_write a]\nurl = http://x\n[remote_write b]\nurl = http://y\n");
    ck_assert_uint_eq(c->n_rw, 2);
    config_free(c);
    /* a missing file */
    struct err e;
    char missing[PATH_MAX + 32];
    snprintf(missing, sizeof missing, "%s/none.conf", tmpdir);
    ck_assert_ptr_null(config_load(missing, &e));
    char want[PATH_MAX * 2 + 80];
    snprintf(want, sizeof want, "%s:0: cannot open %s: No such file or directory", missing,
             missing);
    ck_assert_str_eq(e.msg, want);
}
END_TEST

START_TEST(test_value_errors)
{
    expect_error("[shipper]\ninterval = 5 parsecs\n",
                 "2: interval: \"5 parsecs\" is not a duration (e.g. 30s, 5m, 1h)");
    expect_error("[shipper]\nspool_max_age = -1d\n",
                 "2: spool_max_age: \"-1d\" is not a duration (e.g. 30s, 5m, 1h)");
    expect_error("[shipper]\nspool_max_size = 1 lightyear\n",
                 "2: spool_max_size: \"1 lightyear\" is not a size (e.g. 512MiB, 1GiB)");
    expect_error("[shipper]\nspool_only = maybe\n",
                 "2: spool_only: \"maybe\" is not a boolean (true/false)");
    expect_error("[shipper]\nreplay_rate = -1\n",
                 "2: replay_rate: \"-1\" is not a non-negative integer");
    expect_error("[shipper]\nreplay_rate = 12abc\n",
                 "2: replay_rate: \"12abc\" is not a non-negative integer");
    expect_error_prefix("[shipper]\ndrop_metrics = (unclosed\n",
                        "2: drop_metrics: bad regular expression \"(unclosed\": ");
    expect_error_prefix("[shipper]\nkeep_metrics = a{1\n",
                        "2: keep_metrics: bad regular expression \"a{1\": ");
    expect_error("[remote_write]\nurl = ftp://example.com\n",
                 "2: url: \"ftp://example.com\" is not an http:// or https:// URL");
    expect_error("[nexus]\nurl = nexus:8081\n",
                 "2: url: \"nexus:8081\" is not an http:// or https:// URL");
    expect_error("[shipper]\nlog_format = xml\n", "2: log_format: \"xml\" is not one of text|json");
    expect_error("[shipper]\nlog_level = loud\n",
                 "2: log_level: \"loud\" is not one of debug|info|warning|error");
    expect_error("[certificates]\nendpoints = a:1\nsource = dns\n",
                 "3: source: \"dns\" is not one of tls|nexus");
    expect_error("[shipper]\nexternal_labels = env\n",
                 "2: external_labels: \"env\" is not name=value");
    expect_error("[shipper]\nexternal_labels = env=prod,1x=y\n",
                 "2: external_labels: \"1x\" is not a valid label name=value");
    expect_error("[shipper]\nexternal_labels = __x=y\n",
                 "2: external_labels: \"__x\" is not a valid label name=value");
    {   /* Mimir's HA tracker label is the one reserved name allowed */
        struct config *c = load_ok("[shipper]\nexternal_labels = cluster=eu1,__replica__=s1\n");
        ck_assert_uint_eq(c->shipper.external_labels.n, 2);
        ck_assert_str_eq(c->shipper.external_labels.v[1], "__replica__=s1");
        config_free(c);
    }
    expect_error("[shipper]\nexternal_labels = a=\n",
                 "2: external_labels: \"a\" is not a valid label name=value");
    expect_error("[remote_write]\nurl = http://x\ntimeout = soon\n",
                 "3: timeout: \"soon\" is not a duration (e.g. 30s, 5m, 1h)");
    expect_error("[remote_write]\nurl = http://x\ninsecure_skip_verify = sure\n",
                 "3: insecure_skip_verify: \"sure\" is not a boolean (true/false)");
}
END_TEST

START_TEST(test_semantic_errors)
{
    expect_error("[shipper]\n\n[remote_write]\ntimeout = 5s\n",
                 "3: section [remote_write] needs \"url\"");
    expect_error("[remote_write]\nurl =\n", "2: section [remote_write] needs \"url\"");
    expect_error("[shipper]\n[remote_write ok]\nurl = http://x\n[remote_write b]\n",
                 "4: section [remote_write] needs \"url\"");
    expect_error("[pushgateway]\njob = j\n", "1: section [pushgateway] needs \"url\"");
    expect_error("[shipper]\n[nexus]\nusername = u\n", "2: section [nexus] needs \"url\"");
    expect_error("[certificates]\nsource = tls\n", "1: section [certificates] needs \"endpoints\"");
    expect_error("[certificates]\nendpoints = , ,\n",
                 "2: section [certificates] needs \"endpoints\"");
    expect_error("[shipper]\n[remote_write]\nurl = http://x\nmin_backoff = 10s\nmax_backoff = 1s\n",
                 "4: min_backoff is larger than max_backoff");
    expect_error("[remote_write]\nurl = http://x\nmax_samples_per_send = 0\n",
                 "3: max_samples_per_send must be at least 1");
    expect_error("[remote_write]\nurl = http://x\ncert_file = /dev/null\n",
                 "3: cert_file and key_file go together");
    expect_error("[remote_write]\nurl = http://x\nheaders = X-A 1\n",
                 "3: header \"X-A 1\" is not `Name: value`");
    char text[PATH_MAX * 2];
    char tok[PATH_MAX + 16];
    snprintf(tok, sizeof tok, "%s/token", tmpdir);
    tl_write_file(tok, "t\n", 0600);
    snprintf(text, sizeof text,
             "[remote_write]\nurl = http://x\nbasic_auth_user = u\nbearer_token_file = %s\n", tok);
    expect_error(text, "4: basic_auth_user and bearer_token_file exclude each other");
    struct err e;
    ck_assert_ptr_null(load("[shipper]\ninterval = 500ms\n", &e));
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s:2: [shipper] interval must be at least 1s", cfgpath);
    ck_assert_str_eq(e.msg, want);
}
END_TEST

START_TEST(test_secret_files)
{
    char pw[PATH_MAX + 16], tok[PATH_MAX + 16], np[PATH_MAX + 16];
    snprintf(pw, sizeof pw, "%s/pw", tmpdir);
    snprintf(tok, sizeof tok, "%s/tok", tmpdir);
    snprintf(np, sizeof np, "%s/np", tmpdir);
    tl_write_file(pw, "s3cret\n", 0600);
    tl_write_file(tok, "tok en\r\n\n", 0600);
    tl_write_file(np, "nexus-pw", 0600);
    char text[PATH_MAX * 4];
    snprintf(
        text, sizeof text,
        "[remote_write a]\nurl = http://x\nbasic_auth_user = me\nbasic_auth_password_file = %s\n"
        "[remote_write b]\nurl = http://y\nbearer_token_file = %s\n"
        "[nexus]\nurl = http://n\nusername = u\npassword_file = %s\n",
        pw, tok, np);
    struct config *c = load_ok(text);
    ck_assert_str_eq(c->rw[0]->basic_auth_password_file, pw);
    ck_assert_str_eq(c->rw[0]->basic_auth_password, "s3cret");
    ck_assert_str_eq(c->rw[1]->bearer_token, "tok en");
    ck_assert_str_eq(c->nexus->password, "nexus-pw");
    ck_assert(!c->world_readable_secrets);
    config_free(c);
    /* a secret others can read is flagged */
    ck_assert_int_eq(chmod(tok, 0644), 0);
    c = load_ok(text);
    ck_assert(c->world_readable_secrets);
    config_free(c);
    ck_assert_int_eq(chmod(tok, 0640), 0);
    c = load_ok(text);
    ck_assert(!c->world_readable_secrets);
    config_free(c);
    /* unreadable: missing, or a directory */
    snprintf(text, sizeof text,
             "[shipper]\n\n[remote_write]\nurl = http://x\nbasic_auth_password_file = %s/nope\n",
             tmpdir);
    char want[PATH_MAX * 3];
    snprintf(want, sizeof want,
             "5: basic_auth_password_file: cannot open %s/nope: No such file or directory", tmpdir);
    expect_error(text, want);
    snprintf(text, sizeof text, "[nexus]\nurl = http://x\npassword_file = %s\n", tmpdir);
    snprintf(want, sizeof want, "3: password_file: cannot read %s: Is a directory", tmpdir);
    expect_error(text, want);
}
END_TEST

/* ---- config: every problem, suggestions, files named by the config ------------------ */

START_TEST(test_all_problems)
{
    tl_write_file(cfgpath,
                  "[shipper]\n"
                  "intervall = 30s\n"          /* 2: a typo */
                  "interval = 30\n"            /* 3: no unit */
                  "[remote_write a]\n"         /* 4 */
                  "url = http://x/api/v1/write\n"
                  "remote_timeout = 5s\n"      /* 6: Prometheus's spelling */
                  "cert_file = /nonexistent/c.pem\n" /* 7: missing, and without key_file */
                  "[nexsu]\n"                  /* 8: unknown section, its keys skipped */
                  "url = http://n\n"
                  "[remote_write b]\n"         /* 10: no url */
                  "write_relabel_configs = x\n" /* 11 */
                  "drop_series = {a=~\"(\"}\n", /* 12: bad regex */
                  0600);
    struct strlist p = {0};
    struct err e;
    ck_assert_ptr_null(config_load_all(cfgpath, &p, &e));
    static const char *const want[] = {
        ":2: unknown key \"intervall\" in section [shipper]; did you mean \"interval\"?",
        ":3: interval: \"30\" has no unit: write 30s (or 30ms, 30m)",
        ":6: unknown key \"remote_timeout\" in section [remote_write] (Prometheus's "
        "\"remote_timeout\": this is `timeout`)",
        ":7: cert_file: cannot read /nonexistent/c.pem: No such file or directory",
        ":7: cert_file and key_file go together",
        ":8: unknown section [nexsu]; did you mean [nexus]?",
        ":10: section [remote_write] needs \"url\"",
        ":11: unknown key \"write_relabel_configs\" in section [remote_write] (Prometheus's "
        "\"write_relabel_configs\": use keep_metrics, drop_metrics, keep_series, drop_series and "
        "drop_labels)",
        ":12: drop_series: bad regular expression \"(\" for label a: ",
    };
    ck_assert_uint_eq(p.n, NS_ARRAY_LEN(want));
    for (size_t i = 0; i < p.n; i++) {
        char full[1024];
        snprintf(full, sizeof full, "%s%s", cfgpath, want[i]);
        ck_assert_msg(str_has_prefix(p.v[i], full), "problem %zu: got \"%s\", want \"%s\"", i,
                      p.v[i], full);
    }
    /* config_load: the first one */
    ck_assert_str_eq(e.msg, p.v[0]);
    strv_free(p.v, p.n);
    /* a bare 0 is a duration */
    struct config *c = load_ok("[shipper]\nspool_max_age = 0\n");
    ck_assert_int_eq(c->shipper.spool_max_age_ms, 0);
    config_free(c);
    expect_error("[remote_write]\nurl = http://x\nmin_backoff = 500\n",
                 "3: min_backoff: \"500\" has no unit: write 500s (or 500ms, 500m)");
}
END_TEST

START_TEST(test_headers_and_filters)
{
    struct config *c = load_ok("[remote_write]\n"
                               "url = http://x\n"
                               "headers = X-A: 1\n"
                               "header = X-Tags: a, b,c\n"
                               "header = X-Other:v\n"
                               "keep_metrics = ^nexus_\n"
                               "drop_series = {repository=~\"tmp-.*\", format!=\"maven2\"} or up\n"
                               "drop_labels = instance, blobstore\n");
    struct cfg_remote_write *rw = c->rw[0];
    ck_assert_uint_eq(rw->headers.n, 3);
    ck_assert_str_eq(rw->headers.v[0], "X-A: 1");
    ck_assert_str_eq(rw->headers.v[1], "X-Tags: a, b,c");
    ck_assert_str_eq(rw->headers.v[2], "X-Other:v");
    ck_assert_str_eq(rw->keep_metrics, "^nexus_"); /* the sender builds the relabel */
    ck_assert_uint_eq(rw->drop_labels.n, 2);
    config_free(c);
    expect_error("[remote_write]\nurl = http://x\nheader = no colon\n",
                 "3: header: \"no colon\" is not `Name: value`");
    expect_error("[remote_write]\nurl = http://x\ndrop_labels = a,__name__\n",
                 "3: drop_labels: \"__name__\" is not a label name that can be dropped");
    expect_error_prefix("[remote_write]\nurl = http://x\nkeep_series = {a=\"b\"\n",
                        "3: keep_series: expected ',' or '}' at the end of");
    /* ca_file must be readable; check-config's host checks */
    char text[PATH_MAX * 2];
    snprintf(text, sizeof text, "[nexus]\nurl = http://x\nca_file = %s/ca.pem\n", tmpdir);
    char want[PATH_MAX * 3];
    snprintf(want, sizeof want, "3: ca_file: cannot read %s/ca.pem: No such file or directory",
             tmpdir);
    expect_error(text, want);
    snprintf(text, sizeof text, "[shipper]\nspool_dir = %s/spool/deeper\nstate_dir = %s/f/x\n",
             tmpdir, tmpdir);
    char f[PATH_MAX + 8];
    snprintf(f, sizeof f, "%s/f", tmpdir);
    tl_write_file(f, "a file\n", 0600);
    c = load_ok(text);
    struct strlist p = {0};
    ck_assert_uint_eq(config_check_paths(c, &p), 1);
    snprintf(want, sizeof want, "%s:3: state_dir: cannot use %s/f/x: Not a directory", cfgpath,
             tmpdir);
    ck_assert_str_eq(p.v[0], want);
    strv_free(p.v, p.n);
    config_free(c);
}
END_TEST

/* ---- config: environment ------------------------------------------------------------ */

/* ---- bytes a configuration must not hold (issue 18) ------------------------ */

static void write_bytes(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(path, 0600), 0);
}

static struct config *load_bytes(const char *data, size_t len, struct err *e)
{
    write_bytes(cfgpath, data, len);
    e->msg[0] = '\0';
    return config_load(cfgpath, e);
}

START_TEST(test_control_bytes)
{
    struct err e;
    char want[PATH_MAX + 200];
    /* a NUL used to end the file there: check-config said OK, 0 targets */
    static const char nul[] = "[shipper]\ninterval = 10s\n[remote_write]\nurl = http://x\0y\n"
                              "[remote_write b]\nurl = http://b\n";
    ck_assert_ptr_null(load_bytes(nul, sizeof nul - 1, &e));
    snprintf(want, sizeof want,
             "%s:4: NUL byte at column 15 (a configuration file is text; nothing after it "
             "would be read)",
             cfgpath);
    ck_assert_str_eq(e.msg, want);
    static const char ctl[] = "[shipper]\ninstance = a\033[31mb\n";
    ck_assert_ptr_null(load_bytes(ctl, sizeof ctl - 1, &e));
    snprintf(want, sizeof want,
             "%s:2: control byte 0x1b at column 13 (only tab, CR and LF are allowed)", cfgpath);
    ck_assert_str_eq(e.msg, want);
    static const char del[] = "[shipper]\n\ninstance = a\177\n";
    ck_assert_ptr_null(load_bytes(del, sizeof del - 1, &e));
    snprintf(want, sizeof want,
             "%s:3: control byte 0x7f at column 13 (only tab, CR and LF are allowed)", cfgpath);
    ck_assert_str_eq(e.msg, want);
    /* tab, CRLF: fine */
    static const char ok[] = "[shipper]\r\ninterval\t= 10s\r\n[remote_write]\r\nurl = http://x\r\n";
    struct config *c = load_bytes(ok, sizeof ok - 1, &e);
    ck_assert_msg(c != NULL, "refused: %s", e.msg);
    ck_assert_int_eq(c->shipper.interval_ms, 10000);
    ck_assert_uint_eq(c->n_rw, 1);
    ck_assert_str_eq(c->rw[0]->url, "http://x");
    config_free(c);
    /* ${ENV} and overrides cannot bring them in either */
    setenv("NS_TEST_NL", "a\nX-Injected: 1", 1);
    expect_error("[shipper]\ninstance = ${NS_TEST_NL}\n",
                 "2: instance: the value holds control byte 0x0a (from the environment?)");
    unsetenv("NS_TEST_NL");
    /* a secret file: one line of text */
    char pw[PATH_MAX + 16], text[PATH_MAX * 2];
    snprintf(pw, sizeof pw, "%s/pw", tmpdir);
    snprintf(text, sizeof text, "[nexus]\nurl = http://n\nusername = u\npassword_file = %s\n", pw);
    write_bytes(pw, "pass\0word\n", 10);
    expect_error_prefix(text, "4: password_file: "); /* the key's line, as for any secret file */
    c = load(text, &e);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(e.msg, ": NUL byte at byte 5 (a secret file holds one line of text)"),
                  "%s", e.msg);
    write_bytes(pw, "pass\r\nX-Injected: 1\n", 21);
    c = load(text, &e);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(e.msg, ": line break at byte 5"), "%s", e.msg);
    write_bytes(pw, "password\r\n", 10); /* a trailing CRLF is trimmed */
    c = load_ok(text);
    ck_assert_str_eq(c->nexus->password, "password");
    config_free(c);
}
END_TEST

START_TEST(test_size_minimum)
{
    /* 0 passed check-config, then every batch was dropped */
    expect_error("[shipper]\nspool_max_size = 0\n",
                 "2: spool_max_size: 0 is too small to hold one batch (at least 1KiB)");
    expect_error("[shipper]\nspool_max_size = 1023\n",
                 "2: spool_max_size: 1023 is too small to hold one batch (at least 1KiB)");
    expect_error("[shipper]\nbuffer_max_size = 0\n",
                 "2: buffer_max_size: 0 is too small to hold one batch (at least 1KiB)");
    struct config *c = load_ok("[shipper]\nspool_max_size = 1KiB\n");
    ck_assert_uint_eq(c->shipper.spool_max_size, 1024);
    config_free(c);
    setenv("NEXUS_SHIPPER_SHIPPER_SPOOL_MAX_SIZE", "0", 1);
    struct err e;
    ck_assert_ptr_null(load("[shipper]\n", &e));
    ck_assert_msg(strstr(e.msg, "spool_max_size: 0 is too small to hold one batch"), "%s", e.msg);
    unsetenv("NEXUS_SHIPPER_SHIPPER_SPOOL_MAX_SIZE");
}
END_TEST

START_TEST(test_env_expansion)
{
    setenv("NS_TEST_HOST", "vm.example", 1);
    setenv("NS_TEST_EMPTY", "", 1);
    unsetenv("NS_TEST_UNSET");
    struct config *c = load_ok("[shipper]\n"
                               "instance = ${NS_TEST_HOST}\n"
                               "state_dir = /a/${NS_TEST_UNSET:-fallback}/b\n"
                               "log_file = ${NS_TEST_EMPTY:-was-empty}\n"
                               "spool_dir = /cost/$$5/${NS_TEST_EMPTY}x\n"
                               "[remote_write]\n"
                               "url = http://${NS_TEST_HOST}:8428/api/v1/write\n");
    ck_assert_str_eq(c->shipper.instance, "vm.example");
    ck_assert_str_eq(c->shipper.state_dir, "/a/fallback/b");
    ck_assert_str_eq(c->shipper.log_file, "was-empty");
    ck_assert_str_eq(c->shipper.spool_dir, "/cost/$5/x");
    ck_assert_str_eq(c->rw[0]->url, "http://vm.example:8428/api/v1/write");
    config_free(c);
    expect_error(
        "[shipper]\n\ninstance = ${NS_TEST_UNSET}\n",
        "3: environment variable NS_TEST_UNSET is not set (use ${NS_TEST_UNSET:-default})");
    expect_error("[shipper]\ninstance = ${NS_TEST_HOST\n",
                 "2: unterminated ${ in \"${NS_TEST_HOST\"");
    expect_error("[shipper]\ninstance = a${}b\n", "2: bad variable reference in \"a${}b\"");
    /* expanded values are validated like literal ones */
    setenv("NS_TEST_HOST", "ftp://x", 1);
    expect_error("[remote_write]\nurl = ${NS_TEST_HOST}\n",
                 "2: url: \"ftp://x\" is not an http:// or https:// URL");
}
END_TEST

START_TEST(test_env_overrides)
{
    setenv("NEXUS_SHIPPER_SHIPPER_INTERVAL", "45s", 1);
    setenv("NEXUS_SHIPPER_SHIPPER_EXTERNAL_LABELS", "a=1,b=2", 1);
    setenv("NEXUS_SHIPPER_REMOTE_WRITE_URL", "http://override/api/v1/write", 1);
    setenv("NEXUS_SHIPPER_REMOTE_WRITE_BACKUP_TIMEOUT", "7s", 1);
    setenv("NEXUS_SHIPPER_REMOTE_WRITE_EU_WEST_MAX_SAMPLES_PER_SEND", "99", 1);
    setenv("NEXUS_SHIPPER_PUSHGATEWAY_URL", "http://pg:9091", 1);
    struct config *c = load_ok("[shipper]\ninterval = 10s\n"
                               "[remote_write]\nurl = http://file/api/v1/write\n"
                               "[remote_write backup]\nurl = http://backup\ntimeout = 1s\n"
                               "[remote_write eu-west]\nurl = http://eu\n");
    ck_assert_int_eq(c->shipper.interval_ms, 45000);
    ck_assert_uint_eq(c->shipper.external_labels.n, 2);
    ck_assert_str_eq(c->shipper.external_labels.v[1], "b=2");
    ck_assert_uint_eq(c->n_rw, 3);
    ck_assert_str_eq(c->rw[0]->url, "http://override/api/v1/write");
    ck_assert_int_eq(c->rw[0]->timeout_ms, 30000);
    ck_assert_str_eq(c->rw[1]->name, "backup");
    ck_assert_str_eq(c->rw[1]->url, "http://backup");
    ck_assert_int_eq(c->rw[1]->timeout_ms, 7000);
    ck_assert_int_eq(c->rw[2]->max_samples_per_send, 99);
    ck_assert_int_eq(c->rw[0]->max_samples_per_send, 10000);
    /* [pushgateway] did not exist in the file: created with its defaults */
    ck_assert_ptr_nonnull(c->pushgateway);
    ck_assert_str_eq(c->pushgateway->url, "http://pg:9091");
    ck_assert_str_eq(c->pushgateway->job, "nexus-shipper");
    config_free(c);
    clear_env();

    /* named instances absent from the file are created too */
    setenv("NEXUS_SHIPPER_REMOTE_WRITE_EXTRA_URL", "http://extra/api/v1/write", 1);
    setenv("NEXUS_SHIPPER_REMOTE_WRITE_EXTRA_BASIC_AUTH_USER", "bob", 1);
    setenv("NEXUS_SHIPPER_REMOTE_WRITE_URL", "http://default/api/v1/write", 1);
    c = load_ok("[shipper]\n");
    ck_assert_uint_eq(c->n_rw, 2);
    const struct cfg_remote_write *extra = NULL, *def = NULL;
    for (size_t i = 0; i < c->n_rw; i++) {
        if (strcmp(c->rw[i]->name, "extra") == 0)
            extra = c->rw[i];
        if (strcmp(c->rw[i]->name, "") == 0)
            def = c->rw[i];
    }
    ck_assert_ptr_nonnull(extra);
    ck_assert_ptr_nonnull(def);
    ck_assert_str_eq(extra->url, "http://extra/api/v1/write");
    ck_assert_str_eq(extra->basic_auth_user, "bob");
    ck_assert_int_eq(extra->timeout_ms, 30000);
    ck_assert_str_eq(def->url, "http://default/api/v1/write");
    config_free(c);
    clear_env();

    /* errors name the variable */
    setenv("NEXUS_SHIPPER_BOGUS_THING", "1", 1);
    expect_error("[shipper]\n", "environment NEXUS_SHIPPER_BOGUS_THING: no such configuration key");
    clear_env();
    setenv("NEXUS_SHIPPER_SHIPPER_NOPE", "1", 1);
    expect_error("[shipper]\n",
                 "environment NEXUS_SHIPPER_SHIPPER_NOPE: no such configuration key");
    clear_env();
    setenv("NEXUS_SHIPPER_SHIPPER_INTERVAL", "abc", 1);
    expect_error("[shipper]\n", "environment NEXUS_SHIPPER_SHIPPER_INTERVAL: interval: \"abc\" is "
                                "not a duration (e.g. 30s, 5m, 1h)");
    clear_env();
    setenv("NEXUS_SHIPPER_PUSHGATEWAY_JOB", "j", 1);
    expect_error("[shipper]\n",
                 "environment: section [pushgateway] needs NEXUS_SHIPPER_PUSHGATEWAY_URL");
    clear_env();
    setenv("NEXUS_SHIPPER_REMOTE_WRITE_EXTRA_TIMEOUT", "5s", 1);
    expect_error("[shipper]\n", "environment: section [remote_write extra] needs "
                                "NEXUS_SHIPPER_REMOTE_WRITE_EXTRA_URL");
    clear_env();
    setenv("NEXUS_SHIPPER_NEXUS_URL", "http://n", 1);
    setenv("NEXUS_SHIPPER_NEXUS_PASSWORD_FILE", "/nonexistent/pw", 1);
    expect_error("[shipper]\n",
                 "environment: [nexus] password_file: cannot open /nonexistent/pw: No "
                 "such file or directory");
    clear_env();
    /* an override replaces a bad file value before validation */
    setenv("NEXUS_SHIPPER_REMOTE_WRITE_URL", "http://fixed", 1);
    c = load_ok("[remote_write]\nurl =\n");
    ck_assert_str_eq(c->rw[0]->url, "http://fixed");
    config_free(c);
}
END_TEST

/* ---- config: template ------------------------------------------------------------ */

static const char *const all_keys[][2] = {
    {"shipper", "interval"},
    {"shipper", "instance"},
    {"shipper", "external_labels"},
    {"shipper", "spool_dir"},
    {"shipper", "spool_max_size"},
    {"shipper", "spool_max_age"},
    {"shipper", "spool_only"},
    {"shipper", "replay_rate"},
    {"shipper", "shutdown_timeout"},
    {"shipper", "state_dir"},
    {"shipper", "log_file"},
    {"shipper", "log_level"},
    {"shipper", "log_format"},
    {"shipper", "collector_timeout"},
    {"shipper", "buffer_max_size"},
    {"shipper", "drop_metrics"},
    {"shipper", "keep_metrics"},
    {"remote_write", "url"},
    {"remote_write", "timeout"},
    {"remote_write", "basic_auth_user"},
    {"remote_write", "basic_auth_password_file"},
    {"remote_write", "bearer_token_file"},
    {"remote_write", "tenant"},
    {"remote_write", "ca_file"},
    {"remote_write", "cert_file"},
    {"remote_write", "key_file"},
    {"remote_write", "insecure_skip_verify"},
    {"remote_write", "headers"},
    {"remote_write", "max_samples_per_send"},
    {"remote_write", "min_backoff"},
    {"remote_write", "max_backoff"},
    {"pushgateway", "url"},
    {"pushgateway", "job"},
    {"pushgateway", "timeout"},
    {"pushgateway", "basic_auth_user"},
    {"pushgateway", "basic_auth_password_file"},
    {"pushgateway", "ca_file"},
    {"pushgateway", "insecure_skip_verify"},
    {"nexus", "url"},
    {"nexus", "username"},
    {"nexus", "password_file"},
    {"nexus", "timeout"},
    {"nexus", "ca_file"},
    {"nexus", "insecure_skip_verify"},
    {"certificates", "endpoints"},
    {"gitlab", "url"},
    {"gitlab", "token_file"},
};

__attribute__((noinline)) static char *template_text(void)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    ck_assert_ptr_nonnull(f);
    config_write_template(f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_uint_gt(n, 1000);
    return s;
}

START_TEST(test_template_parses_back)
{
    char *t = template_text();
    /* as written */
    struct config *c = load_ok(t);
    ck_assert_uint_eq(c->n_rw, 1);
    ck_assert_ptr_nonnull(c->nexus);
    ck_assert_int_eq(c->shipper.interval_ms, 30000);
    config_free(c);
    /* every key mentioned, under its own section header */
    for (size_t i = 0; i < NS_ARRAY_LEN(all_keys); i++) {
        char hdr[64];
        snprintf(hdr, sizeof hdr, "[%s]\n", all_keys[i][0]);
        const char *sec = strstr(t, hdr);
        ck_assert_msg(sec != NULL, "no section %s", hdr);
        const char *next = strstr(sec + 1, "\n[");
        const char *next2 = strstr(sec + 1, "\n#[");
        if (!next || (next2 && next2 < next))
            next = next2;
        char k1[80], k2[80];
        snprintf(k1, sizeof k1, "\n%s = ", all_keys[i][1]);
        snprintf(k2, sizeof k2, "\n#%s = ", all_keys[i][1]);
        const char *a = strstr(sec, k1), *b = strstr(sec, k2);
        bool found = (a && (!next || a < next)) || (b && (!next || b < next));
        ck_assert_msg(found, "key %s of [%s] not in the template", all_keys[i][1], all_keys[i][0]);
    }
    /* every section and key uncommented (except secret files, which must
     * exist): all defaults and examples are valid values */
    struct buf all;
    buf_init(&all, 0);
    for (char *line = t; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        bool key_line =
            len > 1 && line[0] == '#' &&
            (line[1] == '[' || (line[1] >= 'a' && line[1] <= 'z' && memchr(line, '=', len)));
        char one[1024];
        snprintf(one, sizeof one, "%.*s", (int)len, line); /* search this line only */
        bool secret = key_line && (strstr(one, "_file = ") || strstr(one, "authfile = ")) &&
                      !strstr(one, "log_file");
        if (key_line && !secret)
            buf_append(&all, line + 1, len - 1);
        else
            buf_append(&all, line, len);
        buf_puts(&all, "\n");
        line = nl ? nl + 1 : NULL;
    }
    c = load_ok(buf_cstr(&all));
    ck_assert_ptr_nonnull(c->pushgateway);
    ck_assert_ptr_nonnull(c->certificates);
    ck_assert_ptr_nonnull(c->gitlab);
    ck_assert(c->has_drop_re);
    ck_assert(c->has_keep_re);
    ck_assert_uint_gt(c->shipper.external_labels.n, 0);
    config_free(c);
    buf_free(&all);
    free(t);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tu = tcase_create("util");
    tcase_add_checked_fixture(tu, setup, teardown);
    tcase_add_test(tu, test_parse_duration);
    tcase_add_test(tu, test_parse_size);
    tcase_add_test(tu, test_parse_bool_int);
    tcase_add_test(tu, test_crc32c);
    tcase_add_test(tu, test_util_helpers);
    tcase_add_test(tu, test_read_file);
    tcase_add_test(tu, test_url_redact);
    suite_add_tcase(s, tu);
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_syntax_errors);
    tcase_add_test(tc, test_value_errors);
    tcase_add_test(tc, test_semantic_errors);
    tcase_add_test(tc, test_secret_files);
    tcase_add_test(tc, test_env_expansion);
    tcase_add_test(tc, test_control_bytes);
    tcase_add_test(tc, test_size_minimum);
    tcase_add_test(tc, test_env_overrides);
    tcase_add_test(tc, test_template_parses_back);
    tcase_add_test(tc, test_all_problems);
    tcase_add_test(tc, test_headers_and_filters);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run(config_suite(), "config");
}
