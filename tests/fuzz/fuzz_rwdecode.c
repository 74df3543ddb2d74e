/* libFuzzer target: snappy + protobuf-c decoding of a remote-write payload
 * (what `spool replay` and the tests read back). Never a crash. */
#include <stdint.h>

#include "remote_write.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct err e;
    rw_decoded_free(rw_decode(data, size, &e));
    return 0;
}
