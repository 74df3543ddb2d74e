/* nexus-shipper: command-line dispatch, signals and the daemon loop.
 * The only module with process-wide mutable state (signal flags, logger). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cleanup_cli.h"
#include "cli_args.h"
#include "collector.h"
#include "config.h"
#include "exitcodes.h"
#include "httpd.h"
#include "status_page.h"
#include "log.h"
#include "nsconfig.h"
#include "scheduler.h"
#include "sdnotify.h"
#include "sender.h"
#include "ship.h"
#include "skopeo_cli.h"
#include "skopeo_metrics.h"
#include "cleanup_metrics.h"
#include "pushgateway.h"
#include "spool_cli.h"
#include "textfmt.h"

static volatile sig_atomic_t g_stop, g_reload, g_reopen, g_wake;
static struct logger g_log;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        g_reload = 1;
    else if (sig == SIGUSR1)
        g_reopen = 1;
    else if (sig == SIGUSR2)
        g_wake = 1; /* a cleanup or skopeo run was recorded: ship it now */
    else
        g_stop = 1;
}

static const char *default_config(void)
{
    static const char sys[] = "/etc/nexus-shipper/nexus-shipper.conf";
    if (access(sys, F_OK) == 0)
        return sys;
    return "./nexus-shipper.conf";
}

static int setup_logging(const struct config *cfg)
{
    enum log_level lvl;
    const char *dbg = getenv("DEBUG");
    bool debug = false;
    if (dbg)
        parse_bool(dbg, &debug);
    if (!debug && log_level_parse(cfg->shipper.log_level, &lvl) == 0)
        logger_set_level(&g_log, lvl);
    logger_set_json(&g_log, strcmp(cfg->shipper.log_format, "json") == 0);
    if (cfg->shipper.log_file[0] && logger_open_file(&g_log, cfg->shipper.log_file) < 0) {
        log_error("cannot open log_file %s: %s", cfg->shipper.log_file, strerror(errno));
        return -1;
    }
    if (cfg->world_readable_secrets)
        log_warn("a secret file referenced by %s is readable by every user (chmod 600 it)",
                 cfg->path);
    if (cfg->world_readable_inline[0])
        log_warn("%s is readable by every user and holds a secret in %s (chmod 600 it, or move "
                 "the secret to a *_file key)",
                 cfg->path, cfg->world_readable_inline);
    return 0;
}

/* httpd_new with every signal blocked: its threads inherit the mask, so
 * signals reach the main thread and interrupt its sleep. */
static struct httpd *httpd_start(const struct config *cfg, struct err *e)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    struct httpd *h = httpd_new(cfg->shipper.listen, cfg->shipper.interval_ms,
                                cfg->shipper.spool_dir, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return h;
}

/* Loads the configuration; on error prints every problem (one per line). */
static struct config *load(const char *path)
{
    struct err e;
    struct strlist problems = {0};
    struct config *cfg = config_load_all(path, &problems, &e);
    if (!cfg && !problems.n)
        fprintf(stderr, "%s\n", e.msg);
    for (size_t i = 0; i < problems.n; i++)
        fprintf(stderr, "%s\n", problems.v[i]);
    strv_free(problems.v, problems.n);
    return cfg;
}

