/*
 * json.h: the few JSON writing helpers the query service needs, appending to an es_buf_t.
 * Values from the database are written as they are typed there: text as escaped strings,
 * bigint as JSON integers (never through a double), boolean as true/false, NULL as null.
 */
#ifndef ES_QUERY_JSON_H
#define ES_QUERY_JSON_H

#include <libpq-fe.h>

#include "buf.h"

/* Append `s` (borrowed, NUL-terminated) as a quoted, escaped JSON string. 0 or -1 (no memory).
 * Bytes below 0x20, '"', '\\' and 0x7f are escaped; other bytes are copied as they are. */
int es_query_json_str(es_buf_t *buf, const char *s);

/* Append `"key":` then column `col` of row `row` of `res` (borrowed) as a string, or null. */
int es_query_json_text(es_buf_t *buf, const char *key, const PGresult *res, int row, int col);

/* The same for an integer column (its text is copied as-is after checking it is an integer;
 * anything else becomes null). */
int es_query_json_int(es_buf_t *buf, const char *key, const PGresult *res, int row, int col);

/* The same for a column holding JSON text (a jsonb cast to text: valid JSON by construction),
 * copied as it is; NULL -> null. */
int es_query_json_raw(es_buf_t *buf, const char *key, const PGresult *res, int row, int col);

/* The same for a boolean column ("t"/"f" -> true/false). */
int es_query_json_bool(es_buf_t *buf, const char *key, const PGresult *res, int row, int col);

#endif
