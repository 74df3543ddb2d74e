/* eio_shim: an LD_PRELOAD library that fails writes and syncs with EIO on
 * files under one directory, to test how the spool survives a failing disk.
 *
 *   EIO_SHIM_DIR=/path/to/spool          files whose path starts with it fail
 *   EIO_SHIM_FLAG=/path/to/flag          optional: armed only while it exists
 *                                        (touch / rm it to start / clear the fault)
 *   EIO_SHIM_OPS=write,fsync             optional: which calls fail (default
 *                                        both): write = write, writev, pwrite,
 *                                        pwritev; fsync = fsync, fdatasync
 *
 * The path of a descriptor is read from /proc/self/fd (an O_TMPFILE file
 * shows its directory). Every failure appends a line (the call) to
 * EIO_SHIM_DIR.eio_shim.count, beside the directory, so a test can prove
 * that the fault was hit. Anything else goes to the real call (dlsym
 * RTLD_NEXT). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static bool op_enabled(const char *op)
{
    const char *ops = getenv("EIO_SHIM_OPS");
    return !ops || !*ops || strstr(ops, op) != NULL;
}

static void count_failure(const char *dir, const char *op)
{
    char p[4200];
    snprintf(p, sizeof p, "%s.eio_shim.count", dir);
    int (*real_open)(const char *, int, ...) =
        (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    int fd = real_open ? real_open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
    if (fd < 0)
        return;
    ssize_t (*real_write)(int, const void *, size_t) =
        (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    char line[64];
    int n = snprintf(line, sizeof line, "%s\n", op);
    if (real_write && real_write(fd, line, (size_t)n) < 0) {
        /* nothing to do: the count is best effort */
    }
    close(fd);
}

/* true: this call on fd must fail with EIO */
static bool must_fail(int fd, const char *op)
{
    const char *dir = getenv("EIO_SHIM_DIR");
    if (!dir || !*dir || fd < 0 || !op_enabled(op))
        return false;
    const char *flag = getenv("EIO_SHIM_FLAG");
    struct stat st;
    if (flag && *flag && stat(flag, &st) != 0)
        return false;
    char lnk[64], path[4096];
    snprintf(lnk, sizeof lnk, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(lnk, path, sizeof path - 1);
    if (n <= 0)
        return false;
    path[n] = '\0';
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    if (strncmp(path, dir, dl) != 0 || (path[dl] != '/' && path[dl] != '\0'))
        return false;
    count_failure(dir, op);
    return true;
}

#define REAL(ret, name, ...)                                                                       \
    static ret (*real)(__VA_ARGS__);                                                               \
    if (!real)                                                                                     \
        real = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, name);

ssize_t write(int fd, const void *b, size_t n)
{
    REAL(ssize_t, "write", int, const void *, size_t)
    if (must_fail(fd, "write")) {
        errno = EIO;
        return -1;
    }
    return real(fd, b, n);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(ssize_t, "writev", int, const struct iovec *, int)
    if (must_fail(fd, "write")) {
        errno = EIO;
        return -1;
    }
    return real(fd, iov, cnt);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off)
{
    REAL(ssize_t, "pwrite", int, const void *, size_t, off_t)
    if (must_fail(fd, "write")) {
        errno = EIO;
        return -1;
    }
    return real(fd, b, n, off);
}

ssize_t pwrite64(int fd, const void *b, size_t n, off_t off)
{
    REAL(ssize_t, "pwrite64", int, const void *, size_t, off_t)
    if (must_fail(fd, "write")) {
        errno = EIO;
        return -1;
    }
    return real(fd, b, n, off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    REAL(ssize_t, "pwritev", int, const struct iovec *, int, off_t)
    if (must_fail(fd, "write")) {
        errno = EIO;
        return -1;
    }
    return real(fd, iov, cnt, off);
}

int fsync(int fd)
{
    REAL(int, "fsync", int)
    if (must_fail(fd, "fsync")) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}

int fdatasync(int fd)
{
    REAL(int, "fdatasync", int)
    if (must_fail(fd, "fsync")) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}
