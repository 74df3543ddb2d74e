/* nexus_tasks: scheduled tasks (the old exporter's tasks).
 *
 * GET /service/rest/v1/tasks, paging through continuationToken. Labels
 * {task (the task's name), type}:
 *
 *   nexus_task_state{task,type,state}               a state set: one series per known
 *        state (STATES below: Nexus's TaskState values WAITING, RUNNING,
 *        RUNNING_STARTING, RUNNING_BLOCKED, RUNNING_CANCELED, and DONE),
 *        plus state="unknown"; exactly one of them is 1, the others 0
 *   nexus_task_last_run_result{task,type,result}    a state set over OK, FAILED,
 *        CANCELED, INTERRUPTED, "never" (lastRunResult null) and "unknown"
 *
 * As node_exporter's systemd unit states: a task that changes state
 * flips values instead of ending one series and starting another, so
 * `nexus_task_state{state="RUNNING"} == 1` and the 0s are always there
 * to graph and alert on. A value Nexus sends that is not in the list is
 * reported as "unknown" = 1 and logged with its text (one complaint per
 * interval), so new Nexus states never create series.
 *   nexus_task_last_run_timestamp_seconds{task,type}  lastRun (absent when never run)
 *   nexus_task_next_run_timestamp_seconds{task,type}  nextRun (absent when not scheduled)
 *
 * Task names are not unique in Nexus: a second task with the same name and
 * type is labelled "<name> (<id>)" so series never collide. Malformed
 * answers fail the collector. State: one nexus_api, owned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "nexus_api.h"

static const struct metric_desc m_state = {
    "nexus_task_state", MT_GAUGE,
    "State set of the task's currentState: 1 for the current state, 0 for the other known "
    "states (WAITING, RUNNING, RUNNING_STARTING, RUNNING_BLOCKED, RUNNING_CANCELED, DONE, "
    "unknown).",
    ""};
static const struct metric_desc m_result = {
    "nexus_task_last_run_result", MT_GAUGE,
    "State set of the task's last run result: 1 for it, 0 for the others (OK, FAILED, "
    "CANCELED, INTERRUPTED, never, unknown).",
    ""};
static const struct metric_desc m_last = {"nexus_task_last_run_timestamp_seconds", MT_GAUGE,
                                          "When the task last ran (lastRun).", "seconds"};
static const struct metric_desc m_next = {"nexus_task_next_run_timestamp_seconds", MT_GAUGE,
                                          "When the task runs next (nextRun).", "seconds"};

static const char *const STATES[] = {"WAITING",         "RUNNING",          "RUNNING_STARTING",
                                     "RUNNING_BLOCKED", "RUNNING_CANCELED", "DONE",
                                     "unknown"};
static const char *const RESULTS[] = {"OK",          "FAILED", "CANCELED",
                                      "INTERRUPTED", "never",  "unknown"};

#define ENDPOINT  "/service/rest/v1/tasks"
#define MAX_PAGES 1000

struct walk {
    struct collect_ctx *ctx;
    char **seen; /* "type\x1fname" of tasks labelled so far, owned */
    size_t n, cap;
};

/* Remembers type+name; returns 1 if it was new, 0 if seen, -1 on OOM. */
static int remember(struct walk *w, const char *type, const char *name)
{
    size_t tl = strlen(type), nl = strlen(name);
    char *k = malloc(tl + nl + 2);
    if (!k)
        return -1;
    memcpy(k, type, tl);
    k[tl] = '\x1f';
    memcpy(k + tl + 1, name, nl + 1);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->seen[i], k) == 0) {
            free(k);
            return 0;
        }
    char **nv = array_grow(w->seen, &w->cap, w->n, sizeof *nv, 64);
    if (!nv) {
        free(k);
        return -1;
    }
    w->seen = nv;
    w->seen[w->n++] = k;
    return 1;
}

/* Sets one series per value of `set` (the last one is "unknown"): 1 for
 * `value`, or for "unknown" when `value` is not in the set. */
