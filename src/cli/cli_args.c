#include "cli_args.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup_cli.h"
#include "exitcodes.h"
#include "skopeo_cli.h"
#include "spool_cli.h"

struct cli_opt {
    const char *name; /* "--long-name" */
    char shrt;        /* short letter, 0 = none */
    bool arg;         /* takes a value */
};

struct cli_cmd {
    const char *name;           /* first word */
    const char *word;           /* second word (spool ls), NULL = none */
    const char *const *usage;   /* help text */
    const struct cli_opt *opts; /* terminated by {NULL} */
    int min_pos, max_pos;       /* positional arguments after the word(s) */
    bool passthrough;           /* arguments after "--" go to the handler */
};

static const char *const main_usage =
    "Usage: nexus-shipper [-c FILE] COMMAND [ARGS]\n"
    "\n"
    "Ships Sonatype Nexus and Docker registry metrics to Prometheus remote-write\n"
    "receivers and Pushgateways, spooling to disk whatever cannot be delivered.\n"
    "\n"
    "Commands:\n"
    "  run                   the daemon: collect every interval, ship, spool, replay\n"
    "  once [--dry-run] [--pushgateway] [--allow-partial]\n"
    "                        one collection and delivery, then exit; --dry-run prints\n"
    "                        the Prometheus text format and sends nothing\n"
    "  check-config          validate the configuration (every problem as FILE:LINE: message)\n"
    "  config-template       print the annotated default configuration\n"
    "  spool ls|replay|export|import|purge   inspect and move the spool (spool --help)\n"
    "  skopeo copy|inspect|delete|manifest-digest   the skopeo wrapper (skopeo --help)\n"
    "  healthcheck           exit 0 if the running daemon's /healthz answers 200\n"
    "  cleanup [--dry-run] [--json] [--legacy-json config.json]\n"
    "                        registry cleanup run (cleanup --help)\n"
    "  version               print the version\n"
    "  help [COMMAND]        this help, or a command's\n"
    "\n"
    "Options (before or after the command):\n"
    "  -c, --config FILE     configuration file (default /etc/nexus-shipper/nexus-shipper.conf,\n"
    "                        then ./nexus-shipper.conf)\n"
    "  -h, --help            this help; COMMAND --help for a command's own\n"
    "\n"
    "Exit codes: 0 success; 1 runtime failure (nothing could be delivered or spooled);\n"
    "2 usage or configuration error (nothing was started).\n"
    "Environment: NEXUS_SHIPPER_<SECTION>_<KEY> overrides any key; DEBUG=true logs debug.\n";

static const char *const run_usage =
    "Usage: nexus-shipper [-c FILE] run\n"
    "The daemon: collects every `interval`, writes each batch to the spool and\n"
    "delivers it; replays the spool (at `replay_rate`) after an outage.\n"
    "Signals: SIGTERM/SIGINT deliver what is buffered within shutdown_timeout and\n"
    "exit 0; SIGHUP reloads the configuration (an invalid one keeps the old);\n"
    "SIGUSR1 reopens log_file.\n"
    "With [shipper] listen set, serves /metrics and /healthz. Under systemd\n"
    "(Type=notify) sends READY=1, WATCHDOG=1 every cycle and STOPPING=1.\n"
    "Exit 0 after a stop; 1 when it cannot start; 2 on a usage or configuration error.\n";

static const char *const once_usage =
    "Usage: nexus-shipper [-c FILE] once [--dry-run] [--pushgateway] [--allow-partial]\n"
    "Runs every collector once and delivers the samples to every remote_write\n"
    "target (and what is left in the spool), then exits. Prints one line per\n"
    "collector (ok with its series, or FAILED with the reason) and per target\n"
    "(HTTP status, batches delivered and left in the spool).\n"
    "  --dry-run        print the samples in Prometheus text format, send nothing\n"
    "  --pushgateway    push to [pushgateway] (PUT job/<job>/instance/<instance>)\n"
    "                   instead of remote-write\n"
    "  --allow-partial  exit 0 even when a collector failed\n"
    "When a daemon ships from the same spool, once does not send (it would be a\n"
    "second writer of every series): it wakes the daemon for a cycle now.\n"
    "Exit 0 when every collector worked and the batch was delivered or safely\n"
    "spooled; 1 when a collector failed (unless --allow-partial) or a batch was\n"
    "neither delivered nor spooled; 2 on a usage or configuration error.\n";

