/* cli_args: the command line of every subcommand, from one table.
 *
 * Each command ("run", "once", "spool replay", "skopeo", ...) declares in
 * the table in cli_args.c its options (long name, optional short letter,
 * whether it takes a value), how many positional arguments it takes, and
 * its usage text. cli_parse() reads the whole process argv:
 *
 *   nexus-shipper [GLOBAL] COMMAND [WORD] [ARGS and OPTIONS in any order] [-- PASSTHROUGH]
 *
 * with getopt_long in argument order, so options go before or after the
 * positional arguments, and the global -c/--config FILE and -h/--help are
 * accepted anywhere before a "--" (a later -c wins). -V/--version before
 * the command is the command "version". `--name=value`,
 * `--name value` and unambiguous abbreviations of long names work.
 *
 * On success the command's handler gets a normalized argv: the command
 * word(s), the positional arguments, each option as "--name" or "--name"
 * "value" in the order given, then "--" and the passthrough arguments
 * (only for commands that take them: skopeo). Handlers never see an
 * option the table does not declare, nor -c/-h. A new option of any
 * command is one row here plus its handling in the handler.
 *
 * Errors: an unknown option, a missing value, a wrong number of
 * positional arguments or an unknown command print "nexus-shipper CMD:
 * what" and that command's usage on stderr; exit code EXIT_USAGE.
 * --help prints the usage on stdout; exit code EXIT_OK.
 *
 * Ownership: struct cli borrows the strings of the process argv; cli_free()
 * frees the normalized array. */
#ifndef NS_CLI_ARGS_H
#define NS_CLI_ARGS_H

#include <stdbool.h>
#include <stdio.h>

struct cli_cmd; /* a row of the table */

struct cli {
    const char *command; /* "run", "spool", "skopeo", ... (NULL: exit with exit_code) */
    const char *config;  /* -c/--config FILE, NULL when not given */
    int argc;            /* the normalized argv for the handler */
    char **argv;
    bool done;     /* nothing to run: help was printed or a usage error reported */
    int exit_code; /* when done */
};

/* Parses argv (argv[0] = program name). Returns 0 with c->done false: run
 * c->command with c->argc/c->argv; or 0 with c->done set: exit with
 * c->exit_code (help printed: 0; usage error reported: 2). -1 on out of
 * memory (message printed, exit 1). Messages go to `out` (help) and `err`. */
int cli_parse(int argc, char **argv, FILE *out, FILE *err, struct cli *c);
void cli_free(struct cli *c);

/* The usage text of a command ("spool", "once", ...) or of the program
 * (NULL or an unknown name). */
const char *cli_usage(const char *command);

#endif
