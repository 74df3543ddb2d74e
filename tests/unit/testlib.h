/* testlib: the fixtures the Check programs (tests/unit/check_*.c) share.
 *
 * Directories: tl_run() makes one base directory per program,
 * /tmp/ns-check-NAME-XXXXXX, runs the suite and removes the directory
 * with everything in it at the end, even when a test failed (in Check's
 * fork mode a failing test exits its child before the teardown runs).
 * tl_tmpdir_setup() / tl_tmpdir_teardown(), a checked fixture, give every
 * test a fresh directory inside it, `tmpdir`. Programs that need more per
 * test call tl_tmpdir_setup() from their own setup.
 *
 * Files: tl_write_file() writes a text file and sets its mode;
 * tl_load_config() writes a configuration and loads it, failing the test
 * (with config_load's message) when it is refused; the caller frees the
 * configuration with config_free().
 *
 * Errors: every helper that runs inside a test fails the test with
 * ck_assert on an error; tl_run() prints the error and returns
 * EXIT_FAILURE. Nothing here allocates what the caller must free, apart
 * from tl_load_config()'s configuration.
 */
#ifndef NS_TESTLIB_H
#define NS_TESTLIB_H

#include <check.h>
#include <limits.h>
#include <sys/types.h>

struct config;

/* The program's base directory (set by tl_run) and this test's directory
 * (set by tl_tmpdir_setup). */
extern char basedir[64];
extern char tmpdir[PATH_MAX];

/* Removes PATH and everything below it (no symlink is followed);
 * 0, or -1 with errno set. */
int tl_rm_tree(const char *path);

/* A fresh `tmpdir` inside `basedir`; removes it again. */
void tl_tmpdir_setup(void);
void tl_tmpdir_teardown(void);

/* Writes TEXT to PATH (replacing it) and chmods it to MODE. */
void tl_write_file(const char *path, const char *text, mode_t mode);

/* Writes TEXT to PATH (mode 0600) and returns config_load(PATH). */
struct config *tl_load_config(const char *path, const char *text);

/* Makes `basedir` (/tmp/ns-check-NAME-XXXXXX), runs SUITE (CK_NORMAL),
 * removes `basedir`; EXIT_SUCCESS when every test passed. Frees SUITE. */
int tl_run(Suite *suite, const char *name);

#endif
