/* json_bound: see json_bound.h. */
#include "json_bound.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* What json-c allocates per value (measured with json-c 0.16, rounded up):
 * an object 784 bytes (a 16-slot hash table), an array 144 (32 slots), a
 * scalar 64 plus a string's bytes, an object member's key about 80. */
#define JD_COST_OBJECT 800u
#define JD_COST_ARRAY  160u
#define JD_COST_VALUE  80u
#define JD_COST_KEY    96u

size_t json_parse_cost(const char *p, size_t len, size_t *objects, size_t *arrays,
                       size_t *values, unsigned *depth)
{
    size_t o = 0, a = 0, sep = 0, keys = 0, cost = len;
    unsigned d = 0, maxd = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        switch (c) {
        case '"':
            in_str = true;
            break;
        case '{':
        case '[':
            if (c == '{')
                o++;
            else
                a++;
            if (++d > maxd)
                maxd = d;
            break;
        case '}':
        case ']':
            if (d)
                d--;
            break;
        case ',':
            sep++;
            break;
        case ':':
            keys++;
            break;
        default:
            break;
        }
    }
    if (objects)
        *objects = o;
    if (arrays)
        *arrays = a;
    if (values)
        *values = sep + 1;
    if (depth)
        *depth = maxd;
    if (maxd > JSON_MAX_DEPTH)
        return SIZE_MAX;
    /* at most len / 2 of each: no overflow for any len that fits memory */
    cost += o * JD_COST_OBJECT + a * JD_COST_ARRAY + (sep + 1) * JD_COST_VALUE + keys * JD_COST_KEY;
    return cost;
}

json_object *json_parse_bounded(const char *p, size_t len, size_t max_cost, char *why,
                                size_t why_len)
{
    size_t o = 0, a = 0, v = 0;
    unsigned depth = 0;
    size_t cost = json_parse_cost(p, len, &o, &a, &v, &depth);
    if (cost == SIZE_MAX) {
        snprintf(why, why_len, "JSON nested %u deep (more than %d)", depth, JSON_MAX_DEPTH);
        return NULL;
    }
    if (cost > max_cost) {
        snprintf(why, why_len,
                 "%zu bytes of JSON with %zu objects, %zu arrays and %zu values would take about "
                 "%zu MiB to parse (limit %zu MiB)",
                 len, o, a, v, cost >> 20, max_cost >> 20);
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
    if (!tok) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    json_object *j = json_tokener_parse_ex(tok, p, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!j || je != json_tokener_success) {
        json_object_put(j);
        snprintf(why, why_len, "not JSON (%s)", json_tokener_error_desc(je));
        return NULL;
    }
    return j;
}
