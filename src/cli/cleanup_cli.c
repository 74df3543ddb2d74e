/* `nexus-shipper cleanup`: options, the seed's config.json (--legacy-json),
 * the run lock, the counters kept across runs, and the run's metrics
 * pushed to [pushgateway] (and remote-written) through the sender, so a
 * push that fails is spooled like any other batch. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cleanup.h"
#include "cleanup_cli.h"
#include "cleanup_metrics.h"
#include "config.h"
#include "log.h"
#include "ship.h"
#include "series.h"

#include "exitcodes.h"

#define SEED_GC_COMMAND "docker exec {container} registry garbage-collect {config}"

static const char cleanup_usage[] =
    "Usage: nexus-shipper [-c FILE] cleanup [--dry-run] [--json] [--legacy-json config.json]\n"
    "                                        [OPTIONS]\n"
    "Deletes old tags from a Docker registry ([cleanup] section): a manifest is deleted\n"
    "only when every tag pointing at it is deletable; multi-arch indexes only as a whole.\n"
    "  --dry-run             print the plan, change nothing\n"
    "  --json                print the plan/result as one JSON document\n"
    "  --legacy-json FILE    read the rules from the old clean-registry.py config.json\n"
    "                        (registry url/user/password/container, cleanup days_to_keep/\n"
    "                        protected_tags/protected_patterns, paths config/host_storage);\n"
    "                        -c FILE is then optional ([shipper], [pushgateway])\n"
    "  --max-deletions N     abort before deleting anything when the plan deletes more\n"
    "                        than N manifests (0 = no limit)\n"
    "  --concurrency N       parallel registry requests (default 4)\n"
    "  --include REGEX       only repositories matching REGEX\n"
    "  --exclude REGEX       skip repositories matching REGEX\n"
    "  --gc-command CMD      garbage collection after deleting (argv split on blanks, no\n"
    "                        shell; {container} {config} {storage} substituted);\n"
    "                        default none (--legacy-json: \"" SEED_GC_COMMAND "\")\n"
    "  --pre-gc-command CMD / --post-gc-command CMD   around the GC (read-only/restart)\n"
    "  --no-gc               no garbage collection\n"
    "  --container NAME / --registry-config PATH      the {container} / {config} values\n"
    "  --storage-path DIR    registry storage on this host: du before/after the GC\n"
    "  --no-cache            neither read nor write the digest cache (STATE_DIR/\n"
    "                        cleanup-cache: config blob dates and index children, which\n"
    "                        never change, so later runs need one request per tag)\n"
    "  --log-file FILE       also log to FILE (default /var/log/nexus-shipper/cleanup.log\n"
    "                        when writable)\n"
    "Exit 0 success; 1 runtime failure (errors, deletion disabled in the registry,\n"
    "max_deletions exceeded, another run holds the lock); 2 usage or configuration error.\n";

const char *const cleanup_cli_usage = cleanup_usage;

/* ---- --legacy-json ---------------------------------------------------- */

struct legacy {
    struct cfg_cleanup cc;
    char *strings[10];
    size_t n_strings;
    char *container, *registry_config, *storage_path;
};

static char *keep_str(struct legacy *l, const char *s)
{
    if (l->n_strings >= NS_ARRAY_LEN(l->strings))
        return NULL;
    char *d = strdup(s ? s : "");
    if (d)
        l->strings[l->n_strings++] = d;
    return d;
}

static void legacy_free(struct legacy *l)
{
    for (size_t i = 0; i < l->n_strings; i++)
        free(l->strings[i]);
    strv_free(l->cc.protected_tags.v, l->cc.protected_tags.n);
    strv_free(l->cc.protected_patterns.v, l->cc.protected_patterns.n);
}

static int legacy_list(json_object *o, const char *key, struct strlist *out, const char *file,
                       struct err *e)
{
    json_object *a;
    if (!json_object_object_get_ex(o, key, &a))
        return 0;
    if (!json_object_is_type(a, json_type_array)) {
        err_set(e, "%s: cleanup.%s: expected a list of strings", file, key);
        return -1;
    }
    size_t n = json_object_array_length(a);
    char **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(a, i);
        if (!json_object_is_type(s, json_type_string) ||
            !(v[i] = strdup(json_object_get_string(s)))) {
            strv_free(v, n);
            err_set(e, "%s: cleanup.%s[%zu]: expected a string", file, key, i);
            return -1;
        }
    }
    strv_free(out->v, out->n);
    out->v = v;
    out->n = n;
    return 0;
}