static const char *const check_config_usage =
    "Usage: nexus-shipper [-c FILE] check-config [--syntax-only]\n"
    "Validates the configuration file and the environment overrides: every problem\n"
    "is printed as FILE:LINE: message (at the line of the key concerned), with a\n"
    "suggestion for a misspelt key. Also checks that the files it names (ca_file,\n"
    "cert_file, key_file, *_file secrets) are readable and that spool_dir and\n"
    "state_dir can be created and written and log_file written, as the user running\n"
    "check-config (--syntax-only skips these directory checks, e.g. in CI).\n"
    "Exit 0 when valid; otherwise 2.\n";

static const char *const template_usage =
    "Usage: nexus-shipper config-template\n"
    "Prints the annotated default configuration (every key, its default and help):\n"
    "  nexus-shipper config-template > /etc/nexus-shipper/nexus-shipper.conf\n";

static const char *const manpage_usage =
    "Usage: nexus-shipper config-manpage\n"
    "Prints nexus-shipper.conf(5) in roff, generated from the configuration table.\n";

static const char *const version_usage =
    "Usage: nexus-shipper version\n"
    "Prints the version of nexus-shipper and of the libcurl it runs with.\n";

static const char *const help_usage = "Usage: nexus-shipper help [COMMAND]\n"
                                      "Prints the program's help, or COMMAND's.\n";

static const char *const healthcheck_usage =
    "Usage: nexus-shipper [-c FILE] healthcheck [--url URL] [--timeout SECONDS]\n"
    "                                       [--max-delivery-age DURATION]\n"
    "GETs /healthz of the running daemon at [shipper] listen (for a container\n"
    "HEALTHCHECK; no curl needed) and prints its answer.\n"
    "  --url URL                   the /healthz URL instead of the configured listen\n"
    "  --timeout SECONDS           time allowed for the request (default 5)\n"
    "  --max-delivery-age DURATION unhealthy when no remote-write target (spool-only ones\n"
    "                              do not count) has delivered for this long (e.g. 10m);\n"
    "                              before the first delivery, measured from the daemon's\n"
    "                              start. Make it several intervals.\n"
    "Exit 0 healthy, 1 unhealthy or unreachable, 2 usage or configuration error.\n";

static const struct cli_opt no_opts[] = {{NULL, 0, false}};
static const struct cli_opt check_config_opts[] = {{"--syntax-only", 0, false}, {NULL, 0, false}};
static const struct cli_opt once_opts[] = {{"--dry-run", 0, false},
                                           {"--pushgateway", 0, false},
                                           {"--allow-partial", 0, false},
                                           {NULL, 0, false}};
static const struct cli_opt healthcheck_opts[] = {
    {"--url", 0, true}, {"--timeout", 0, true}, {"--max-delivery-age", 0, true}, {NULL, 0, false}};
static const struct cli_opt cleanup_opts[] = {{"--dry-run", 0, false},
                                              {"--json", 0, false},
                                              {"--no-gc", 0, false},
                                              {"--no-cache", 0, false},
                                              {"--legacy-json", 0, true},
                                              {"--max-deletions", 0, true},
                                              {"--concurrency", 0, true},
                                              {"--include", 0, true},
                                              {"--exclude", 0, true},
                                              {"--gc-command", 0, true},
                                              {"--pre-gc-command", 0, true},
                                              {"--post-gc-command", 0, true},
                                              {"--container", 0, true},
                                              {"--registry-config", 0, true},
                                              {"--storage-path", 0, true},
                                              {"--log-file", 0, true},
                                              {NULL, 0, false}};