/* argv: the normalized arguments of cli_parse() (options of its row) */
static int cmd_check_config(const char *path, int argc, char **argv)
{
    bool syntax_only = argc > 1 && strcmp(argv[1], "--syntax-only") == 0;
    struct config *cfg = load(path);
    if (!cfg)
        return EXIT_CONFIG;
    /* the host: spool and state directories, log file */
    struct strlist problems = {0};
    size_t np = syntax_only ? 0 : config_check_paths(cfg, &problems);
    for (size_t i = 0; i < problems.n; i++)
        fprintf(stderr, "%s\n", problems.v[i]);
    strv_free(problems.v, problems.n);
    /* the collector lists name collectors: check them the way `run` would */
    struct err e;
    struct scheduler *s = sched_new(cfg, builtin_collectors, n_builtin_collectors, NULL, &e);
    if (!s) {
        /* "FILE: [shipper] KEY: ..." -> at the key's line */
        char key[64];
        size_t pl = strlen(path);
        int line = 0;
        if (strncmp(e.msg, path, pl) == 0 && strncmp(e.msg + pl, ": [shipper] ", 12) == 0 &&
            sscanf(e.msg + pl + 12, "%63[a-z_]:", key) == 1)
            line = config_key_line(cfg, &cfg->shipper, key);
        if (line)
            fprintf(stderr, "%s:%d: %s\n", path, line, e.msg + pl + 12);
        else
            fprintf(stderr, "%s\n", e.msg);
        config_free(cfg);
        return EXIT_CONFIG;
    }
    sched_free(s);
    if (np) {
        config_free(cfg);
        return EXIT_CONFIG;
    }
    printf("%s: OK (%zu remote_write target%s%s%s)\n", path, cfg->n_rw, cfg->n_rw == 1 ? "" : "s",
           cfg->pushgateway ? ", pushgateway" : "", cfg->nexus ? ", nexus" : "");
    config_free(cfg);
    return EXIT_OK;
}

/* `once` as a smoke test: one line per collector and per target. */
static void once_report(struct scheduler *s, struct sender *snd, bool *collector_failed)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct coll_inst *ci = &s->ci[i];
        if (ci->up)
            printf("collector %-22s ok      %zu series, %.3f s\n", ci->c->name, ci->series,
                   ci->duration);
        else {
            printf("collector %-22s FAILED  %s\n", ci->c->name,
                   ci->last_error[0] ? ci->last_error : "no reason given");
            *collector_failed = true;
        }
    }
    for (size_t i = 0; snd && i < sender_n_targets(snd); i++) {
        struct sender_target_status ts;
        if (sender_target_status(snd, i, &ts) < 0)
            continue;
        char status[64];
        if (ts.spool_only)
            snprintf(status, sizeof status, "spool only");
        else if (ts.last_status)
            snprintf(status, sizeof status, "HTTP %ld", ts.last_status);
        else if (ts.last_error[0])
            snprintf(status, sizeof status, "no answer");
        else
            snprintf(status, sizeof status, "nothing sent");
        printf("target    %-22s %-12s %llu batch%s delivered, %llu left in the spool%s%s\n",
               ts.label, status, (unsigned long long)ts.batches_sent,
               ts.batches_sent == 1 ? "" : "es", (unsigned long long)ts.batches_left_at_stop,
               ts.last_error[0] ? ": " : "", ts.last_error);
    }
}

