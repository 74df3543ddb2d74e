/* testlib: the fixtures the Check programs share (see testlib.h). */
#include "testlib.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "config.h"
#include "util.h"

char basedir[64];
char tmpdir[PATH_MAX];

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

int tl_rm_tree(const char *path)
{
    return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

void tl_tmpdir_setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/t-XXXXXX", basedir);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

void tl_tmpdir_teardown(void)
{
    tl_rm_tree(tmpdir);
}

void tl_write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(path, mode), 0);
}

struct config *tl_load_config(const char *path, const char *text)
{
    tl_write_file(path, text, 0600);
    struct err e;
    e.msg[0] = '\0';
    struct config *c = config_load(path, &e);
    ck_assert_msg(c != NULL, "%s", e.msg);
    return c;
}

int tl_run(Suite *suite, const char *name)
{
    snprintf(basedir, sizeof basedir, "/tmp/ns-check-%s-XXXXXX", name);
    if (!mkdtemp(basedir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (tl_rm_tree(basedir) != 0)
        perror(basedir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
