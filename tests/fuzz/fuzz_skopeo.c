/* libFuzzer target: the skopeo output parsers (skopeo.h) on hostile
 * output: every line (split on '\n' and '\r' as the runner does) through
 * skopeo_parse_line(), the whole text through skopeo_classify_error(), and
 * each line as an image reference through skopeo_check_reference().
 * Invariants: a parsed digest is NUL-terminated within its buffer and
 * holds no control character; a step name, when set, is one of the step
 * table's names (or the runner's own); image index <= count when both
 * are set; the error class is in range; a reference starting with '-' is
 * never accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "skopeo.h"

static const char *const steps[] = {
    "getting_signatures",
    "copying_blob",
    "copying_config",
    "writing_manifest",
    "storing_signatures",
    "copying_image",
    "completed",
    "failed",
    "running",
    "copying_list",
    "writing_manifest_list",
    "storing_list_signatures",
};

static void one_line(const char *line)
{
    struct skopeo_line l;
    memset(&l, 0x5a, sizeof l);
    skopeo_parse_line(line, &l);
    if (!memchr(l.digest, '\0', sizeof l.digest))
        abort();
    for (const char *p = l.digest; *p; p++)
        if ((unsigned char)*p < 0x20)
            abort();
    if (l.step) {
        bool known = false;
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
            known |= strcmp(l.step, steps[i]) == 0;
        if (!known)
            abort();
        if (l.image_count < 0 || l.image_index < 0 || l.image_index > l.image_count)
            abort(); /* the progress percentage relies on 0 <= i <= n */
    }
    char why[700];
    if (skopeo_check_reference(line, why, sizeof why) && line[0] == '-')
        abort();
    char tr[32];
    skopeo_transport(line, tr, sizeof tr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 16))
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    enum skopeo_error_type t = skopeo_classify_error(text);
    if ((int)t < 0 || t >= SKOPEO_ERR_COUNT || !skopeo_error_type_name(t))
        abort();
    for (char *p = text, *end = text + strlen(text); p <= end;) {
        size_t l = strcspn(p, "\r\n");
        p[l] = '\0';
        one_line(p);
        p += l + 1;
    }
    free(text);
    return 0;
}
