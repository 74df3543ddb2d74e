/* config_suggest: hints for an unknown key or section (check-config):
 * the nearest known key, the section a key belongs to, or what a
 * Prometheus remote_write key is called here. Contract: config_table.h. */
#include "config_table.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Prometheus remote_write (and global) spellings, and where their meaning
 * lives here. */
static const struct {
    const char *section, *key, *hint;
} foreign_keys[] = {
    {"remote_write", "remote_timeout", "this is `timeout`"},
    {"remote_write", "basic_auth", "use basic_auth_user and basic_auth_password_file"},
    {"remote_write", "username", "this is `basic_auth_user`"},
    {"remote_write", "password", "put the password in a file named by basic_auth_password_file"},
    {"remote_write", "password_file", "this is `basic_auth_password_file`"},
    {"remote_write", "tls_config",
     "TLS settings are keys of the section: ca_file, cert_file, key_file, insecure_skip_verify"},
    {"remote_write", "ca", "this is `ca_file`"},
    {"remote_write", "cert", "this is `cert_file`"},
    {"remote_write", "key", "this is `key_file`"},
    {"remote_write", "server_name", "not configurable: the host of `url` is verified"},
    {"remote_write", "bearer_token", "put the token in a file named by bearer_token_file"},
    {"remote_write", "authorization",
     "use bearer_token_file (Authorization: Bearer), or `header = Authorization: ...`"},
    {"remote_write", "write_relabel_configs",
     "use keep_metrics, drop_metrics, keep_series, drop_series and drop_labels"},
    {"remote_write", "relabel_configs",
     "use keep_metrics, drop_metrics, keep_series, drop_series and drop_labels"},
    {"remote_write", "queue_config",
     "use max_samples_per_send, min_backoff and max_backoff (batches wait in the disk "
     "spool, not in a memory queue)"},
    {"remote_write", "capacity", "batches wait in the disk spool: see [shipper] spool_max_size"},
    {"remote_write", "max_shards", "one request at a time per target: not configurable"},
    {"remote_write", "batch_send_deadline", "one batch per `interval`: not configurable"},
    {"remote_write", "name", "the name goes in the section header: [remote_write NAME]"},
    {"remote_write", "send_exemplars", "not supported: nexus-shipper has no exemplars"},
    {"remote_write", "send_native_histograms", "not supported: histograms are classic ones"},
    {"remote_write", "metadata_config", "metadata is always sent with every batch"},
    {"remote_write", "proxy_url", "use the https_proxy / http_proxy environment variables"},
    {"remote_write", "oauth2", "not supported: use bearer_token_file or a header"},
    {"remote_write", "sigv4", "not supported: use bearer_token_file or a header"},
    {"remote_write", "azuread", "not supported: use bearer_token_file or a header"},
    {"remote_write", "follow_redirects", "not configurable: redirects are not followed"},
    {"remote_write", "enable_http2", "not configurable"},
    {"remote_write", "tenant_id", "this is `tenant` (X-Scope-OrgID)"},
    {"remote_write", "x-scope-orgid", "this is `tenant`"},
    {"shipper", "scrape_interval", "this is `interval`"},
    {"shipper", "evaluation_interval", "this is `interval`"},
};

/* Levenshtein distance, case-insensitive, of short strings (capped). */
size_t cfg_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* "; did you mean ...?" or a hint for a key of another program, or "". */
void cfg_suggest(const char *section, const char *key, char *out, size_t n)
{
    out[0] = '\0';
    for (size_t i = 0; i < NS_ARRAY_LEN(foreign_keys); i++)
        if (strcmp(foreign_keys[i].section, section) == 0 &&
            strcasecmp(foreign_keys[i].key, key) == 0) {
            snprintf(out, n, " (Prometheus's \"%s\": %s)", key, foreign_keys[i].hint);
            return;
        }
    const char *best = NULL;
    size_t bd = SIZE_MAX, kl = strlen(key);
    for (size_t i = 0; i < cfg_n_keys; i++) {
        if (strcmp(cfg_keys[i].section, section) != 0)
            continue;
        size_t d = cfg_edit_distance(key, cfg_keys[i].key);
        size_t ol = strlen(cfg_keys[i].key);
        /* a prefix (basic_auth_password of basic_auth_password_file) is close */
        if (kl >= 4 && ol > kl && strncasecmp(cfg_keys[i].key, key, kl) == 0 && d > 2)
            d = 2;
        if (d < bd) {
            bd = d;
            best = cfg_keys[i].key;
        }
    }
    size_t limit = kl / 3 > 2 ? kl / 3 : 2;
    if (best && bd <= limit) {
        snprintf(out, n, "; did you mean \"%s\"?", best);
        return;
    }
    for (size_t i = 0; i < cfg_n_keys; i++)
        if (strcasecmp(cfg_keys[i].key, key) == 0) {
            snprintf(out, n, " (\"%s\" is a key of [%s])", cfg_keys[i].key, cfg_keys[i].section);
            return;
        }
}