/* argv: the normalized arguments of cli_parse() (options of the "once" row) */
static int cmd_once(const char *path, int argc, char **argv)
{
    bool dry = false, pgw = false, allow_partial = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            dry = true;
        else if (strcmp(argv[i], "--pushgateway") == 0)
            pgw = true;
        else if (strcmp(argv[i], "--allow-partial") == 0)
            allow_partial = true;
    }
    struct config *cfg = load(path);
    if (!cfg)
        return EXIT_CONFIG;
    if (pgw && !cfg->pushgateway) {
        fprintf(stderr, "%s: --pushgateway needs a [pushgateway] section\n", path);
        config_free(cfg);
        return EXIT_CONFIG;
    }
    setup_logging(cfg);
    int rc = EXIT_FAIL;
    struct err e;
    struct sender *snd = NULL;
    if (!dry && !(snd = sender_new(cfg, &e))) {
        log_error("%s", e.msg);
        goto out_cfg;
    }
    int64_t budget = ship_budget_ms(cfg);
    if (snd) {
        long pid = 0;
        enum writer_state ws = sender_take_writer(snd, false, budget, NULL, &pid);
        if (ws == WRITER_DAEMON || ws == WRITER_BUSY) {
            if (ws == WRITER_DAEMON) {
                printf("once: a daemon (pid %ld) ships from %s; a second writer of its series "
                       "would be refused by the receivers: woke it for a cycle now (see its "
                       "/metrics); `once --dry-run` shows what would be collected\n",
                       pid, cfg->shipper.spool_dir);
                ship_wake_daemon(pid);
                rc = EXIT_OK;
            } else {
                log_error("once: another nexus-shipper holds the spool %s; nothing sent",
                          cfg->shipper.spool_dir);
            }
            sender_free(snd);
            goto out_cfg;
        }
    }
    struct scheduler *s = sched_new(cfg, builtin_collectors, n_builtin_collectors, snd, &e);
    if (!s) {
        sender_free(snd);
        log_error("%s", e.msg);
        goto out_cfg;
    }
    int64_t ts = now_ms();
    bool failed = false;
    if (dry || pgw) {
        sched_collect(s, ts);
        struct sb_sample *v;
        size_t n;
        struct buf out;
        buf_init(&out, 0);
        if (sb_snapshot(s->sb, true, &v, &n) == 0 && textfmt_write(s->sb, v, n, &out) == 0) {
            if (dry) {
                fwrite(out.data ? out.data : "", 1, out.len, stdout);
                rc = EXIT_OK;
            } else if (sender_enqueue(s->sender, s->sb, v, n, cfg->pushgateway->job,
                                      ENQ_PUSHGATEWAY) > 0) {
                size_t left = sender_deliver(s->sender, mono_ms() + budget, 0, SENDER_FINAL);
                once_report(s, s->sender, &failed);
                rc = left && !sender_has_spool(s->sender) ? EXIT_FAIL : EXIT_OK;
            }
        } else {
            log_error("out of memory rendering the text format");
        }
        free(v);
        buf_free(&out);
    } else {
        long n = sched_cycle(s, ts);
        if (n >= 0) {
            /* this run's batch and whatever an outage left in the spool */
            size_t left = sender_deliver(s->sender, mono_ms() + budget, 0, SENDER_FINAL);
            sender_housekeeping(s->sender);
            once_report(s, s->sender, &failed);
            if (left && !sender_has_spool(s->sender)) {
                /* held in memory only: they die with this process */
                log_error("once: %zu batch%s could be neither delivered nor spooled", left,
                          left == 1 ? "" : "es");
            } else {
                log_info("once: %ld samples at timestamp %lld ms; %zu batch%s left in the spool", n,
                         (long long)ts, left, left == 1 ? "" : "es");
                rc = EXIT_OK;
            }
        } else {
            once_report(s, s->sender, &failed);
        }
    }
    if (rc == EXIT_OK && failed && !allow_partial && !dry) {
        fprintf(stderr, "once: a collector failed (--allow-partial to exit 0 anyway)\n");
        rc = EXIT_FAIL;
    }
    sched_free(s);
out_cfg:
    config_free(cfg);
    return rc;
}

/* Debug level: what a cycle did per collector and per target. */
static void log_cycle_detail(struct scheduler *s)
{
    if (!log_enabled(LOG_DEBUG))
        return;
    for (size_t i = 0; i < s->n; i++) {
        const struct coll_inst *ci = &s->ci[i];
        log_event(LOG_DEBUG, ci->up ? "collector ok" : "collector failed",
                  LOG_S("collector", ci->c->name), LOG_I("series", ci->series),
                  LOG_F("seconds", ci->duration), LOG_S("error", ci->up ? "" : ci->last_error));
    }
    for (size_t i = 0; i < sender_n_targets(s->sender); i++) {
        struct sender_target_status ts;
        if (sender_target_status(s->sender, i, &ts) == 0)
            log_event(LOG_DEBUG, "target", LOG_S("target", ts.label),
                      LOG_I("batches_queued", ts.batches_left_at_stop),
                      LOG_I("batches_sent", ts.batches_sent), LOG_INZ("status", ts.last_status),
                      LOG_F("retry_in_s", (double)ts.retry_in_ms / 1000.0),
                      LOG_S("error", ts.last_error));
    }
}

