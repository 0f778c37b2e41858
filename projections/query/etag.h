/*
 * etag.h: validators for the query service's answers (HTTP conditional requests, RFC 9110).
 *
 * A read model changes whenever an event is projected, so no answer can be trusted for a fixed
 * time; what a client or a cache can do is keep an answer and ask whether it still holds. Each
 * answer carries an ETag, a digest of its body, with `Cache-Control: no-cache` (keep it, but
 * ask before using it); a GET that names that tag in If-None-Match gets 304 Not Modified and no
 * body while the read model still says the same. The service still reads the read model to
 * know; what is saved is the body on the wire, and a client's work to tell that nothing moved
 * (a poller waiting for an order's status, a browser revisiting a page).
 *
 * Pure functions: no I/O.
 */
#ifndef ES_QUERY_ETAG_H
#define ES_QUERY_ETAG_H

#include <stddef.h>

/* The quoted tag ("<16 hex digits>") of the body, written into `out` (at least
 * ES_QUERY_ETAG_SIZE bytes, NUL-terminated). Equal bodies have equal tags. */
#define ES_QUERY_ETAG_SIZE 19
void es_query_etag(const void *body, size_t len, char *out);

/* 1 if the If-None-Match header value `header` (borrowed; may be NULL) matches `etag` (a tag
 * from es_query_etag()): "*", or a comma-separated list of tags, each weak (W/"...") or
 * strong, compared weakly as RFC 9110 asks for this header. 0 otherwise, a malformed value
 * included (then the full answer goes, as without the header). */
int es_query_etag_match(const char *header, const char *etag);

#endif
