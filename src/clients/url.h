/* url: the URL primitives every client shares, on libcurl's own parser
 * (curl_url) and escaper (curl_easy_escape) rather than hand-written
 * ones: splitting a URL into scheme, host and port, its origin
 * (scheme://host[:port], which decides where credentials may go), the
 * rel="next" target of an RFC 8288 Link header, and percent-encoding.
 *
 * Pure functions: nothing is retained; outputs go to caller buffers
 * (truncation is a failure, never a silently shortened answer). They do
 * not log; a failure is a -1 / false return and the caller names the URL
 * in its own error. */
#ifndef NS_URL_H
#define NS_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Splits a URL into scheme-is-https, host (brackets of IPv6 removed) and
 * port (the scheme's default when absent). Any out pointer may be NULL
 * (host with hostlen 0). Returns 0, or -1 for a URL libcurl does not
 * parse, without a host, or a host longer than hostlen - 1. */
int url_split(const char *url, bool *https, char *host, size_t hostlen, int *port);

/* out <- "scheme://host[:port]" of url (scheme lower case, port only when
 * the URL names one, no user info, IPv6 in brackets). Returns 0, or -1
 * with out = "" when url has no scheme and host or out is too small. */
int url_origin(const char *url, char *out, size_t n);

/* The target of the entry of a Link header value whose parameters say
 * rel="next" ("<a>; rel=\"prev\", <b>; rel=\"next\"" -> "b"), not simply
 * the first <...>. Returns true with the target in out; false when no
 * entry is rel="next" or the target does not fit in n. */
bool link_next(const char *link, char *out, size_t n);

/* Appends s percent-encoded for a URL path segment or query value
 * (every byte but A-Z a-z 0-9 - . _ ~). Returns 0 or -1 (out of memory). */
int url_escape(const char *s, struct buf *out);

#endif
