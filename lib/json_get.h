/*
 * json_get.h: reading a field of a decoded payload without trusting it. The codec validated a
 * payload against its schema, but services still read every field defensively: a missing or
 * mistyped one reads as a default the rules refuse.
 */
#ifndef ES_JSON_GET_H
#define ES_JSON_GET_H

#include <jansson.h>

/* The string `key` of `obj` (borrowed from obj), or `dflt` when obj is not an object, the key
 * is missing or its value is not a string. */
static inline const char *es_json_str_or(const json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : dflt;
}

/* The same with "" for a missing string. */
static inline const char *es_json_str(const json_t *obj, const char *key)
{
    return es_json_str_or(obj, key, "");
}

#endif