static const char *legacy_string(json_object *o, const char *key)
{
    json_object *s;
    if (o && json_object_object_get_ex(o, key, &s) && json_object_is_type(s, json_type_string))
        return json_object_get_string(s);
    return NULL;
}

/* Reads the seed's config.json. `base` (may be NULL) gives the values of
 * keys the file does not have (keep_last, protected_regex, ...). */
static int legacy_load(const char *file, const struct cfg_cleanup *base, struct legacy *l,
                       struct err *e)
{
    memset(l, 0, sizeof *l);
    json_object *j = json_object_from_file(file);
    if (!j) {
        err_set(e, "%s: cannot read or parse: %s", file, json_util_get_last_err());
        return -1;
    }
    int rc = -1;
    if (base) {
        l->cc.days_to_keep = base->days_to_keep;
        l->cc.keep_last = base->keep_last;
        l->cc.keep_unknown_dates = base->keep_unknown_dates;
        l->cc.protected_regex = keep_str(l, base->protected_regex);
        l->cc.token_realm_hosts = base->token_realm_hosts; /* borrowed: not freed here */
    } else {
        l->cc.days_to_keep = 30;
        l->cc.keep_unknown_dates = true;
        l->cc.protected_regex = keep_str(l, "");
    }
    json_object *reg = NULL, *cl = NULL, *paths = NULL, *v;
    json_object_object_get_ex(j, "registry", &reg);
    json_object_object_get_ex(j, "cleanup", &cl);
    json_object_object_get_ex(j, "paths", &paths);
    if (!reg || !legacy_string(reg, "url")) {
        err_set(e, "%s: registry.url is missing", file);
        goto out;
    }
    l->cc.registry_url = keep_str(l, legacy_string(reg, "url"));
    l->cc.username = keep_str(l, legacy_string(reg, "user"));
    l->cc.password = keep_str(l, legacy_string(reg, "password"));
    l->container =
        keep_str(l, legacy_string(reg, "container") ? legacy_string(reg, "container") : "registry");
    l->registry_config =
        keep_str(l, legacy_string(paths, "config") ? legacy_string(paths, "config")
                                                   : "/etc/distribution/config.yml");
    l->storage_path = keep_str(l, legacy_string(paths, "host_storage"));
    if (cl) {
        if (json_object_object_get_ex(cl, "days_to_keep", &v)) {
            if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0) {
                err_set(e, "%s: cleanup.days_to_keep: expected a number of days", file);
                goto out;
            }
            l->cc.days_to_keep = json_object_get_int64(v);
        }
        if (legacy_list(cl, "protected_tags", &l->cc.protected_tags, file, e) < 0 ||
            legacy_list(cl, "protected_patterns", &l->cc.protected_patterns, file, e) < 0)
            goto out;
    }
    if (!l->cc.registry_url || !l->cc.username || !l->cc.password || !l->container ||
        !l->registry_config || !l->storage_path || !l->cc.protected_regex) {
        err_set(e, "out of memory");
        goto out;
    }
    /* what the run reads that the file does not say: [cleanup]'s keys when
     * there is that section, else the file's paths and the seed's GC */
    if (base) {
        l->cc.container = base->container;
        l->cc.registry_config = base->registry_config;
        l->cc.storage_path = base->storage_path[0] ? base->storage_path : l->storage_path;
        l->cc.gc_command = base->gc_command[0] ? base->gc_command : keep_str(l, SEED_GC_COMMAND);
        l->cc.pre_gc_command = base->pre_gc_command;
        l->cc.post_gc_command = base->post_gc_command;
        l->cc.include_repositories = base->include_repositories;
        l->cc.exclude_repositories = base->exclude_repositories;
        l->cc.max_deletions = base->max_deletions;
        l->cc.concurrency = base->concurrency;
        l->cc.timeout_ms = base->timeout_ms;
        l->cc.ca_file = base->ca_file;
        l->cc.insecure_skip_verify = base->insecure_skip_verify;
    } else {
        l->cc.container = l->container;
        l->cc.registry_config = l->registry_config;
        l->cc.storage_path = l->storage_path;
        l->cc.gc_command = keep_str(l, SEED_GC_COMMAND);
        l->cc.concurrency = 4;
        l->cc.timeout_ms = 30000;
    }
    if (!l->cc.gc_command) {
        err_set(e, "out of memory");
        goto out;
    }
    rc = 0;
out:
    json_object_put(j);
    return rc;
}

/* ---- the command ------------------------------------------------------- */