/* The last line of a daemon: what this run delivered, what stays. */
static void log_stop_summary(struct sender *snd)
{
    uint64_t batches = 0, samples = 0, spooled = 0;
    for (size_t i = 0; i < sender_n_targets(snd); i++) {
        struct sender_target_status ts;
        if (sender_target_status(snd, i, &ts) < 0)
            continue;
        batches += ts.batches_sent;
        samples += ts.samples_sent;
        spooled += ts.batches_left_at_stop;
    }
    log_event(LOG_INFO, "stopped", LOG_I("batches_delivered", batches),
              LOG_I("samples_delivered", samples),
              LOG_I(sender_has_spool(snd) ? "batches_spooled" : "batches_lost", spooled));
}

/* The run jobs whose Pushgateway groups the daemon keeps current. */
static const struct run_job *const run_jobs[] = {&skopeo_run_job, &cleanup_run_job};

/* The daemon becomes the one writer (ship.h) before its first cycle,
 * waiting while a cleanup or skopeo run delivers. -1: stopped meanwhile. */
static int take_writer_daemon(struct sender *snd, const struct config *cfg)
{
    for (;;) {
        enum writer_state ws = sender_take_writer(snd, true, 60000, &g_stop, NULL);
        if (ws == WRITER_HELD || ws == WRITER_NONE)
            return 0;
        if (g_stop)
            return -1;
        log_warn("spool %s is still held by another process; waiting to become its writer",
                 cfg->shipper.spool_dir);
    }
}

/* Installs on_signal for SIGTERM and SIGINT, and for SIGHUP, SIGUSR1 and
 * SIGUSR2 too when daemon. */
static void catch_signals(bool daemon)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (daemon) {
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGUSR1, &sa, NULL);
        sigaction(SIGUSR2, &sa, NULL);
    }
}

/* Loads the configuration, sets up logging and catch_signals(daemon);
 * NULL when the configuration does not load. */
static struct config *load_and_catch(const char *path, bool daemon)
{
    struct config *cfg = load(path);
    if (!cfg)
        return NULL;
    setup_logging(cfg);
    catch_signals(daemon);
    return cfg;
}

