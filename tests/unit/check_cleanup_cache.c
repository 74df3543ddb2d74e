/* Unit tests for the registry cleanup's digest cache (cleanup_cache.c),
 * the registry name grammar it relies on (skopeo.h: skopeo_valid_*,
 * skopeo_check_reference) and the pure answer parsers of cleanup.h:
 *  - save/load round trip, blobs included; the bound keeps the most
 *    recently used entries; bad lines are skipped and counted; a failed
 *    save leaves the previous file intact;
 *  - hostile names ("../../v2", "a?b", "x y", a 300-character tag, "-flag")
 *    are refused, valid ones accepted;
 *  - a manifest with a hostile digest is refused with the field named. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "cleanup_cache.h"
#include "skopeo.h"
#include "testlib.h"

static void dig(char *out, int i)
{
    snprintf(out, 72, "sha256:%064x", i);
}

START_TEST(test_roundtrip_and_bound)
{
    char dir[] = "/tmp/check_cleanup_cache.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/cache", dir);
    struct cl_cache *c = cl_cache_open(path, 3);
    ck_assert_ptr_nonnull(c);
    char d[72];
    struct cc_blob b[2];
    dig(b[0].digest, 100);
    b[0].size = 10;
    dig(b[1].digest, 101);
    b[1].size = 20;
    for (int i = 0; i < 5; i++) {
        dig(d, i);
        ck_assert_int_eq(cl_cache_put(c, d, 1000 * (i + 1), i == 4 ? b : NULL, i == 4 ? 2 : 0), 0);
    }
    ck_assert_int_eq(cl_cache_put(c, "sha256:../../x", 1, NULL, 0), -1);
    struct err e = {{0}};
    ck_assert_int_eq(cl_cache_save(c, &e), 0);
    cl_cache_free(c);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);

    /* all five share one run stamp: the bound keeps 3 (ties by digest) */
    c = cl_cache_open(path, 3);
    size_t n, skipped;
    uint64_t h, m;
    cl_cache_stats(c, &n, &skipped, &h, &m);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(skipped, 0);
    /* a new run uses entry 4 and 0 only, adds 9: those three survive a bound of 3 */
    dig(d, 4);
    const struct cc_entry *x = cl_cache_get(c, d);
    ck_assert_ptr_null(x); /* 4 was beyond the bound */
    dig(d, 0);
    x = cl_cache_get(c, d);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(x->created_ms, 1000);
    dig(d, 9);
    ck_assert_int_eq(cl_cache_put(c, d, 9000, b, 2), 0);
    dig(d, 1);
    ck_assert_ptr_nonnull(cl_cache_get(c, d));
    ck_assert_int_eq(cl_cache_save(c, &e), 0);
    cl_cache_free(c);

    c = cl_cache_open(path, 10);
    cl_cache_stats(c, &n, &skipped, &h, &m);
    ck_assert_uint_eq(n, 3);
    dig(d, 9);
    x = cl_cache_get(c, d);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(x->created_ms, 9000);
    ck_assert_uint_eq(x->n_blobs, 2);
    ck_assert_str_eq(x->blobs[1].digest, b[1].digest);
    ck_assert_uint_eq(x->blobs[1].size, 20);
    dig(d, 2);
    ck_assert_ptr_null(cl_cache_get(c, d)); /* unused in the last run: evicted */
    cl_cache_free(c);

    /* damaged lines are skipped, the rest is kept */
    FILE *f = fopen(path, "a");
    fprintf(f, "garbage\nsha256:zz 1 1\n%s -5 1\n", d);
    fprintf(f, "sha256:%064x 77 1 sha256:%064x=x\n", 50, 51);
    fprintf(f, "sha256:%064x 5 1", 52); /* no newline: torn */
    fclose(f);
    c = cl_cache_open(path, 10);
    cl_cache_stats(c, &n, &skipped, &h, &m);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(skipped, 5);
    cl_cache_free(c);

    /* a failed save (the temporary file cannot be written: file size
     * limit) keeps the old file and leaves no temporary file */
    c = cl_cache_open(path, 10);
    dig(d, 60);
    cl_cache_put(c, d, 1, NULL, 0);
    struct rlimit rl, small = {.rlim_cur = 16, .rlim_max = RLIM_INFINITY};
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
    small.rlim_max = rl.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    ck_assert_int_eq(cl_cache_save(c, &e), -1);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "cleanup cache"));
    ck_assert_ptr_nonnull(strstr(e.msg, path));
    cl_cache_free(c);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s | grep -v '^cache$')\"", dir);
    ck_assert_int_eq(system(cmd), 0);
    c = cl_cache_open(path, 10);
    cl_cache_stats(c, &n, &skipped, &h, &m);
    ck_assert_uint_eq(n, 3); /* the file as it was, damaged lines and all */
    ck_assert_ptr_null(cl_cache_get(c, d));
    cl_cache_free(c);

    /* memory only: never saved */
    c = cl_cache_open("", 10);
    ck_assert_int_eq(cl_cache_save(c, &e), 0);
    cl_cache_free(c);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_names)
{
    char long_tag[301];
    memset(long_tag, 'a', 300);
    long_tag[300] = '\0';
    const char *bad_repo[] = {"../../v2", "a?b", "x y",  "-flag", "UPPER", "a//b",
                              "a/",       "/a",  "a..b", "a_-b",  "",      long_tag};
    for (size_t i = 0; i < sizeof bad_repo / sizeof bad_repo[0]; i++)
        ck_assert_msg(!skopeo_valid_repository(bad_repo[i]), "repository %s", bad_repo[i]);
    const char *good_repo[] = {"a", "app/oci", "a.b_c__d---e/f0", "library/alpine"};
    for (size_t i = 0; i < sizeof good_repo / sizeof good_repo[0]; i++)
        ck_assert_msg(skopeo_valid_repository(good_repo[i]), "repository %s", good_repo[i]);
    const char *bad_tag[] = {"../x", "a?b", "x y", "-flag", ".x", "a/b", "a:b", "", long_tag};
    for (size_t i = 0; i < sizeof bad_tag / sizeof bad_tag[0]; i++)
        ck_assert_msg(!skopeo_valid_tag(bad_tag[i]), "tag %s", bad_tag[i]);
    long_tag[128] = '\0';
    ck_assert(skopeo_valid_tag(long_tag));
    long_tag[128] = 'a';
    long_tag[129] = '\0';
    ck_assert(!skopeo_valid_tag(long_tag));
    ck_assert(skopeo_valid_tag("V1.0-rc_1"));
    ck_assert(skopeo_valid_digest(
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    ck_assert(!skopeo_valid_digest("sha256:../../x"));
    ck_assert(!skopeo_valid_digest("sha256:0123"));
    ck_assert(!skopeo_valid_digest(
        "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
    ck_assert(skopeo_valid_digest("sha512+b64:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    char why[700];
    ck_assert(!skopeo_check_reference("-flag", why, sizeof why));
    ck_assert_ptr_nonnull(strstr(why, "starts with '-'"));
    ck_assert(!skopeo_check_reference("docker://127.0.0.1:5000/../../v2:x", why, sizeof why));
    ck_assert(!skopeo_check_reference("docker://127.0.0.1:5000/x:a?b", why, sizeof why));
    ck_assert(!skopeo_check_reference("docker://127.0.0.1:5000/x y:v1", why, sizeof why));
    ck_assert(!skopeo_check_reference("docker://h!.x/a:b", why, sizeof why));
    ck_assert(skopeo_check_reference("docker://127.0.0.1:5000/app/x:v1", why, sizeof why));
    ck_assert(
        skopeo_check_reference("docker://[::1]:5000/app/x@sha256:"
                               "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                               why, sizeof why));
    ck_assert(skopeo_check_reference("docker://alpine:3", why, sizeof why));
    ck_assert(skopeo_check_reference("oci:/tmp/x:v1", why, sizeof why));
}
END_TEST

START_TEST(test_parsers)
{
    struct cl_parsed_manifest pm;
    struct err e = {{0}};
    const char *bad =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
        "\"manifests\":[{\"digest\":\"sha256:../../v2\",\"size\":1}]}";
    ck_assert_int_eq(cl_parse_manifest("u", bad, strlen(bad), "", &pm, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "manifests[0]"));
    ck_assert_uint_eq(pm.n_children, 0);
    const char *idx = "{\"manifests\":[{\"digest\":\"sha256:"
                      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
                      "\"size\":7}]}";
    ck_assert_int_eq(cl_parse_manifest("u", idx, strlen(idx), "", &pm, &e), 0);
    ck_assert(pm.is_index);
    ck_assert_uint_eq(pm.n_children, 1);
    ck_assert_uint_eq(pm.child_sizes[0], 7);
    cl_parsed_manifest_free(&pm);
    char **v = NULL;
    size_t n = 0;
    const char *tags = "{\"name\":\"x\",\"tags\":null}";
    ck_assert_int_eq(cl_parse_names("u", tags, strlen(tags), "", "tags", &v, &n, &e), 0);
    ck_assert_uint_eq(n, 0);
    const char *bad_tags = "{\"tags\":[\"a\",7]}";
    ck_assert_int_eq(cl_parse_names("u", bad_tags, strlen(bad_tags), "", "tags", &v, &n, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "\"tags\"[1]"));
    strv_free(v, n);
    int64_t created = -1;
    const char *cfg = "{\"created\":\"1970-01-01T00:00:00Z\"}";
    ck_assert_int_eq(cl_parse_created("u", cfg, strlen(cfg), "", &created, &e), 0);
    ck_assert_int_eq(created, 0);
    char pb[16];
    cl_printable("a\x01\"b\\cdefghijklmnopqrst", pb, sizeof pb);
    ck_assert_str_eq(pb, "a??b?cdefghi...");
}
END_TEST

/* The cache file is written through util's durable writer: a symlink
 * planted at the old predictable temp name ("<path>.tmp") or at the path
 * itself is not followed, and the mode is 0600 whatever the umask. */
START_TEST(test_save_planted_symlink)
{
    char dir[] = "/tmp/check_cleanup_cache.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], tmp[300], victim[300];
    snprintf(path, sizeof path, "%s/cache", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    FILE *f = fopen(victim, "w");
    ck_assert_ptr_nonnull(f);
    fputs("precious\n", f);
    fclose(f);
    ck_assert_int_eq(symlink(victim, tmp), 0);
    struct cl_cache *c = cl_cache_open(path, 3);
    char d[72];
    dig(d, 1);
    ck_assert_int_eq(cl_cache_put(c, d, 1000, NULL, 0), 0);
    struct err e = {{0}};
    mode_t old = umask(0);
    ck_assert_int_eq(cl_cache_save(c, &e), 0);
    umask(old);
    char buf[64] = "";
    f = fopen(victim, "r");
    ck_assert_ptr_nonnull(fgets(buf, sizeof buf, f));
    fclose(f);
    ck_assert_str_eq(buf, "precious\n");
    struct stat st;
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* a symlink at the path itself is replaced, not followed */
    unlink(path);
    ck_assert_int_eq(symlink(victim, path), 0);
    ck_assert_int_eq(cl_cache_save(c, &e), 0);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    f = fopen(victim, "r");
    ck_assert_ptr_nonnull(fgets(buf, sizeof buf, f));
    fclose(f);
    ck_assert_str_eq(buf, "precious\n");
    cl_cache_free(c);
    unlink(path);
    unlink(tmp);
    unlink(victim);
    rmdir(dir);
}
END_TEST

static Suite *cache_suite(void)
{
    Suite *s = suite_create("cleanup_cache");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_roundtrip_and_bound);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_parsers);
    tcase_add_test(tc, test_save_planted_symlink);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run(cache_suite(), "cleanup_cache");
}