static int take_lock(const char *dir, int *fd_out)
{
    char path[4096];
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        log_error("cleanup: cannot create state_dir %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/cleanup.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("cleanup: cannot open lock file %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        log_error("cleanup: another cleanup run is in progress (lock %s held by pid %s): "
                  "not starting",
                  path, pid[0] ? pid : "?");
        close(fd);
        return -2;
    }
    char pid[32];
    int l = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)l, 0) < 0)
        log_debug("cleanup: cannot write the pid into %s", path);
    *fd_out = fd;
    return 0;
}

static bool arg_val(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t nl = strlen(name);
    if (strcmp(argv[*i], name) == 0) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "cleanup: %s needs a value\n", name);
            *out = NULL;
            return true;
        }
        *out = argv[++*i];
        return true;
    }
    if (strncmp(argv[*i], name, nl) == 0 && argv[*i][nl] == '=') {
        *out = argv[*i] + nl + 1;
        return true;
    }
    return false;
}

int cleanup_cli(const char *config_path, int argc, char **argv, struct logger *lg,
                const volatile sig_atomic_t *stop)
{
    bool dry = false, json = false, no_gc = false, no_cache = false;
    const char *legacy_file = NULL, *val, *gc = NULL, *log_file = NULL;
    struct cleanup_overrides o; /* the rest: [cleanup] (or --legacy-json) */
    cleanup_overrides_init(&o);
    for (int i = 1; i < argc; i++) {
        int64_t n;
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--no-gc") == 0) {
            no_gc = true;
        } else if (strcmp(argv[i], "--no-cache") == 0) {
            no_cache = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(cleanup_usage, stdout);
            return EXIT_OK;
        } else if (arg_val(argc, argv, &i, "--legacy-json", &val)) {
            if (!(legacy_file = val))
                return EXIT_CONFIG;
        } else if (arg_val(argc, argv, &i, "--max-deletions", &val)) {
            if (!val || parse_int64(val, &n) < 0 || n < 0) {
                fprintf(stderr, "cleanup: --max-deletions: bad number \"%s\"\n", val ? val : "");
                return EXIT_CONFIG;
            }
            o.max_deletions = n;
        } else if (arg_val(argc, argv, &i, "--concurrency", &val)) {
            if (!val || parse_int64(val, &n) < 0 || n < 1 || n > 64) {
                fprintf(stderr, "cleanup: --concurrency: 1 to 64, not \"%s\"\n", val ? val : "");
                return EXIT_CONFIG;
            }
            o.concurrency = n;
        } else if (arg_val(argc, argv, &i, "--include", &val)) {
            if (!(o.include_repositories = val))
                return EXIT_CONFIG;
        } else if (arg_val(argc, argv, &i, "--exclude", &val)) {
            if (!(o.exclude_repositories = val))
                return EXIT_CONFIG;
        } else if (arg_val(argc, argv, &i, "--gc-command", &val)) {
            if (!(gc = val))
                return EXIT_CONFIG;
        } else if (arg_val(argc, argv, &i, "--pre-gc-command", &val)) {
            if (!(o.pre_gc_command = val))
                return EXIT_CONFIG;
        } else if (arg_val(argc, argv, &i, "--post-gc-command", &val)) {
            if (!(o.post_gc_command = val))
                return EXIT_CONFIG;
        } else if (arg_val(argc, argv, &i, "--container", &val)) {
            if (!(o.container = val))
                return EXIT_CONFIG;
        } else if (arg_val(argc, argv, &i, "--registry-config", &val)) {
            if (!(o.registry_config = val))
                return EXIT_CONFIG;
        } else if (arg_val(argc, argv, &i, "--storage-path", &val)) {
            if (!(o.storage_path = val))
                return EXIT_CONFIG;
        } else if (arg_val(argc, argv, &i, "--log-file", &val)) {
            if (!(log_file = val))
                return EXIT_CONFIG;
        } else {
            fprintf(stderr, "cleanup: unknown argument %s\n\n%s", argv[i], cleanup_usage);
            return EXIT_CONFIG;
        }
    }

    struct err e;
    struct config *cfg = NULL;
    if (!legacy_file || access(config_path, F_OK) == 0) {
        if (!(cfg = config_load(config_path, &e))) {
            fprintf(stderr, "%s\n", e.msg);
            return EXIT_CONFIG;
        }
    }
    struct legacy leg;
    bool have_leg = false;
    const struct cfg_cleanup *cc = cfg ? cfg->cleanup : NULL;
    if (cc && !log_file && cc->log_file[0])
        log_file = cc->log_file;
    if (legacy_file) {
        if (legacy_load(legacy_file, cc, &leg, &e) < 0) {
            fprintf(stderr, "%s\n", e.msg);
            legacy_free(&leg);
            config_free(cfg);
            return EXIT_CONFIG;
        }
        have_leg = true;
        cc = &leg.cc;
    }
    if (gc)
        o.gc_command = gc;
    if (no_gc)
        o.gc_command = "";
    int rc = EXIT_CONFIG;
    int lock_fd = -1;
    if (!cc) {
        fprintf(stderr, "%s: no [cleanup] section (or use --legacy-json config.json)\n",
                config_path);
        goto out;
    }
    /* logging: DEBUG=true and [shipper] log_level as for every command */
    if (cfg) {
        const char *dbg = getenv("DEBUG");
        bool debug = false;
        enum log_level lvl;
        if (dbg)
            parse_bool(dbg, &debug);
        if (!debug && log_level_parse(cfg->shipper.log_level, &lvl) == 0)
            lg->level = lvl;
    }
    if (log_file) {
        if (logger_open_file(lg, log_file) < 0) {
            fprintf(stderr, "cleanup: cannot open log file %s: %s\n", log_file, strerror(errno));
            goto out;
        }
    } else if (!(cfg && cfg->shipper.log_file[0]) && access("/var/log/nexus-shipper", W_OK) == 0) {
        if (logger_open_file(lg, "/var/log/nexus-shipper/cleanup.log") < 0)
            log_debug("cleanup: /var/log/nexus-shipper/cleanup.log not writable");
    } else if (cfg && cfg->shipper.log_file[0]) {
        logger_open_file(lg, cfg->shipper.log_file);
    }
    o.progress = stderr; /* live progress: progress.h (stdout keeps the plan) */

    const char *state_dir = cfg ? cfg->shipper.state_dir : "/var/lib/nexus-shipper";
    rc = EXIT_FAIL;
    if (take_lock(state_dir, &lock_fd) < 0)
        goto out;
    char cache_path[4200];
    snprintf(cache_path, sizeof cache_path, "%s/cleanup-cache", state_dir);
    if (!no_cache)
        o.cache_file = cache_path; /* under the lock: one writer */

    struct cleanup_result res;
    o.dry_run = dry;
    if (cleanup_run(cc, &o, stop, &res, &e) < 0) {
        log_error("cleanup: %s", e.msg);
        cleanup_result_free(&res);
        rc = EXIT_CONFIG;
        goto out;
    }
    struct buf outb;
    buf_init(&outb, 0);
    if ((json ? cleanup_format_json(&res, &outb) : cleanup_format_text(&res, &outb)) == 0)
        fwrite(outb.data ? outb.data : "", 1, outb.len, stdout);
    fflush(stdout);
    buf_free(&outb);
    log_info("cleanup: %s: %zu repositories, %llu tags scanned, %llu tags deleted, "
             "%llu manifests deleted, %llu bytes of blobs freed%s, %.3f s",
             cl_status_name(res.status), res.n_repos, (unsigned long long)res.tags_scanned,
             (unsigned long long)res.tags_deleted, (unsigned long long)res.manifests_deleted,
             (unsigned long long)res.blob_bytes, dry ? " (dry run: nothing deleted)" : "",
             (double)(res.finished_ms - res.started_ms) / 1000.0);
    if (!dry) {
        char spath[4200];
        snprintf(spath, sizeof spath, "%s/cleanup.state", state_dir);
        struct cleanup_state st;
        cleanup_state_load(spath, &st);
        cleanup_state_add_run(&st, &res);
        struct err se;
        if (cleanup_state_save(state_dir, &st, &se) < 0)
            log_warn("cleanup: cannot save %s: %s (counters will restart)", spath, se.msg);
        cleanup_state_free(&st);
        /* the lock is released first: the run is recorded, shipping may wait */
        if (lock_fd >= 0)
            close(lock_fd);
        lock_fd = -1;
        ship_run(cfg, &cleanup_run_job, stop);
    }
    rc = res.status == CL_OK ? EXIT_OK : EXIT_FAIL;
    if (res.status != CL_OK && res.message[0])
        fprintf(stderr, "cleanup: %s\n", res.message);
    cleanup_result_free(&res);
out:
    if (lock_fd >= 0)
        close(lock_fd);
    if (have_leg)
        legacy_free(&leg);
    config_free(cfg);
    return rc;
}
