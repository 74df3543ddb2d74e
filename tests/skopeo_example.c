/* skopeo_example: a user of the installed libnexusskopeo.
 *
 *   cc skopeo_example.c $(pkg-config --cflags --libs nexusskopeo) -o skopeo_example
 *   ./skopeo_example [--insecure] [--binary PATH] [--timeout MS] SRC DST
 *
 * Copies SRC to DST and prints one line per progress event:
 *   progress <percentage> <step> [<blob digest> <size|unknown> <status>]
 * then "result ok <bytes> <digest>" or "result error <error_type> <message>".
 * Exit status 0 on success, 1 on failure, 2 on usage errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skopeo.h"

static void on_progress(const struct skopeo_progress *p, void *userdata)
{
    int *events = userdata;
    (*events)++;
    printf("progress %.1f %s", p->percentage, p->current_step);
    if (p->current_blob) {
        if (p->current_blob->size >= 0)
            printf(" %s %lld %s", p->current_blob->sha256, (long long)p->current_blob->size,
                   p->current_blob->status);
        else
            printf(" %s unknown %s", p->current_blob->sha256, p->current_blob->status);
    }
    putchar('\n');
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct skopeo_options o;
    skopeo_options_init(&o);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--insecure"))
            o.tls_verify = 0;
        else if (!strcmp(argv[i], "--binary") && i + 1 < argc)
            o.binary = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            o.timeout_ms = atoll(argv[++i]);
        else
            break;
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: %s [--insecure] [--binary PATH] [--timeout MS] SRC DST\n", argv[0]);
        return 2;
    }
    int events = 0;
    o.progress = on_progress;
    o.userdata = &events;
    struct skopeo_result r;
    int rc = skopeo_copy(argv[i], argv[i + 1], &o, &r);
    if (rc == 0)
        printf("result ok %lld %s (%d events, skopeo %d.%d.%d)\n", (long long)r.bytes_total,
               r.digest ? r.digest : "-", events, r.version_major, r.version_minor,
               r.version_patch);
    else
        printf("result error %s %s\n", skopeo_error_type_name(r.error_type),
               r.error ? r.error : "");
    skopeo_result_free(&r);
    return rc == 0 ? 0 : 1;
}