static const struct cli_opt skopeo_opts[] = {
    {"--progress", 0, false},   {"--json", 0, false},      {"--raw", 0, false},
    {"--no-metrics", 0, false}, {"--from-file", 0, true},  {"--metrics-file", 0, true},
    {"--timeout", 0, true},     {"--kill-grace", 0, true}, {"--tls-verify", 0, true},
    {"--authfile", 0, true},    {"--parallel", 0, true},   {NULL, 0, false}};
static const struct cli_opt spool_ls_opts[] = {{"--verbose", 'v', false}, {NULL, 0, false}};
static const struct cli_opt spool_replay_opts[] = {
    {"--url", 0, true}, {"--target", 0, true}, {"--rate", 0, true}, {NULL, 0, false}};
static const struct cli_opt spool_export_opts[] = {
    {"--to", 0, true}, {"--target", 0, true}, {NULL, 0, false}};
static const struct cli_opt spool_purge_opts[] = {
    {"--target", 0, true}, {"--quarantine", 0, false}, {NULL, 0, false}};

static const struct cli_cmd table[] = {
    {"run", NULL, &run_usage, no_opts, 0, 0, false},
    {"once", NULL, &once_usage, once_opts, 0, 0, false},
    {"check-config", NULL, &check_config_usage, check_config_opts, 0, 0, false},
    {"config-template", NULL, &template_usage, no_opts, 0, 0, false},
    {"config-manpage", NULL, &manpage_usage, no_opts, 0, 0, false},
    {"version", NULL, &version_usage, no_opts, 0, 0, false},
    {"help", NULL, &help_usage, no_opts, 0, 1, false},
    {"healthcheck", NULL, &healthcheck_usage, healthcheck_opts, 0, 0, false},
    {"cleanup", NULL, &cleanup_cli_usage, cleanup_opts, 0, 0, false},
    {"skopeo", NULL, &skopeo_cli_usage, skopeo_opts, 0, 3, true},
    {"spool", "ls", &spool_cli_usage, spool_ls_opts, 0, 0, false},
    {"spool", "replay", &spool_cli_usage, spool_replay_opts, 0, 0, false},
    {"spool", "export", &spool_cli_usage, spool_export_opts, 0, 0, false},
    {"spool", "import", &spool_cli_usage, no_opts, 1, 1, false},
    {"spool", "purge", &spool_cli_usage, spool_purge_opts, 0, 0, false},
};

#define N_TABLE (sizeof table / sizeof table[0])

const char *cli_usage(const char *command)
{
    for (size_t i = 0; command && i < N_TABLE; i++)
        if (strcmp(table[i].name, command) == 0)
            return *table[i].usage;
    return main_usage;
}

static bool is_global_config(const char *a, const char **inline_val)
{
    *inline_val = NULL;
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
        return true;
    if (strncmp(a, "--config=", 9) == 0) {
        *inline_val = a + 9;
        return true;
    }
    if (strncmp(a, "-c", 2) == 0 && a[2]) {
        *inline_val = a + 2;
        return true;
    }
    return false;
}

/* Does option argument `a` take the next argument as its value, for any
 * row of command `name`? (Finding the second word of `spool -c F ls`.) */
static bool takes_value(const char *name, const char *a)
{
    const char *iv;
    if (is_global_config(a, &iv))
        return iv == NULL;
    if (strncmp(a, "--", 2) != 0 || strchr(a, '='))
        return false;
    for (size_t i = 0; i < N_TABLE; i++) {
        if (strcmp(table[i].name, name) != 0)
            continue;
        for (const struct cli_opt *o = table[i].opts; o->name; o++)
            if (strcmp(o->name, a) == 0)
                return o->arg;
    }
    return false;
}

static void usage_error(FILE *err, const char *cmd, const char *usage, const char *what)
{
    fprintf(err, "nexus-shipper%s%s: %s\n\n%s", cmd ? " " : "", cmd ? cmd : "", what, usage);
}

