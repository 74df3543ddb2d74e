/* The table of built-in collectors: adding one touches its own file in
 * collectors/ and this list, nothing else. */
#include "collector.h"

extern const struct collector collector_nexus_status;

const struct collector *const builtin_collectors[] = {
    &collector_nexus_status,
};
const size_t n_builtin_collectors = NS_ARRAY_LEN(builtin_collectors);
