/* libFuzzer target: the configuration parser (config_load) on arbitrary
 * file contents. Any input must give a config or an error message, never
 * a crash, leak or undefined behaviour. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/fuzz-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    struct err e;
    struct config *c = config_load(path, &e);
    config_free(c);
    unlink(path);
    return 0;
}