int cli_parse(int argc, char **argv, FILE *out, FILE *err, struct cli *c)
{
    memset(c, 0, sizeof *c);
    bool help = false;
    int i = 1;
    /* global options before the command */
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i], *iv;
        if (is_global_config(a, &iv)) {
            if (!iv && i + 1 >= argc) {
                usage_error(err, NULL, main_usage, "-c/--config needs a FILE");
                goto usage;
            }
            c->config = iv ? iv : argv[++i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help = true;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            c->command = "version";
        } else {
            char what[160];
            snprintf(what, sizeof what, "unknown option %s", a);
            usage_error(err, NULL, main_usage, what);
            goto usage;
        }
    }
    if (i >= argc) {
        if (c->command) /* --version */
            goto build_plain;
        if (help) {
            fputs(main_usage, out);
            c->done = true;
            c->exit_code = EXIT_OK;
            return 0;
        }
        fputs(main_usage, err);
        goto usage;
    }
    c->command = argv[i++];
    const char *name = c->command;
    bool known = false, worded = false;
    for (size_t t = 0; t < N_TABLE; t++)
        if (strcmp(table[t].name, name) == 0) {
            known = true;
            worded = table[t].word != NULL;
        }
    if (!known) {
        fprintf(err, "nexus-shipper: unknown command \"%s\"\n\n%s", name, main_usage);
        goto usage;
    }
    /* the second word (spool ls): the first argument that is not an option */
    int word_at = -1;
    if (worded) {
        for (int j = i; j < argc; j++) {
            if (strcmp(argv[j], "--") == 0)
                break;
            if (argv[j][0] == '-' && argv[j][1]) {
                if (strcmp(argv[j], "-h") == 0 || strcmp(argv[j], "--help") == 0)
                    help = true;
                if (takes_value(name, argv[j]))
                    j++;
                continue;
            }
            word_at = j;
            break;
        }
    }
    const struct cli_cmd *cmd = NULL;
    for (size_t t = 0; t < N_TABLE && !cmd; t++)
        if (strcmp(table[t].name, name) == 0 &&
            (!table[t].word || (word_at >= 0 && strcmp(table[t].word, argv[word_at]) == 0)))
            cmd = &table[t];
    const char *usage = cli_usage(name);
    if (!cmd) {
        if (help) {
            fputs(usage, out);
            c->done = true;
            c->exit_code = EXIT_OK;
            return 0;
        }
        char what[160] = "which command?";
        if (word_at >= 0)
            snprintf(what, sizeof what, "unknown command \"%s\"", argv[word_at]);
        usage_error(err, name, usage, what);
        goto usage;
    }

    /* getopt_long over the rest (without the second word), in order */
    size_t nopt = 0;
    while (cmd->opts[nopt].name)
        nopt++;
    int nargs = argc - i - (word_at >= 0 ? 1 : 0);
    char **args = calloc((size_t)nargs + 2, sizeof *args);
    struct option *lo = calloc(nopt + 3, sizeof *lo);
    char *shortopts = malloc(2 * nopt + 8);
    /* at most: words, every argument, a "--name" per "--name=value" */
    c->argv = calloc(2 * (size_t)argc + 4, sizeof *c->argv);
    char **pos = calloc((size_t)nargs + 2, sizeof *pos);
    int *optk = calloc((size_t)nargs + 2, sizeof *optk); /* option indices, in order */
    char **optval = calloc((size_t)nargs + 2, sizeof *optval);
    int rc = 0;
    if (!args || !lo || !shortopts || !c->argv || !pos || !optk || !optval) {
        free(c->argv);
        c->argv = NULL;
        fputs("nexus-shipper: out of memory\n", err);
        rc = -1;
        goto out;
    }
    int na = 0;
    args[na++] = argv[0];
    for (int j = i; j < argc; j++)
        if (j != word_at)
            args[na++] = argv[j];
    char *sp = shortopts;
    *sp++ = '-'; /* non-options returned in order, as option 1 */
    *sp++ = ':'; /* a missing value returns ':' */
    *sp++ = 'c';
    *sp++ = ':';
    *sp++ = 'h';
    for (size_t k = 0; k < nopt; k++) {
        lo[k] =
            (struct option){cmd->opts[k].name + 2,
                            cmd->opts[k].arg ? required_argument : no_argument, NULL, 256 + (int)k};
        if (cmd->opts[k].shrt) {
            *sp++ = cmd->opts[k].shrt;
            if (cmd->opts[k].arg)
                *sp++ = ':';
        }
    }
    *sp = '\0';
    lo[nopt] = (struct option){"config", required_argument, NULL, 'c'};
    lo[nopt + 1] = (struct option){"help", no_argument, NULL, 'h'};

    int npos = 0, noptv = 0;
    bool bad = false;
    char what[160] = "";
    opterr = 0;
    optind = 0; /* full re-initialisation (glibc) */
    int ch;
    while (!bad && (ch = getopt_long(na, args, shortopts, lo, NULL)) != -1) {
        if (ch == 1) {
            pos[npos++] = optarg;
        } else if (ch == 'c') {
            c->config = optarg;
        } else if (ch == 'h') {
            help = true;
        } else if (ch >= 256) {
            optk[noptv] = ch - 256;
            optval[noptv++] = optarg;
        } else if (ch == ':') {
            snprintf(what, sizeof what, "%s needs a value", args[optind - 1]);
            bad = true;
        } else if (ch == '?') {
            if (optopt && optopt < 256)
                snprintf(what, sizeof what, "unknown option -%c", optopt);
            else
                snprintf(what, sizeof what, "unknown option %s", args[optind - 1]);
            bad = true;
        } else { /* a short letter of the table */
            for (size_t k = 0; k < nopt; k++)
                if (cmd->opts[k].shrt == ch) {
                    optk[noptv] = (int)k;
                    optval[noptv++] = optarg;
                }
        }
    }
    int rest = optind; /* after "--" */
    if (!bad && !cmd->passthrough)
        for (; rest < na; rest++)
            pos[npos++] = args[rest];
    if (!bad && !help && (npos < cmd->min_pos || npos > cmd->max_pos)) {
        if (cmd->max_pos == 0)
            snprintf(what, sizeof what, "unexpected argument \"%s\"", pos[0]);
        else if (npos > cmd->max_pos)
            snprintf(what, sizeof what, "too many arguments (at most %d)", cmd->max_pos);
        else
            snprintf(what, sizeof what, "missing argument");
        bad = true;
    }
    if (help || bad) {
        if (help) {
            fputs(usage, out);
            c->exit_code = EXIT_OK;
        } else {
            char full[64];
            snprintf(full, sizeof full, "%s%s%s", name, cmd->word ? " " : "",
                     cmd->word ? cmd->word : "");
            usage_error(err, full, usage, what);
            c->exit_code = EXIT_USAGE;
        }
        c->done = true;
        free(c->argv);
        c->argv = NULL;
        goto out;
    }
    /* the normalized argv */
    int n = 0;
    c->argv[n++] = (char *)name;
    if (cmd->word)
        c->argv[n++] = (char *)cmd->word;
    for (int k = 0; k < npos; k++)
        c->argv[n++] = pos[k];
    for (int k = 0; k < noptv; k++) {
        c->argv[n++] = (char *)cmd->opts[optk[k]].name;
        if (cmd->opts[optk[k]].arg)
            c->argv[n++] = optval[k];
    }
    if (cmd->passthrough && rest < na) {
        c->argv[n++] = "--";
        for (; rest < na; rest++)
            c->argv[n++] = args[rest];
    }
    c->argc = n;
out:
    free(pos);
    free(optk);
    free(optval);
    free(args);
    free(lo);
    free(shortopts);
    return rc;

build_plain:
    c->argv = calloc(2, sizeof *c->argv);
    if (!c->argv) {
        fputs("nexus-shipper: out of memory\n", err);
        return -1;
    }
    c->argv[0] = (char *)c->command;
    c->argc = 1;
    return 0;
usage:
    c->done = true;
    c->exit_code = EXIT_USAGE;
    c->command = NULL;
    return 0;
}

void cli_free(struct cli *c)
{
    if (!c)
        return;
    free(c->argv);
    c->argv = NULL;
    c->argc = 0;
}