static int cmd_run(const char *path)
{
    /* handlers first: a signal during start-up must not kill the process
     * (or a delivery thread) in the middle of a write */
    struct config *cfg = load_and_catch(path, true);
    if (!cfg)
        return EXIT_CONFIG;
    signal(SIGPIPE, SIG_IGN);
    struct err e;
    struct sender *snd = sender_new(cfg, &e);
    if (snd && take_writer_daemon(snd, cfg) < 0) {
        sender_free(snd);
        config_free(cfg);
        return EXIT_OK; /* stopped while waiting */
    }
    struct job_pusher *pusher = job_pusher_new(run_jobs, NS_ARRAY_LEN(run_jobs));
    struct scheduler *s =
        snd && pusher ? sched_new(cfg, builtin_collectors, n_builtin_collectors, snd, &e) : NULL;
    if (!s) {
        sender_free(snd); /* sched_new does not take it when it fails */
        job_pusher_free(pusher);
        log_error("%s", snd && pusher ? e.msg : "out of memory");
        config_free(cfg);
        return EXIT_FAIL;
    }
    sender_set_abort(snd, &g_stop); /* SIGTERM aborts a send in flight; it stays spooled */
    if (sender_start(snd, (size_t)cfg->shipper.replay_rate) < 0) {
        log_error("cannot start the delivery thread");
        sched_free(s);
        job_pusher_free(pusher);
        config_free(cfg);
        return EXIT_FAIL;
    }
    struct httpd *web = NULL;
    if (cfg->shipper.listen[0]) {
        web = httpd_start(cfg, &e);
        if (!web) {
            log_error("%s", e.msg);
            sender_stop(s->sender);
            sched_free(s);
            job_pusher_free(pusher);
            config_free(cfg);
            return EXIT_FAIL;
        }
        log_info("serving /metrics and /healthz on http://%s", httpd_address(web));
    }
    log_info("nexus-shipper %s started: interval %llds, %zu collector(s), %zu target(s), spool %s",
             PACKAGE_VERSION, (long long)(cfg->shipper.interval_ms / 1000), s->n,
             sender_n_targets(snd),
             cfg->shipper.spool_dir);
    if (sdnotify_sendf("READY=1\nSTATUS=shipping every %llds",
                       (long long)(cfg->shipper.interval_ms / 1000)) < 0)
        log_warn("sd_notify to $NOTIFY_SOCKET failed: %s", strerror(errno));
    int64_t wd_half = sdnotify_watchdog_ms() / 2, wd_last = mono_ms();
    int64_t next = mono_ms(), last_cycle_mono = 0, start_ms = now_ms();
    while (!g_stop) {
        if (g_reopen) {
            g_reopen = 0;
            if (g_log.file_path && logger_open_file(&g_log, g_log.file_path) < 0)
                log_error("cannot reopen %s: %s", g_log.file_path, strerror(errno));
        }
        if (g_reload) {
            g_reload = 0;
            sdnotify_send("RELOADING=1");
            struct config *nc = config_load(path, &e);
            if (!nc) {
                log_error("reload refused, keeping the running configuration: %s", e.msg);
                sched_set_reload_status(s, false, now_ms());
            } else {
                struct sender *ns = sender_new(nc, &e);
                struct scheduler *nsched =
                    ns ? sched_new(nc, builtin_collectors, n_builtin_collectors, ns, &e) : NULL;
                if (!nsched) {
                    sender_free(ns); /* not taken by a failed sched_new */
                    config_free(nc);
                    log_error("reload failed, keeping the running configuration: %s", e.msg);
                    sched_set_reload_status(s, false, now_ms());
                } else {
                    sender_set_abort(ns, &g_stop);
                    sender_stop(s->sender);
                    sched_free(s); /* releases the spool lock ... */
                    config_free(cfg);
                    s = nsched;
                    cfg = nc;
                    /* ... which the new sender takes before it renders anything */
                    if (take_writer_daemon(s->sender, cfg) < 0)
                        break;
                    logger_close(&g_log);
                    setup_logging(cfg);
                    log_info("configuration reloaded from %s", path);
                    /* the same listen keeps the server; another one restarts it */
                    if (web && strcmp(httpd_listen(web), cfg->shipper.listen) == 0) {
                        const struct cfg_shipper *sh = &cfg->shipper;
                        if (httpd_configure(web, sh->interval_ms, sh->spool_dir) < 0)
                            log_error("listen: out of memory; health criteria not updated");
                    } else {
                        httpd_free(web);
                        web = NULL;
                        if (cfg->shipper.listen[0] &&
                            !(web = httpd_start(cfg, &e)))
                            log_error("%s", e.msg);
                        else if (web)
                            log_info("serving /metrics and /healthz on http://%s",
                                     httpd_address(web));
                    }
                    if (sender_start(s->sender, (size_t)cfg->shipper.replay_rate) < 0)
                        log_error("cannot start the delivery thread");
                    next = mono_ms();
                }
            }
            sdnotify_send("READY=1");
        }
        if (g_wake) { /* a run was recorded: ship it now, at most one extra cycle a second */
            g_wake = 0;
            int64_t soon = last_cycle_mono + 1000;
            if (soon < next)
                next = soon > mono_ms() ? soon : mono_ms();
        }
        int64_t now = mono_ms();
        if (now >= next) {
            int64_t ts = now_ms();
            last_cycle_mono = now;
            long n = sched_cycle(s, ts);
            job_pusher_run(pusher, cfg, s->sender); /* run jobs' Pushgateway groups */
            if (web)
                httpd_publish(web, s->sb, n >= 0);
            if (web) /* the status page at GET / and the delivery age for /healthz */
                status_page_publish(web, s, cfg, path, start_ms);
            sdnotify_send("WATCHDOG=1");
            wd_last = mono_ms();
            sender_kick(s->sender);
            sender_housekeeping(s->sender);
            if (n >= 0)
                log_debug("cycle %llu at %lld: %ld samples stored", (unsigned long long)s->cycles,
                          (long long)ts, n);
            log_cycle_detail(s);
            next += cfg->shipper.interval_ms;
            if (next <= mono_ms()) /* a cycle overran: skip, never burst */
                next = mono_ms() + cfg->shipper.interval_ms;
        }
        if (wd_half && mono_ms() - wd_last >= wd_half) { /* a long interval */
            sdnotify_send("WATCHDOG=1");
            wd_last = mono_ms();
        }
        /* the delivery thread ships and replays meanwhile */
        if (!g_stop && !g_reload && !g_reopen && !g_wake)
            sleep_until_mono(wd_half && wd_last + wd_half < next ? wd_last + wd_half : next);
    }
    sdnotify_send("STOPPING=1");
    httpd_free(web);
    sender_stop(s->sender);
    log_info("stopping: delivering what is queued (up to %llds)",
             (long long)(cfg->shipper.shutdown_timeout_ms / 1000));
    sender_set_abort(s->sender, NULL);
    /* every target gets one attempt within shutdown_timeout, backoff or not */
    size_t left =
        sender_deliver(s->sender, mono_ms() + cfg->shipper.shutdown_timeout_ms, 0, SENDER_FINAL);
    if (left)
        log_info("%zu batch%s stay in the spool for the next start", left, left == 1 ? "" : "es");
    log_stop_summary(s->sender);
    sched_free(s);
    job_pusher_free(pusher);
    config_free(cfg);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    logger_init(&g_log);
    log_use(&g_log);
    struct cli cl;
    if (cli_parse(argc, argv, stdout, stderr, &cl) < 0)
        return EXIT_FAIL;
    if (cl.done)
        return cl.exit_code;
    const char *config_path = cl.config ? cl.config : default_config();
    const char *cmd = cl.command;
    int cargc = cl.argc;
    char **cargv = cl.argv;
    int rc;
    if (strcmp(cmd, "run") == 0)
        rc = cmd_run(config_path);
    else if (strcmp(cmd, "once") == 0)
        rc = cmd_once(config_path, cargc, cargv);
    else if (strcmp(cmd, "check-config") == 0)
        rc = cmd_check_config(config_path, cargc, cargv);
    else if (strcmp(cmd, "config-template") == 0) {
        config_write_template(stdout);
        rc = EXIT_OK;
    } else if (strcmp(cmd, "config-manpage") == 0) { /* nexus-shipper.conf(5), built by make */
        config_write_manpage(stdout, PACKAGE_VERSION);
        rc = EXIT_OK;
    } else if (strcmp(cmd, "spool") == 0) {
        struct config *cfg = load_and_catch(config_path, false);
        if (!cfg) {
            cli_free(&cl);
            return EXIT_CONFIG;
        }
        rc = spool_cli(cfg, cargc, cargv, &g_stop);
        config_free(cfg);
    } else if (strcmp(cmd, "healthcheck") == 0) {
        rc = httpd_healthcheck_main(config_path, cargc, cargv);
    } else if (strcmp(cmd, "cleanup") == 0) {
        catch_signals(false);
        rc = cleanup_cli(config_path, cargc, cargv, &g_log, &g_stop);
    } else if (strcmp(cmd, "skopeo") == 0) {
        rc = skopeo_cli(config_path, cargc, cargv);
    } else if (strcmp(cmd, "version") == 0) {
        printf("nexus-shipper %s (libcurl %s)\n", PACKAGE_VERSION,
               curl_version_info(CURLVERSION_NOW)->version);
        rc = EXIT_OK;
    } else { /* help [COMMAND] */
        fputs(cli_usage(cargc > 1 ? cargv[1] : NULL), stdout);
        rc = EXIT_OK;
    }
    cli_free(&cl);
    logger_close(&g_log);
    curl_global_cleanup();
    return rc;
}