static int state_set(struct collect_ctx *ctx, const struct metric_desc *d, const char *label,
                     const char *type, const char *key, const char *const *set, size_t n,
                     const char *value)
{
    size_t hit = n - 1;
    for (size_t i = 0; i + 1 < n; i++)
        if (strcmp(set[i], value) == 0)
            hit = i;
    if (hit == n - 1)
        log_complain("nexus-tasks-unknown",
                     "nexus_tasks: task \"%s\": %s \"%s\" is not a known value; "
                     "reported as %s=\"unknown\"",
                     label, d == &m_state ? "currentState" : "lastRunResult", value, key);
    for (size_t i = 0; i < n; i++)
        if (coll_set(ctx, d, i == hit ? 1 : 0, "task", label, "type", type, key, set[i], NULL) < 0)
            return -1;
    return 0;
}

static int page(void *ud, struct jdec *d, json_object *items, size_t n)
{
    struct walk *w = ud;
    struct collect_ctx *ctx = w->ctx;
    for (size_t i = 0; i < n; i++) {
        size_t m = jd_push_index(d, i);
        json_object *t;
        const char *id = NULL, *name, *type, *state, *result = NULL;
        int64_t last = 0, next = 0;
        int has_last, has_next;
        if (jd_object(d, json_object_array_get_idx(items, i), NULL, 0, &t) < 0 ||
            jd_string(d, t, "id", JD_MAYBE, &id) < 0 || jd_string(d, t, "name", 0, &name) < 0 ||
            jd_string(d, t, "type", 0, &type) < 0 ||
            jd_string(d, t, "currentState", 0, &state) < 0 ||
            jd_string(d, t, "lastRunResult", JD_MAYBE, &result) < 0 ||
            (has_last = jd_time_ms(d, t, "lastRun", JD_MAYBE, &last)) < 0 ||
            (has_next = jd_time_ms(d, t, "nextRun", JD_MAYBE, &next)) < 0)
            return -1;
        char label[512];
        int fresh = remember(w, type, name);
        if (fresh < 0) {
            err_set(ctx->e, "out of memory");
            return -1;
        }
        if (fresh)
            snprintf(label, sizeof label, "%s", name);
        else
            snprintf(label, sizeof label, "%s (%s)", name, id ? id : "no id");
        if (!fresh && remember(w, type, label) <= 0) {
            /* the same id twice: Nexus listed one task twice */
            return jd_fail(d, "id", "task \"%s\" listed twice", label);
        }
        const char *res = result && *result ? result : "never";
        if (state_set(ctx, &m_state, label, type, "state", STATES, NS_ARRAY_LEN(STATES), state) ||
            state_set(ctx, &m_result, label, type, "result", RESULTS, NS_ARRAY_LEN(RESULTS), res))
            return -1;
        if (has_last &&
            coll_set(ctx, &m_last, (double)last / 1000.0, "task", label, "type", type, NULL) < 0)
            return -1;
        if (has_next &&
            coll_set(ctx, &m_next, (double)next / 1000.0, "task", label, "type", type, NULL) < 0)
            return -1;
        jd_pop(d, m);
    }
    return 0;
}

static int collect(void *state, struct collect_ctx *ctx)
{
    struct nexus_api *a = state;
    struct walk w = {.ctx = ctx};
    bool truncated = false;
    int rc =
        nexus_get_pages(a, ENDPOINT, ctx->deadline_mono, MAX_PAGES, page, &w, &truncated, ctx->e);
    if (rc == 0 && truncated) {
        err_set(ctx->e, "GET %s: more than %d pages; giving up", ENDPOINT, MAX_PAGES);
        rc = -1;
    }
    for (size_t i = 0; i < w.n; i++)
        free(w.seen[i]);
    free(w.seen);
    return rc;
}

const struct collector collector_nexus_tasks = {
    .name = "nexus_tasks",
    .enabled = nexus_collector_enabled,
    .init = nexus_collector_init,
    .collect = collect,
    .destroy = nexus_collector_destroy,
};
