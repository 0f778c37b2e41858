/*
 * codec.c: the schema registry and the Avro single-object codec.
 *
 * Each embedded schema is parsed twice: by avro-c (for the binary reader and writer of its
 * generic values) and into a small tree of our own (node_t), which carries what avro-c does
 * not expose: field defaults, the Parsing Canonical Form and the JSON mapping. Both come from
 * the same JSON text, so field, branch and symbol indexes agree.
 *
 * Schema resolution (an older writer version read as the current reader schema) is done by
 * us while converting the decoded writer value to JSON: avro-c's resolved writer cannot fill
 * reader fields that the writer lacks from their defaults, which is the whole point of adding
 * a field with a default.
 */
#include "codec.h"

#include <avro.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "schemas_embedded.h"

/* Largest single allocation avro-c may make: anything above is a hostile or corrupt length.
 * avro-c's decoder checks what its allocator returns; its setters do not (a string or an array
 * grown past the cap wrote through NULL), so encoding keeps far below it: ES_ENCODE_MAX. */
#define ES_AVRO_ALLOC_MAX ((size_t)16 << 20)
/* Single-object header: marker (2 bytes) + fingerprint (8 bytes). */
#define ES_SO_HEADER 10
#define ES_CRC64_EMPTY UINT64_C(0xc15d213aa4d7a795)

typedef enum {
    N_NULL,
    N_BOOLEAN,
    N_INT,
    N_LONG,
    N_FLOAT,
    N_DOUBLE,
    N_BYTES,
    N_STRING,
    N_RECORD,
    N_ENUM,
    N_ARRAY,
    N_MAP,
    N_UNION,
    N_FIXED
} node_kind_t;

typedef struct node node_t;

typedef struct field {
    const char *name; /* borrowed from the schema's JSON document */
    node_t *type;
    const json_t *deflt; /* borrowed; NULL when the field has no default */
} field_t;

struct node {
    node_kind_t kind;
    char *fullname;        /* named types only (owned) */
    const char *shortname; /* points into fullname */
    field_t *fields;       /* records (owned array) */
    size_t nfields;
    const char **symbols; /* enums (owned array of borrowed strings) */
    size_t nsymbols;
    const char *enum_default; /* borrowed, NULL when none */
    node_t *items;            /* array items, map values */
    node_t **branches;        /* unions (owned array) */
    size_t nbranches;
    int64_t size;  /* fixed */
    unsigned mark; /* PCF: last pass that printed this named type */
    node_t *next;  /* every node of one schema, for freeing */
};

/* One schema tree and the named types it defines. */
typedef struct tree {
    json_t *doc; /* owns every borrowed string in the nodes */
    node_t *root;
    node_t *all;
} tree_t;

/* One embedded schema file: a writer schema, and the reader one when version == 0. */
typedef struct ver {
    const es_embedded_schema_t *emb;
    tree_t tree;
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value; /* scratch for encoding and decoding */
    int has_value;
    uint64_t fingerprint;
    es_type_t *type; /* the current type of the same name */
} ver_t;

struct es_type {
    const char *name;
    const char *context;
    es_kind_t kind;
    char topic[96];
    const char *key_field; /* borrowed from the current schema's document */
    ver_t *current;
};

typedef struct fp_entry {
    uint64_t fingerprint;
    ver_t *ver;
} fp_entry_t;

struct es_codec {
    ver_t *vers;
    size_t nvers;
    es_type_t *types; /* commands and events */
    size_t ntypes;
    es_type_t envelope;
    const char **contexts;
    size_t ncontexts;
    fp_entry_t *by_fp; /* sorted by fingerprint */
    avro_reader_t reader;
    avro_writer_t writer;
    char path[256]; /* field path while validating */
    size_t budget;  /* what the payload being encoded may still take (ES_ENCODE_MAX) */
    size_t items;   /* array items and map entries it holds so far (ES_CODEC_ITEMS_MAX) */
};

static void seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;

    if (errstr == NULL || errstr_size == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

/* avro-c's messages start with a capital letter; ours do not. */
static const char *avro_err(char *buf, size_t size)
{
    const char *msg = avro_strerror();

    snprintf(buf, size, "%s", msg != NULL && *msg != '\0' ? msg : "unknown error");
    if (buf[0] >= 'A' && buf[0] <= 'Z') {
        buf[0] = (char)(buf[0] - 'A' + 'a');
    }
    return buf;
}

/* ---- the capped allocator ---------------------------------------------------------------- */

static void *capped_alloc(void *user_data, void *ptr, size_t osize, size_t nsize)
{
    (void)user_data;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (nsize > ES_AVRO_ALLOC_MAX) {
        return NULL;
    }
    return realloc(ptr, nsize);
}

static pthread_once_t allocator_once = PTHREAD_ONCE_INIT;

static void allocator_install(void)
{
    avro_set_allocator(capped_alloc, NULL);
}

/* ---- CRC-64-AVRO ------------------------------------------------------------------------- */

static uint64_t crc64_table[256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static void crc64_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint64_t fp = i;
        for (int j = 0; j < 8; j++) {
            fp = (fp >> 1) ^ (ES_CRC64_EMPTY & (0 - (fp & 1)));
        }
        crc64_table[i] = fp;
    }
}

static uint64_t crc64_avro(const unsigned char *data, size_t len)
{
    uint64_t fp = ES_CRC64_EMPTY;

    pthread_once(&crc64_once, crc64_init);
    for (size_t i = 0; i < len; i++) {
        fp = (fp >> 8) ^ crc64_table[(fp ^ data[i]) & 0xff];
    }
    return fp;
}

/* ---- schema trees ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    node_kind_t kind;
} primitives[] = {
    {"null", N_NULL},   {"boolean", N_BOOLEAN}, {"int", N_INT},     {"long", N_LONG},
    {"float", N_FLOAT}, {"double", N_DOUBLE},   {"bytes", N_BYTES}, {"string", N_STRING},
};

static const char *kind_name(node_kind_t kind)
{
    static const char *const names[] = {"null",   "boolean", "int",    "long",   "float",
                                        "double", "bytes",   "string", "record", "enum",
                                        "array",  "map",     "union",  "fixed"};
    return names[kind];
}

static int primitive_kind(const char *name, node_kind_t *kind)
{
    for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++) {
        if (strcmp(name, primitives[i].name) == 0) {
            *kind = primitives[i].kind;
            return 1;
        }
    }
    return 0;
}

static node_t *node_new(tree_t *tree, node_kind_t kind)
{
    node_t *node = calloc(1, sizeof(*node));

    if (node == NULL) {
        return NULL;
    }
    node->kind = kind;
    node->next = tree->all;
    tree->all = node;
    return node;
}

static void tree_fini(tree_t *tree)
{
    node_t *node = tree->all;

    while (node != NULL) {
        node_t *next = node->next;
        free(node->fullname);
        free(node->fields);
        free(node->symbols);
        free(node->branches);
        free(node);
        node = next;
    }
    json_decref(tree->doc);
    memset(tree, 0, sizeof(*tree));
}

static node_t *tree_lookup(const tree_t *tree, const char *fullname)
{
    for (node_t *node = tree->all; node != NULL; node = node->next) {
        if (node->fullname != NULL && strcmp(node->fullname, fullname) == 0) {
            return node;
        }
    }
    return NULL;
}

/* Full name of `name` seen in namespace `ns` (malloc'd). */
static char *make_fullname(const char *name, const char *ns)
{
    size_t nlen = strlen(name);
    size_t slen = (strchr(name, '.') == NULL && ns != NULL) ? strlen(ns) : 0;
    char *out = malloc(nlen + slen + 2);

    if (out == NULL) {
        return NULL;
    }
    if (slen > 0) {
        memcpy(out, ns, slen);
        out[slen] = '.';
        memcpy(out + slen + 1, name, nlen + 1);
    } else {
        memcpy(out, name, nlen + 1);
    }
    return out;
}

static int parse_node(tree_t *tree, const json_t *j, const char *ns, node_t **out, char *errstr,
                      size_t errstr_size);

static int parse_named(tree_t *tree, const json_t *j, const char *type, const char *ns,
                       node_t **out, char *errstr, size_t errstr_size)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *own_ns = json_string_value(json_object_get(j, "namespace"));
    node_kind_t kind = strcmp(type, "record") == 0 || strcmp(type, "error") == 0 ? N_RECORD
                       : strcmp(type, "enum") == 0                               ? N_ENUM
                                                                                 : N_FIXED;
    node_t *node;
    const char *dot;

    if (name == NULL || *name == '\0') {
        seterr(errstr, errstr_size, "a %s has no name", type);
        return -1;
    }
    if (own_ns != NULL && *own_ns != '\0') {
        ns = own_ns;
    } else if (own_ns != NULL) {
        ns = NULL;
    }
    node = node_new(tree, kind);
    if (node == NULL || (node->fullname = make_fullname(name, ns)) == NULL) {
        seterr(errstr, errstr_size, "out of memory");
        return -1;
    }
    dot = strrchr(node->fullname, '.');
    node->shortname = dot != NULL ? dot + 1 : node->fullname;
    /* Registered before its fields are parsed so that a record may refer to itself. */
    for (node_t *other = node->next; other != NULL; other = other->next) {
        if (other->fullname != NULL && strcmp(other->fullname, node->fullname) == 0) {
            seterr(errstr, errstr_size, "type \"%s\" is defined twice", node->fullname);
            return -1;
        }
    }
    *out = node;

    if (kind == N_RECORD) {
        const json_t *fields = json_object_get(j, "fields");
        char *inner_ns = NULL;
        int rc = 0;

        if (!json_is_array(fields)) {
            seterr(errstr, errstr_size, "record \"%s\" has no fields array", node->fullname);
            return -1;
        }
        node->nfields = json_array_size(fields);
        node->fields = calloc(node->nfields + 1, sizeof(field_t));
        if (dot != NULL) {
            inner_ns = strndup(node->fullname, (size_t)(dot - node->fullname));
        }
        if (node->fields == NULL || (dot != NULL && inner_ns == NULL)) {
            free(inner_ns);
            seterr(errstr, errstr_size, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < node->nfields && rc == 0; i++) {
            const json_t *f = json_array_get(fields, i);
            field_t *field = &node->fields[i];

            field->name = json_string_value(json_object_get(f, "name"));
            if (field->name == NULL) {
                seterr(errstr, errstr_size, "record \"%s\": field %zu has no name", node->fullname,
                       i);
                rc = -1;
                break;
            }
            for (size_t k = 0; k < i; k++) {
                if (strcmp(node->fields[k].name, field->name) == 0) {
                    seterr(errstr, errstr_size, "record \"%s\": field \"%s\" is defined twice",
                           node->fullname, field->name);
                    rc = -1;
                }
            }
            field->deflt = json_object_get(f, "default");
            if (rc == 0) {
                rc = parse_node(tree, json_object_get(f, "type"), inner_ns, &field->type, errstr,
                                errstr_size);
            }
        }
        free(inner_ns);
        return rc;
    }
    if (kind == N_ENUM) {
        const json_t *symbols = json_object_get(j, "symbols");

        if (!json_is_array(symbols)) {
            seterr(errstr, errstr_size, "enum \"%s\" has no symbols array", node->fullname);
            return -1;
        }
        node->nsymbols = json_array_size(symbols);
        node->symbols = calloc(node->nsymbols + 1, sizeof(char *));
        if (node->symbols == NULL) {
            seterr(errstr, errstr_size, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < node->nsymbols; i++) {
            node->symbols[i] = json_string_value(json_array_get(symbols, i));
            if (node->symbols[i] == NULL) {
                seterr(errstr, errstr_size, "enum \"%s\": symbol %zu is not a string",
                       node->fullname, i);
                return -1;
            }
        }
        node->enum_default = json_string_value(json_object_get(j, "default"));
        return 0;
    }
    if (!json_is_integer(json_object_get(j, "size")) ||
        json_integer_value(json_object_get(j, "size")) < 0) {
        seterr(errstr, errstr_size, "fixed \"%s\" has no valid size", node->fullname);
        return -1;
    }
    node->size = (int64_t)json_integer_value(json_object_get(j, "size"));
    return 0;
}

static int parse_node(tree_t *tree, const json_t *j, const char *ns, node_t **out, char *errstr,
                      size_t errstr_size)
{
    node_kind_t kind;

    if (json_is_string(j)) {
        const char *name = json_string_value(j);
        char *full;

        if (primitive_kind(name, &kind)) {
            *out = node_new(tree, kind);
            if (*out == NULL) {
                seterr(errstr, errstr_size, "out of memory");
                return -1;
            }
            return 0;
        }
        full = make_fullname(name, ns);
        if (full == NULL) {
            seterr(errstr, errstr_size, "out of memory");
            return -1;
        }
        *out = tree_lookup(tree, full);
        if (*out == NULL && strchr(name, '.') == NULL) {
            *out = tree_lookup(tree, name); /* a name in the null namespace */
        }
        if (*out == NULL) {
            seterr(errstr, errstr_size, "unknown type \"%s\"", full);
            free(full);
            return -1;
        }
        free(full);
        return 0;
    }
    if (json_is_array(j)) {
        node_t *node = node_new(tree, N_UNION);

        if (node == NULL) {
            seterr(errstr, errstr_size, "out of memory");
            return -1;
        }
        node->nbranches = json_array_size(j);
        node->branches = calloc(node->nbranches + 1, sizeof(node_t *));
        if (node->branches == NULL) {
            seterr(errstr, errstr_size, "out of memory");
            return -1;
        }
        *out = node;
        for (size_t i = 0; i < node->nbranches; i++) {
            if (parse_node(tree, json_array_get(j, i), ns, &node->branches[i], errstr,
                           errstr_size) != 0) {
                return -1;
            }
            if (node->branches[i]->kind == N_UNION) {
                seterr(errstr, errstr_size, "a union may not contain a union");
                return -1;
            }
        }
        return 0;
    }
    if (json_is_object(j)) {
        const json_t *type = json_object_get(j, "type");
        const char *t = json_string_value(type);

        if (t == NULL) {
            /* {"type": {...}} or {"type": [...]}: the schema is the inner one */
            if (type == NULL) {
                seterr(errstr, errstr_size, "a schema object has no type");
                return -1;
            }
            return parse_node(tree, type, ns, out, errstr, errstr_size);
        }
        if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0 || strcmp(t, "enum") == 0 ||
            strcmp(t, "fixed") == 0) {
            return parse_named(tree, j, t, ns, out, errstr, errstr_size);
        }
        if (strcmp(t, "array") == 0 || strcmp(t, "map") == 0) {
            node_t *node = node_new(tree, t[0] == 'a' ? N_ARRAY : N_MAP);

            if (node == NULL) {
                seterr(errstr, errstr_size, "out of memory");
                return -1;
            }
            *out = node;
            return parse_node(tree, json_object_get(j, t[0] == 'a' ? "items" : "values"), ns,
                              &node->items, errstr, errstr_size);
        }
        /* a primitive, possibly with a logicalType or other attributes, or a named reference */
        return parse_node(tree, type, ns, out, errstr, errstr_size);
    }
    seterr(errstr, errstr_size, "a schema must be a string, an object or an array");
    return -1;
}

/* Parse a schema document (stolen into the tree, even on failure). */
static int tree_parse(tree_t *tree, json_t *doc, char *errstr, size_t errstr_size)
{
    memset(tree, 0, sizeof(*tree));
    tree->doc = doc;
    return parse_node(tree, doc, NULL, &tree->root, errstr, errstr_size);
}

/* ---- Parsing Canonical Form -------------------------------------------------------------- */

static int pcf_string(es_buf_t *out, const char *s)
{
    char *dumped;
    json_t *j = json_string(s);
    int rc;

    if (j == NULL) {
        return -1;
    }
    dumped = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    if (dumped == NULL) {
        return -1;
    }
    rc = es_buf_puts(out, dumped);
    free(dumped);
    return rc;
}

static int pcf_write(const node_t *node, unsigned pass, es_buf_t *out)
{
    node_t *named = (node_t *)node; /* only `mark` is written */
    int rc = 0;

    switch (node->kind) {
    case N_RECORD:
    case N_ENUM:
    case N_FIXED:
        if (node->mark == pass) {
            return pcf_string(out, node->fullname);
        }
        named->mark = pass;
        rc |= es_buf_puts(out, "{\"name\":");
        rc |= pcf_string(out, node->fullname);
        rc |= es_buf_printf(out, ",\"type\":\"%s\"", kind_name(node->kind));
        if (node->kind == N_RECORD) {
            rc |= es_buf_puts(out, ",\"fields\":[");
            for (size_t i = 0; i < node->nfields && rc == 0; i++) {
                rc |= es_buf_puts(out, i > 0 ? ",{\"name\":" : "{\"name\":");
                rc |= pcf_string(out, node->fields[i].name);
                rc |= es_buf_puts(out, ",\"type\":");
                rc |= pcf_write(node->fields[i].type, pass, out);
                rc |= es_buf_puts(out, "}");
            }
            rc |= es_buf_puts(out, "]");
        } else if (node->kind == N_ENUM) {
            rc |= es_buf_puts(out, ",\"symbols\":[");
            for (size_t i = 0; i < node->nsymbols && rc == 0; i++) {
                if (i > 0) {
                    rc |= es_buf_puts(out, ",");
                }
                rc |= pcf_string(out, node->symbols[i]);
            }
            rc |= es_buf_puts(out, "]");
        } else {
            rc |= es_buf_printf(out, ",\"size\":%" PRId64, node->size);
        }
        rc |= es_buf_puts(out, "}");
        return rc;
    case N_ARRAY:
    case N_MAP:
        rc |= es_buf_printf(out, "{\"type\":\"%s\",\"%s\":", kind_name(node->kind),
                            node->kind == N_ARRAY ? "items" : "values");
        rc |= pcf_write(node->items, pass, out);
        rc |= es_buf_puts(out, "}");
        return rc;
    case N_UNION:
        rc |= es_buf_puts(out, "[");
        for (size_t i = 0; i < node->nbranches && rc == 0; i++) {
            if (i > 0) {
                rc |= es_buf_puts(out, ",");
            }
            rc |= pcf_write(node->branches[i], pass, out);
        }
        rc |= es_buf_puts(out, "]");
        return rc;
    default:
        return es_buf_printf(out, "\"%s\"", kind_name(node->kind));
    }
}

static int tree_fingerprint(tree_t *tree, uint64_t *fingerprint, es_buf_t *canonical)
{
    es_buf_t local;
    es_buf_t *out;
    size_t start;
    int rc;

    es_buf_init(&local);
    out = canonical != NULL ? canonical : &local;
    start = out->len;
    for (node_t *node = tree->all; node != NULL; node = node->next) {
        node->mark = 0;
    }
    rc = pcf_write(tree->root, 1, out);
    if (rc == 0) {
        *fingerprint = crc64_avro(out->data + start, out->len - start);
    }
    es_buf_fini(&local);
    return rc == 0 ? 0 : -1;
}

int es_codec_fingerprint(const char *schema_json, uint64_t *fingerprint, es_buf_t *canonical,
                         char *errstr, size_t errstr_size)
{
    json_error_t jerr;
    json_t *doc = json_loads(schema_json, JSON_DECODE_ANY, &jerr);
    tree_t tree;
    int rc;

    if (doc == NULL) {
        seterr(errstr, errstr_size, "could not parse schema JSON: %s (line %d)", jerr.text,
               jerr.line);
        return -1;
    }
    if (tree_parse(&tree, doc, errstr, errstr_size) != 0) {
        tree_fini(&tree);
        return -1;
    }
    rc = tree_fingerprint(&tree, fingerprint, canonical);
    if (rc != 0) {
        seterr(errstr, errstr_size, "out of memory");
    }
    tree_fini(&tree);
    return rc;
}

/* ---- JSON -> avro value ------------------------------------------------------------------ */

static const char *json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static const char *expected_kind(const node_t *node)
{
    switch (node->kind) {
    case N_NULL:
        return "null";
    case N_BOOLEAN:
        return "a boolean";
    case N_INT:
    case N_LONG:
        return "an integer";
    case N_FLOAT:
    case N_DOUBLE:
        return "a number";
    case N_BYTES:
    case N_STRING:
    case N_FIXED:
        return "a string";
    case N_ENUM:
        return "a symbol string";
    case N_ARRAY:
        return "an array";
    default:
        return "an object";
    }
}

/* Report a problem at the current field path. */
static int path_err(es_codec_t *codec, char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int path_err(es_codec_t *codec, char *errstr, size_t errstr_size, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (codec->path[0] == '\0') {
        seterr(errstr, errstr_size, "payload: %s", msg);
    } else {
        seterr(errstr, errstr_size, "field \"%s\": %s", codec->path, msg);
    }
    return -1;
}

static size_t path_push(es_codec_t *codec, const char *name)
{
    size_t len = strlen(codec->path);

    snprintf(codec->path + len, sizeof(codec->path) - len, "%s%s", len > 0 ? "." : "", name);
    return len;
}

static size_t path_push_index(es_codec_t *codec, size_t idx)
{
    size_t len = strlen(codec->path);

    snprintf(codec->path + len, sizeof(codec->path) - len, "[%zu]", idx);
    return len;
}

/* Decode the Avro JSON form of bytes (one code point 0..255 per byte) from a UTF-8 string.
 * Returns the byte count, or -1 when a code point is above 255. `out` holds len bytes. */
static long bytes_from_json(const char *s, size_t len, unsigned char *out)
{
    size_t n = 0;

    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out[n++] = c;
            i++;
        } else if ((c & 0xe0) == 0xc0 && i + 1 < len && c <= 0xc3) {
            out[n++] = (unsigned char)(((c & 0x1f) << 6) | ((unsigned char)s[i + 1] & 0x3f));
            i += 2;
        } else {
            return -1;
        }
    }
    return (long)n;
}

static int json_accepts(const node_t *node, const json_t *j)
{
    switch (node->kind) {
    case N_NULL:
        return json_is_null(j);
    case N_BOOLEAN:
        return json_is_boolean(j);
    case N_INT:
        return json_is_integer(j) && json_integer_value(j) >= INT32_MIN &&
               json_integer_value(j) <= INT32_MAX;
    case N_LONG:
        return json_is_integer(j);
    case N_FLOAT:
    case N_DOUBLE:
        return json_is_number(j);
    case N_STRING:
    case N_BYTES:
    case N_FIXED:
        return json_is_string(j);
    case N_ENUM:
        if (json_is_string(j)) {
            for (size_t i = 0; i < node->nsymbols; i++) {
                if (strcmp(node->symbols[i], json_string_value(j)) == 0) {
                    return 1;
                }
            }
        }
        return 0;
    case N_RECORD:
    case N_MAP:
        return json_is_object(j);
    case N_ARRAY:
        return json_is_array(j);
    default:
        return 0;
    }
}

static int from_json(es_codec_t *codec, const node_t *node, avro_value_t *v, const json_t *j,
                     char *errstr, size_t errstr_size);

static int record_from_json(es_codec_t *codec, const node_t *node, avro_value_t *v, const json_t *j,
                            char *errstr, size_t errstr_size)
{
    const char *key;
    json_t *val;

    json_object_foreach((json_t *)j, key, val)
    {
        size_t i;
        for (i = 0; i < node->nfields; i++) {
            if (strcmp(node->fields[i].name, key) == 0) {
                break;
            }
        }
        if (i == node->nfields) {
            size_t mark = path_push(codec, key);
            path_err(codec, errstr, errstr_size, "unknown field");
            codec->path[mark] = '\0';
            return -1;
        }
    }
    for (size_t i = 0; i < node->nfields; i++) {
        const field_t *field = &node->fields[i];
        const json_t *fv = json_object_get(j, field->name);
        size_t mark = path_push(codec, field->name);
        avro_value_t child;

        if (fv == NULL) {
            fv = field->deflt;
        }
        if (fv == NULL) {
            path_err(codec, errstr, errstr_size, "missing required field");
            codec->path[mark] = '\0';
            return -1;
        }
        if (avro_value_get_by_index(v, i, &child, NULL) != 0 ||
            from_json(codec, field->type, &child, fv, errstr, errstr_size) != 0) {
            codec->path[mark] = '\0';
            return -1;
        }
        codec->path[mark] = '\0';
    }
    return 0;
}

/* Take `n` of the payload's budget (ES_ENCODE_MAX): a string or bytes value its length and
 * 10, any other value 10, and an array item 64 more (avro-c keeps an array's items in one
 * block, ~100 bytes each for two fields). Returns 0, or -1 with the error when the payload
 * is larger. */
#define ES_ENCODE_ITEM_COST 64
static int budget_take(es_codec_t *codec, size_t n, char *errstr, size_t errstr_size)
{
    if (n > codec->budget) {
        codec->budget = 0;
        return path_err(codec, errstr, errstr_size, "the payload is too large (more than %d MiB)",
                        ES_ENCODE_MAX >> 20);
    }
    codec->budget -= n;
    return 0;
}

/* One more array item or map entry: a record holds at most ES_CODEC_ITEMS_MAX, or it could
 * not be decoded. Returns 0, or -1 with the error. */
static int items_take(es_codec_t *codec, char *errstr, size_t errstr_size)
{
    if (++codec->items > ES_CODEC_ITEMS_MAX) {
        return path_err(codec, errstr, errstr_size, "too many items (more than %d in a record)",
                        ES_CODEC_ITEMS_MAX);
    }
    return 0;
}

static int from_json(es_codec_t *codec, const node_t *node, avro_value_t *v, const json_t *j,
                     char *errstr, size_t errstr_size)
{
    int rc = 0;

    if (budget_take(codec, json_is_string(j) ? json_string_length(j) + 10 : 10, errstr,
                    errstr_size) != 0) {
        return -1;
    }
    if (node->kind == N_UNION) {
        avro_value_t branch;

        for (size_t i = 0; i < node->nbranches; i++) {
            if (json_accepts(node->branches[i], j)) {
                if (avro_value_set_branch(v, (int)i, &branch) != 0) {
                    return path_err(codec, errstr, errstr_size, "could not select branch %zu", i);
                }
                return from_json(codec, node->branches[i], &branch, j, errstr, errstr_size);
            }
        }
        {
            char want[256] = "";
            for (size_t i = 0; i < node->nbranches; i++) {
                size_t len = strlen(want);
                snprintf(want + len, sizeof(want) - len, "%s%s", i > 0 ? " or " : "",
                         expected_kind(node->branches[i]));
            }
            return path_err(codec, errstr, errstr_size, "expected %s, got %s", want, json_kind(j));
        }
    }
    if (node->kind == N_INT && json_is_integer(j) && !json_accepts(node, j)) {
        return path_err(codec, errstr, errstr_size,
                        "integer %" JSON_INTEGER_FORMAT " out of int range", json_integer_value(j));
    }
    if (node->kind == N_ENUM && json_is_string(j) && !json_accepts(node, j)) {
        char syms[256] = "";
        for (size_t i = 0; i < node->nsymbols; i++) {
            size_t len = strlen(syms);
            snprintf(syms + len, sizeof(syms) - len, "%s%s", i > 0 ? ", " : "", node->symbols[i]);
        }
        return path_err(codec, errstr, errstr_size, "unknown symbol \"%s\" (expected one of %s)",
                        json_string_value(j), syms);
    }
    if (!json_accepts(node, j)) {
        return path_err(codec, errstr, errstr_size, "expected %s, got %s", expected_kind(node),
                        json_kind(j));
    }

    switch (node->kind) {
    case N_NULL:
        rc = avro_value_set_null(v);
        break;
    case N_BOOLEAN:
        rc = avro_value_set_boolean(v, json_is_true(j));
        break;
    case N_INT:
        rc = avro_value_set_int(v, (int32_t)json_integer_value(j));
        break;
    case N_LONG:
        rc = avro_value_set_long(v, (int64_t)json_integer_value(j));
        break;
    case N_FLOAT:
        rc = avro_value_set_float(v, (float)json_number_value(j));
        break;
    case N_DOUBLE:
        rc = avro_value_set_double(v, json_number_value(j));
        break;
    case N_STRING: {
        const char *s = json_string_value(j);
        size_t len = json_string_length(j);
        if (memchr(s, '\0', len) != NULL) {
            return path_err(codec, errstr, errstr_size, "string contains a NUL character");
        }
        rc = avro_value_set_string_len(v, s, len + 1);
        break;
    }
    case N_BYTES:
    case N_FIXED: {
        size_t len = json_string_length(j);
        unsigned char *bytes = malloc(len + 1);
        long n;
        if (bytes == NULL) {
            return path_err(codec, errstr, errstr_size, "out of memory");
        }
        n = bytes_from_json(json_string_value(j), len, bytes);
        if (n < 0) {
            free(bytes);
            return path_err(codec, errstr, errstr_size,
                            "bytes must be a string of code points 0 to 255");
        }
        if (node->kind == N_FIXED && n != node->size) {
            free(bytes);
            return path_err(codec, errstr, errstr_size, "expected %" PRId64 " bytes, got %ld",
                            node->size, n);
        }
        rc = node->kind == N_FIXED ? avro_value_set_fixed(v, bytes, (size_t)n)
                                   : avro_value_set_bytes(v, bytes, (size_t)n);
        free(bytes);
        break;
    }
    case N_ENUM:
        for (size_t i = 0; i < node->nsymbols; i++) {
            if (strcmp(node->symbols[i], json_string_value(j)) == 0) {
                rc = avro_value_set_enum(v, (int)i);
                break;
            }
        }
        break;
    case N_RECORD:
        return record_from_json(codec, node, v, j, errstr, errstr_size);
    case N_ARRAY: {
        size_t idx;
        json_t *item;
        rc = avro_value_reset(v);
        json_array_foreach(j, idx, item)
        {
            avro_value_t child;
            size_t mark = path_push_index(codec, idx);
            if (budget_take(codec, ES_ENCODE_ITEM_COST, errstr, errstr_size) != 0 ||
                items_take(codec, errstr, errstr_size) != 0) {
                codec->path[mark] = '\0';
                return -1;
            }
            if (rc == 0 && avro_value_append(v, &child, NULL) == 0) {
                rc = from_json(codec, node->items, &child, item, errstr, errstr_size);
            } else {
                rc = path_err(codec, errstr, errstr_size, "could not append an item");
            }
            codec->path[mark] = '\0';
            if (rc != 0) {
                return -1;
            }
        }
        break;
    }
    case N_MAP: {
        const char *key;
        json_t *item;
        rc = avro_value_reset(v);
        json_object_foreach((json_t *)j, key, item)
        {
            avro_value_t child;
            size_t mark = path_push(codec, key);
            if (budget_take(codec, ES_ENCODE_ITEM_COST, errstr, errstr_size) != 0 ||
                items_take(codec, errstr, errstr_size) != 0) {
                codec->path[mark] = '\0';
                return -1;
            }
            if (rc == 0 && avro_value_add(v, key, &child, NULL, NULL) == 0) {
                rc = from_json(codec, node->items, &child, item, errstr, errstr_size);
            } else {
                rc = path_err(codec, errstr, errstr_size, "could not add a map entry");
            }
            codec->path[mark] = '\0';
            if (rc != 0) {
                return -1;
            }
        }
        break;
    }
    default:
        break;
    }
    if (rc != 0) {
        char buf[256];
        return path_err(codec, errstr, errstr_size, "could not set value: %s",
                        avro_err(buf, sizeof(buf)));
    }
    return 0;
}

/* ---- avro value -> JSON (with schema resolution) ----------------------------------------- */

/* Can a writer value of `w` be read as `r` (for non-union w and r)? */
static int node_matches(const node_t *w, const node_t *r)
{
    if (w->kind == r->kind) {
        if (w->fullname != NULL) {
            return strcmp(w->shortname, r->shortname) == 0;
        }
        return 1;
    }
    switch (w->kind) {
    case N_INT:
        return r->kind == N_LONG || r->kind == N_FLOAT || r->kind == N_DOUBLE;
    case N_LONG:
        return r->kind == N_FLOAT || r->kind == N_DOUBLE;
    case N_FLOAT:
        return r->kind == N_DOUBLE;
    case N_STRING:
        return r->kind == N_BYTES;
    case N_BYTES:
        return r->kind == N_STRING;
    default:
        return 0;
    }
}

/* The reader schema that reads writer `w` (non-union) given reader `r`, or NULL. */
static const node_t *reader_for(const node_t *w, const node_t *r)
{
    if (r->kind != N_UNION) {
        return node_matches(w, r) ? r : NULL;
    }
    for (size_t i = 0; i < r->nbranches; i++) {
        if (r->branches[i]->kind == w->kind && node_matches(w, r->branches[i])) {
            return r->branches[i];
        }
    }
    for (size_t i = 0; i < r->nbranches; i++) {
        if (node_matches(w, r->branches[i])) {
            return r->branches[i];
        }
    }
    return NULL;
}

static json_t *bytes_to_json(const unsigned char *p, size_t len)
{
    char *buf = malloc(len * 2 + 1);
    size_t n = 0;
    json_t *j;

    if (buf == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] < 0x80) {
            buf[n++] = (char)p[i];
        } else {
            buf[n++] = (char)(0xc0 | (p[i] >> 6));
            buf[n++] = (char)(0x80 | (p[i] & 0x3f));
        }
    }
    j = json_stringn(buf, n);
    free(buf);
    return j;
}

static int to_json(const node_t *w, const node_t *r, avro_value_t *v, json_t **out, char *errstr,
                   size_t errstr_size);

static int record_to_json(const node_t *w, const node_t *r, avro_value_t *v, json_t **out,
                          char *errstr, size_t errstr_size)
{
    json_t *obj = json_object();

    if (obj == NULL) {
        seterr(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (size_t ri = 0; ri < r->nfields; ri++) {
        const field_t *rf = &r->fields[ri];
        size_t wi = ri;
        json_t *child = NULL;
        avro_value_t cv;

        if (w != r) {
            for (wi = 0; wi < w->nfields; wi++) {
                if (strcmp(w->fields[wi].name, rf->name) == 0) {
                    break;
                }
            }
        }
        if (wi == w->nfields) {
            /* checked when the registry was built: such a field has a default */
            child = rf->deflt != NULL ? json_deep_copy(rf->deflt) : NULL;
            if (child == NULL) {
                json_decref(obj);
                seterr(errstr, errstr_size, "field \"%s\": no value and no default", rf->name);
                return -1;
            }
        } else if (avro_value_get_by_index(v, wi, &cv, NULL) != 0 ||
                   to_json(w->fields[wi].type, rf->type, &cv, &child, errstr, errstr_size) != 0) {
            json_decref(obj);
            return -1;
        }
        if (json_object_set_new_nocheck(obj, rf->name, child) != 0) {
            json_decref(obj);
            seterr(errstr, errstr_size, "out of memory");
            return -1;
        }
    }
    *out = obj;
    return 0;
}

static int to_json(const node_t *w, const node_t *r, avro_value_t *v, json_t **out, char *errstr,
                   size_t errstr_size)
{
    json_t *j = NULL;
    int rc = 0;

    if (w->kind == N_UNION) {
        int disc = -1;
        avro_value_t branch;
        const node_t *wb;
        const node_t *rb;

        if (avro_value_get_discriminant(v, &disc) != 0 || disc < 0 ||
            (size_t)disc >= w->nbranches || avro_value_get_current_branch(v, &branch) != 0) {
            seterr(errstr, errstr_size, "invalid union branch %d", disc);
            return -1;
        }
        wb = w->branches[disc];
        rb = w == r ? wb : reader_for(wb, r);
        if (rb == NULL) {
            seterr(errstr, errstr_size, "a %s value does not fit the reader schema",
                   kind_name(wb->kind));
            return -1;
        }
        return to_json(wb, rb, &branch, out, errstr, errstr_size);
    }
    if (w != r) {
        const node_t *rr = reader_for(w, r);
        if (rr == NULL) {
            seterr(errstr, errstr_size, "a %s value does not fit the reader schema",
                   kind_name(w->kind));
            return -1;
        }
        r = rr;
    }

    switch (w->kind) {
    case N_NULL:
        j = json_null();
        break;
    case N_BOOLEAN: {
        int b = 0;
        rc = avro_value_get_boolean(v, &b);
        j = json_boolean(b);
        break;
    }
    case N_INT: {
        int32_t i = 0;
        rc = avro_value_get_int(v, &i);
        j = (r->kind == N_FLOAT || r->kind == N_DOUBLE) ? json_real(i) : json_integer(i);
        break;
    }
    case N_LONG: {
        int64_t l = 0;
        rc = avro_value_get_long(v, &l);
        j = (r->kind == N_FLOAT || r->kind == N_DOUBLE) ? json_real((double)l)
                                                        : json_integer((json_int_t)l);
        break;
    }
    case N_FLOAT: {
        float f = 0;
        rc = avro_value_get_float(v, &f);
        j = json_real(f);
        break;
    }
    case N_DOUBLE: {
        double d = 0;
        rc = avro_value_get_double(v, &d);
        j = json_real(d);
        break;
    }
    case N_STRING: {
        const char *s = NULL;
        size_t size = 0;
        rc = avro_value_get_string(v, &s, &size);
        if (rc == 0) {
            /* size counts the terminating NUL; json_stringn rejects invalid UTF-8 */
            j = json_stringn(s != NULL ? s : "", size > 0 ? size - 1 : 0);
            if (j == NULL) {
                seterr(errstr, errstr_size, "a string is not valid UTF-8");
                return -1;
            }
        }
        break;
    }
    case N_BYTES:
    case N_FIXED: {
        const void *p = NULL;
        size_t size = 0;
        rc = w->kind == N_BYTES ? avro_value_get_bytes(v, &p, &size)
                                : avro_value_get_fixed(v, &p, &size);
        if (rc == 0) {
            j = bytes_to_json(p, size);
        }
        break;
    }
    case N_ENUM: {
        int idx = -1;
        const char *sym;
        rc = avro_value_get_enum(v, &idx);
        if (rc != 0) {
            break;
        }
        if (idx < 0 || (size_t)idx >= w->nsymbols) {
            seterr(errstr, errstr_size, "enum %s: symbol index %d out of range", w->shortname, idx);
            return -1;
        }
        sym = w->symbols[idx];
        if (w != r) {
            size_t k;
            for (k = 0; k < r->nsymbols; k++) {
                if (strcmp(r->symbols[k], sym) == 0) {
                    break;
                }
            }
            if (k == r->nsymbols) {
                if (r->enum_default == NULL) {
                    seterr(errstr, errstr_size, "enum %s: symbol %s unknown to the reader",
                           w->shortname, sym);
                    return -1;
                }
                sym = r->enum_default;
            }
        }
        j = json_string(sym);
        break;
    }
    case N_RECORD:
        return record_to_json(w, r, v, out, errstr, errstr_size);
    case N_ARRAY:
    case N_MAP: {
        size_t n = 0;
        rc = avro_value_get_size(v, &n);
        if (rc != 0) {
            break;
        }
        j = w->kind == N_ARRAY ? json_array() : json_object();
        for (size_t i = 0; i < n && j != NULL; i++) {
            avro_value_t cv;
            const char *key = NULL;
            json_t *child = NULL;
            if (avro_value_get_by_index(v, i, &cv, &key) != 0 ||
                to_json(w->items, r->items, &cv, &child, errstr, errstr_size) != 0) {
                json_decref(j);
                return -1;
            }
            if ((w->kind == N_ARRAY ? json_array_append_new(j, child)
                                    : json_object_set_new(j, key != NULL ? key : "", child)) != 0) {
                json_decref(j);
                seterr(errstr, errstr_size, "could not build a JSON container");
                return -1;
            }
        }
        break;
    }
    default:
        break;
    }
    if (rc != 0) {
        char buf[256];
        json_decref(j);
        seterr(errstr, errstr_size, "could not read a %s value: %s", kind_name(w->kind),
               avro_err(buf, sizeof(buf)));
        return -1;
    }
    if (j == NULL) {
        seterr(errstr, errstr_size, "out of memory");
        return -1;
    }
    *out = j;
    return 0;
}

/* ---- compatibility of older versions ----------------------------------------------------- */

static int compatible(const node_t *w, const node_t *r, char *errstr, size_t errstr_size, int depth)
{
    if (depth > 32) {
        return 0; /* recursive types: assume the rest was checked on the way in */
    }
    if (w->kind == N_UNION) {
        for (size_t i = 0; i < w->nbranches; i++) {
            if (compatible(w->branches[i], r, errstr, errstr_size, depth + 1) != 0) {
                return -1;
            }
        }
        return 0;
    }
    {
        const node_t *rr = reader_for(w, r);
        if (rr == NULL) {
            seterr(errstr, errstr_size, "a writer %s cannot be read as %s", kind_name(w->kind),
                   kind_name(r->kind));
            return -1;
        }
        r = rr;
    }
    if (w->kind == N_RECORD) {
        for (size_t ri = 0; ri < r->nfields; ri++) {
            size_t wi;
            for (wi = 0; wi < w->nfields; wi++) {
                if (strcmp(w->fields[wi].name, r->fields[ri].name) == 0) {
                    break;
                }
            }
            if (wi == w->nfields) {
                if (r->fields[ri].deflt == NULL) {
                    seterr(errstr, errstr_size,
                           "field \"%s\" is missing from the writer and has no default",
                           r->fields[ri].name);
                    return -1;
                }
            } else if (compatible(w->fields[wi].type, r->fields[ri].type, errstr, errstr_size,
                                  depth + 1) != 0) {
                return -1;
            }
        }
    } else if (w->kind == N_ARRAY || w->kind == N_MAP) {
        return compatible(w->items, r->items, errstr, errstr_size, depth + 1);
    } else if (w->kind == N_FIXED && w->size != r->size) {
        seterr(errstr, errstr_size, "fixed %s changed size", w->shortname);
        return -1;
    }
    return 0;
}

/* ---- the registry ------------------------------------------------------------------------ */

static void ver_fini(ver_t *ver)
{
    if (ver->has_value) {
        avro_value_decref(&ver->value);
    }
    if (ver->iface != NULL) {
        avro_value_iface_decref(ver->iface);
    }
    if (ver->schema != NULL) {
        avro_schema_decref(ver->schema);
    }
    tree_fini(&ver->tree);
}

static int ver_init(ver_t *ver, const es_embedded_schema_t *emb, char *errstr, size_t errstr_size)
{
    json_error_t jerr;
    json_t *doc;
    char buf[256];
    char expect[128];

    memset(ver, 0, sizeof(*ver));
    ver->emb = emb;
    doc = json_loads(emb->json, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        seterr(errstr, errstr_size, "could not parse schema %s: %s (line %d)", emb->name, jerr.text,
               jerr.line);
        return -1;
    }
    if (tree_parse(&ver->tree, doc, buf, sizeof(buf)) != 0) {
        seterr(errstr, errstr_size, "could not parse schema %s: %s", emb->name, buf);
        return -1;
    }
    if (ver->tree.root->kind != N_RECORD) {
        seterr(errstr, errstr_size, "schema %s is not a record", emb->name);
        return -1;
    }
    if (emb->context[0] != '\0') {
        snprintf(expect, sizeof(expect), "es.%s.%s", emb->context, emb->name);
    } else {
        snprintf(expect, sizeof(expect), "es.%s", emb->name);
    }
    if (strcmp(ver->tree.root->fullname, expect) != 0) {
        seterr(errstr, errstr_size, "schema file for %s defines \"%s\", expected \"%s\"", emb->name,
               ver->tree.root->fullname, expect);
        return -1;
    }
    if (tree_fingerprint(&ver->tree, &ver->fingerprint, NULL) != 0) {
        seterr(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (avro_schema_from_json_length(emb->json, strlen(emb->json), &ver->schema) != 0) {
        ver->schema = NULL;
        seterr(errstr, errstr_size, "avro could not parse schema %s: %s", emb->name,
               avro_err(buf, sizeof(buf)));
        return -1;
    }
    ver->iface = avro_generic_class_from_schema(ver->schema);
    if (ver->iface == NULL || avro_generic_value_new(ver->iface, &ver->value) != 0) {
        seterr(errstr, errstr_size, "could not create a value for schema %s: %s", emb->name,
               avro_err(buf, sizeof(buf)));
        return -1;
    }
    ver->has_value = 1;
    return 0;
}

static int fp_cmp(const void *a, const void *b)
{
    uint64_t x = ((const fp_entry_t *)a)->fingerprint;
    uint64_t y = ((const fp_entry_t *)b)->fingerprint;

    return x < y ? -1 : x > y;
}

static int type_init(es_codec_t *codec, es_type_t *type, ver_t *ver, char *errstr,
                     size_t errstr_size)
{
    const node_t *root = ver->tree.root;
    const char *key;
    size_t i;

    type->name = ver->emb->name;
    type->context = ver->emb->context;
    type->current = ver;
    ver->type = type;
    if (strcmp(ver->emb->kind, "envelope") == 0) {
        type->kind = ES_KIND_EVENT;
        type->key_field = "aggregate_id";
        return 0;
    }
    if (strcmp(ver->emb->kind, "command") == 0) {
        type->kind = ES_KIND_COMMAND;
    } else if (strcmp(ver->emb->kind, "event") == 0) {
        type->kind = ES_KIND_EVENT;
    } else {
        seterr(errstr, errstr_size, "schema %s has unknown kind \"%s\"", type->name,
               ver->emb->kind);
        return -1;
    }
    snprintf(type->topic, sizeof(type->topic), "%s.%s", type->context,
             type->kind == ES_KIND_COMMAND ? "commands" : "events");
    key = json_string_value(json_object_get(ver->tree.doc, "es.key"));
    if (key == NULL) {
        seterr(errstr, errstr_size, "schema %s has no \"es.key\" attribute", type->name);
        return -1;
    }
    for (i = 0; i < root->nfields; i++) {
        if (strcmp(root->fields[i].name, key) == 0 && root->fields[i].type->kind == N_STRING) {
            break;
        }
    }
    if (i == root->nfields) {
        seterr(errstr, errstr_size, "schema %s: \"es.key\" names no string field \"%s\"",
               type->name, key);
        return -1;
    }
    type->key_field = key;
    for (i = 0; i < codec->ncontexts; i++) {
        if (strcmp(codec->contexts[i], type->context) == 0) {
            return 0;
        }
    }
    codec->contexts[codec->ncontexts++] = type->context;
    return 0;
}

es_codec_t *es_codec_new(char *errstr, size_t errstr_size)
{
    es_codec_t *codec;
    size_t n = es_embedded_schema_count;
    char buf[256];

    pthread_once(&allocator_once, allocator_install);
    codec = calloc(1, sizeof(*codec));
    if (codec == NULL) {
        seterr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    codec->vers = calloc(n + 1, sizeof(ver_t));
    codec->types = calloc(n + 1, sizeof(es_type_t));
    codec->contexts = calloc(n + 1, sizeof(char *));
    codec->by_fp = calloc(n + 1, sizeof(fp_entry_t));
    codec->reader = avro_reader_memory("", 0);
    codec->writer = avro_writer_memory("", 0);
    if (codec->vers == NULL || codec->types == NULL || codec->contexts == NULL ||
        codec->by_fp == NULL || codec->reader == NULL || codec->writer == NULL) {
        seterr(errstr, errstr_size, "out of memory");
        goto err;
    }

    for (size_t i = 0; i < n; i++) {
        if (ver_init(&codec->vers[i], &es_embedded_schemas[i], errstr, errstr_size) != 0) {
            codec->nvers = i + 1;
            goto err;
        }
        codec->nvers = i + 1;
    }

    /* current versions first: they define the types */
    for (size_t i = 0; i < n; i++) {
        ver_t *ver = &codec->vers[i];
        es_type_t *type;

        if (ver->emb->version != 0) {
            continue;
        }
        if (strcmp(ver->emb->kind, "envelope") == 0) {
            if (codec->envelope.current != NULL) {
                seterr(errstr, errstr_size, "two envelope schemas");
                goto err;
            }
            type = &codec->envelope;
        } else {
            if (es_codec_type(codec, ver->emb->name) != NULL) {
                seterr(errstr, errstr_size, "type %s is defined twice", ver->emb->name);
                goto err;
            }
            type = &codec->types[codec->ntypes++];
        }
        if (type_init(codec, type, ver, errstr, errstr_size) != 0) {
            goto err;
        }
    }
    if (codec->envelope.current == NULL) {
        seterr(errstr, errstr_size, "no envelope schema is embedded");
        goto err;
    }

    /* older versions: writer schemas that must resolve to the current one */
    for (size_t i = 0; i < n; i++) {
        ver_t *ver = &codec->vers[i];
        es_type_t *type;

        if (ver->emb->version == 0) {
            continue;
        }
        type = (es_type_t *)es_codec_type(codec, ver->emb->name);
        if (type == NULL) {
            seterr(errstr, errstr_size, "schema %s version %d has no current version",
                   ver->emb->name, ver->emb->version);
            goto err;
        }
        if (compatible(ver->tree.root, type->current->tree.root, buf, sizeof(buf), 0) != 0) {
            seterr(errstr, errstr_size,
                   "schema %s version %d cannot be read with the current version: %s",
                   ver->emb->name, ver->emb->version, buf);
            goto err;
        }
        ver->type = type;
    }

    for (size_t i = 0; i < n; i++) {
        codec->by_fp[i].fingerprint = codec->vers[i].fingerprint;
        codec->by_fp[i].ver = &codec->vers[i];
    }
    qsort(codec->by_fp, n, sizeof(fp_entry_t), fp_cmp);
    for (size_t i = 1; i < n; i++) {
        if (codec->by_fp[i].fingerprint == codec->by_fp[i - 1].fingerprint) {
            seterr(errstr, errstr_size,
                   "schemas %s (version %d) and %s (version %d) have the same fingerprint",
                   codec->by_fp[i - 1].ver->emb->name, codec->by_fp[i - 1].ver->emb->version,
                   codec->by_fp[i].ver->emb->name, codec->by_fp[i].ver->emb->version);
            goto err;
        }
    }
    return codec;

err:
    es_codec_destroy(codec);
    return NULL;
}

void es_codec_destroy(es_codec_t *codec)
{
    if (codec == NULL) {
        return;
    }
    for (size_t i = 0; i < codec->nvers; i++) {
        ver_fini(&codec->vers[i]);
    }
    if (codec->reader != NULL) {
        avro_reader_free(codec->reader);
    }
    if (codec->writer != NULL) {
        avro_writer_free(codec->writer);
    }
    free(codec->vers);
    free(codec->types);
    free(codec->contexts);
    free(codec->by_fp);
    free(codec);
}

const es_type_t *es_codec_type(const es_codec_t *codec, const char *name)
{
    if (codec == NULL || name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < codec->ntypes; i++) {
        if (strcmp(codec->types[i].name, name) == 0) {
            return &codec->types[i];
        }
    }
    return NULL;
}

const es_type_t *es_codec_type_at(const es_codec_t *codec, size_t idx)
{
    return idx < codec->ntypes ? &codec->types[idx] : NULL;
}

const char *es_codec_context_at(const es_codec_t *codec, size_t idx)
{
    return idx < codec->ncontexts ? codec->contexts[idx] : NULL;
}

const char *es_type_name(const es_type_t *type)
{
    return type->name;
}

const char *es_type_context(const es_type_t *type)
{
    return type->context;
}

es_kind_t es_type_kind(const es_type_t *type)
{
    return type->kind;
}

const char *es_type_topic(const es_type_t *type)
{
    return type->topic;
}

const char *es_type_key_field(const es_type_t *type)
{
    return type->key_field;
}

uint64_t es_type_fingerprint(const es_type_t *type)
{
    return type->current->fingerprint;
}

const char *es_type_schema_json(const es_type_t *type)
{
    return type->current->emb->json;
}

/* ---- checking a body before avro-c reads it ------------------------------------------------ */

/* avro-c 1.11 trusts the lengths in its input (and leaks the buffer when a string is shorter
 * than it claims), so every body is walked once against its writer schema first: each length,
 * index and varint is checked against what is really there. A body that passes cannot make
 * avro-c read past its end or allocate more than its own size (plus one) for a value. */

#define SCAN_MAX_DEPTH 64
#define SCAN_MAX_ITEMS 65536 /* items in one block when they may take zero bytes */
#define SCAN_STR0(x) #x
#define SCAN_STR(x) SCAN_STR0(x)

typedef struct scan {
    const unsigned char *p;
    const unsigned char *end;
    const char *why;
    int64_t items; /* array items and map entries so far: at most ES_CODEC_ITEMS_MAX */
} scan_t;

static int scan_varint(scan_t *sc, int max_bytes, int64_t *out)
{
    uint64_t v = 0;

    for (int i = 0; i < max_bytes; i++) {
        unsigned char b;
        if (sc->p >= sc->end) {
            sc->why = "truncated";
            return -1;
        }
        b = *sc->p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    sc->why = "varint too long";
    return -1;
}

static int scan_skip(scan_t *sc, int64_t n)
{
    if (n < 0) {
        sc->why = "negative length";
        return -1;
    }
    if (n > sc->end - sc->p) {
        sc->why = "truncated";
        return -1;
    }
    sc->p += n;
    return 0;
}

static int scan_node(scan_t *sc, const node_t *node, int depth)
{
    int64_t v = 0;

    if (depth > SCAN_MAX_DEPTH) {
        sc->why = "nested too deeply";
        return -1;
    }
    switch (node->kind) {
    case N_NULL:
        return 0;
    case N_BOOLEAN:
        if (sc->p >= sc->end) {
            sc->why = "truncated";
            return -1;
        }
        if (*sc->p > 1) {
            sc->why = "invalid boolean";
            return -1;
        }
        sc->p++;
        return 0;
    case N_INT:
        if (scan_varint(sc, 5, &v) != 0) {
            return -1;
        }
        if (v < INT32_MIN || v > INT32_MAX) {
            sc->why = "int out of range";
            return -1;
        }
        return 0;
    case N_LONG:
        return scan_varint(sc, 10, &v);
    case N_FLOAT:
        return scan_skip(sc, 4);
    case N_DOUBLE:
        return scan_skip(sc, 8);
    case N_BYTES:
    case N_STRING:
        if (scan_varint(sc, 10, &v) != 0) {
            return -1;
        }
        return scan_skip(sc, v);
    case N_FIXED:
        return scan_skip(sc, node->size);
    case N_ENUM:
        if (scan_varint(sc, 10, &v) != 0) {
            return -1;
        }
        if (v < 0 || (uint64_t)v >= node->nsymbols) {
            sc->why = "enum index out of range";
            return -1;
        }
        return 0;
    case N_UNION:
        if (scan_varint(sc, 10, &v) != 0) {
            return -1;
        }
        if (v < 0 || (uint64_t)v >= node->nbranches) {
            sc->why = "union branch out of range";
            return -1;
        }
        return scan_node(sc, node->branches[v], depth + 1);
    case N_RECORD:
        for (size_t i = 0; i < node->nfields; i++) {
            if (scan_node(sc, node->fields[i].type, depth + 1) != 0) {
                return -1;
            }
        }
        return 0;
    case N_ARRAY:
    case N_MAP:
        for (;;) {
            int64_t count;
            int64_t size;
            if (scan_varint(sc, 10, &count) != 0) {
                return -1;
            }
            if (count == 0) {
                return 0;
            }
            if (count < 0) {
                if (count == INT64_MIN || scan_varint(sc, 10, &size) != 0) {
                    sc->why = sc->why != NULL ? sc->why : "invalid block count";
                    return -1;
                }
                count = -count;
            }
            if (count > sc->end - sc->p && count > SCAN_MAX_ITEMS) {
                sc->why = "too many items";
                return -1;
            }
            /* avro-c keeps an array's items in one block that doubles as it grows, and past
             * its allocator's cap it leaves the value broken (the next read or release of it
             * crashed): a record holds at most ES_CODEC_ITEMS_MAX items in all */
            sc->items += count;
            if (sc->items > ES_CODEC_ITEMS_MAX) {
                sc->why = "too many items (more than " SCAN_STR(ES_CODEC_ITEMS_MAX) " in a record)";
                return -1;
            }
            for (int64_t i = 0; i < count; i++) {
                if (node->kind == N_MAP &&
                    (scan_varint(sc, 10, &v) != 0 || scan_skip(sc, v) != 0)) {
                    return -1;
                }
                if (scan_node(sc, node->items, depth + 1) != 0) {
                    return -1;
                }
            }
        }
    }
    sc->why = "unknown schema type";
    return -1;
}

/* ---- encode and decode ------------------------------------------------------------------- */

static void put_header(unsigned char *p, uint64_t fingerprint)
{
    p[0] = 0xC3;
    p[1] = 0x01;
    for (int i = 0; i < 8; i++) {
        p[2 + i] = (unsigned char)(fingerprint >> (8 * i));
    }
}

/* Append the single-object encoding of ver's scratch value to out. */
static int write_value(es_codec_t *codec, ver_t *ver, es_buf_t *out, char *errstr,
                       size_t errstr_size)
{
    size_t size = 0;
    char buf[256];
    unsigned char *p;

    if (avro_value_sizeof(&ver->value, &size) != 0) {
        seterr(errstr, errstr_size, "could not size a %s record: %s", ver->emb->name,
               avro_err(buf, sizeof(buf)));
        return -1;
    }
    if (es_buf_reserve(out, ES_SO_HEADER + size) != 0) {
        seterr(errstr, errstr_size, "out of memory");
        return -1;
    }
    p = out->data + out->len;
    put_header(p, ver->fingerprint);
    avro_writer_memory_set_dest(codec->writer, (const char *)p + ES_SO_HEADER, (int64_t)size);
    if (avro_value_write(codec->writer, &ver->value) != 0) {
        seterr(errstr, errstr_size, "could not write a %s record: %s", ver->emb->name,
               avro_err(buf, sizeof(buf)));
        return -1;
    }
    out->len += ES_SO_HEADER + size;
    return 0;
}

int es_codec_encode(es_codec_t *codec, const es_type_t *type, const json_t *payload, es_buf_t *out,
                    char *errstr, size_t errstr_size)
{
    ver_t *ver;

    if (codec == NULL || type == NULL || payload == NULL || out == NULL) {
        seterr(errstr, errstr_size, "could not encode: missing argument");
        return -1;
    }
    ver = type->current;
    codec->path[0] = '\0';
    codec->budget = ES_ENCODE_MAX;
    codec->items = 0;
    if (!json_is_object(payload)) {
        seterr(errstr, errstr_size, "payload: expected an object, got %s", json_kind(payload));
        return -1;
    }
    if (from_json(codec, ver->tree.root, &ver->value, payload, errstr, errstr_size) != 0) {
        codec->path[0] = '\0';
        return -1;
    }
    return write_value(codec, ver, out, errstr, errstr_size);
}

/* Check the header, find the writer schema and read the body into its scratch value. An
 * envelope is read only when `envelope` is set, anything else only when it is not: a payload
 * is read while the envelope's scratch value still holds its bytes, and an envelope nested as
 * a payload would be read into that same value, freed by the read it is read from. */
static int read_value(es_codec_t *codec, const void *data, size_t len, int envelope, ver_t **verp,
                      char *errstr, size_t errstr_size)
{
    const unsigned char *p = data;
    uint64_t fp = 0;
    fp_entry_t key;
    fp_entry_t *hit;
    ver_t *ver;
    char buf[256];
    scan_t sc;

    if (p == NULL || len < ES_SO_HEADER || p[0] != 0xC3 || p[1] != 0x01) {
        seterr(errstr, errstr_size, "not single-object encoded");
        return -1;
    }
    for (int i = 0; i < 8; i++) {
        fp |= (uint64_t)p[2 + i] << (8 * i);
    }
    key.fingerprint = fp;
    key.ver = NULL;
    hit = bsearch(&key, codec->by_fp, codec->nvers, sizeof(fp_entry_t), fp_cmp);
    if (hit == NULL) {
        seterr(errstr, errstr_size, "unknown schema fingerprint 0x%016" PRIx64, fp);
        return -1;
    }
    ver = hit->ver;
    if (envelope && ver != codec->envelope.current) {
        seterr(errstr, errstr_size, "expected an envelope, got a %s record", ver->emb->name);
        return -1;
    }
    if (!envelope && (ver == codec->envelope.current || ver->type == &codec->envelope)) {
        seterr(errstr, errstr_size,
               "could not decode: this is an envelope, not a command or event");
        return -1;
    }
    sc.p = p + ES_SO_HEADER;
    sc.end = p + len;
    sc.why = NULL;
    sc.items = 0;
    if (scan_node(&sc, ver->tree.root, 0) != 0) {
        seterr(errstr, errstr_size, "could not decode a %s record: %s", ver->emb->name,
               sc.why != NULL ? sc.why : "malformed");
        return -1;
    }
    if (sc.p != sc.end) {
        seterr(errstr, errstr_size, "could not decode a %s record: %zu trailing bytes",
               ver->emb->name, (size_t)(sc.end - sc.p));
        return -1;
    }
    avro_reader_memory_set_source(codec->reader, (const char *)p + ES_SO_HEADER,
                                  (int64_t)(len - ES_SO_HEADER));
    if (avro_value_read(codec->reader, &ver->value) != 0) {
        seterr(errstr, errstr_size, "could not decode a %s record: %s", ver->emb->name,
               avro_err(buf, sizeof(buf)));
        return -1;
    }
    *verp = ver;
    return 0;
}

int es_codec_decode(es_codec_t *codec, const void *data, size_t len, const es_type_t **type,
                    json_t **payload, char *errstr, size_t errstr_size)
{
    ver_t *ver;
    json_t *j = NULL;
    char buf[256];

    if (read_value(codec, data, len, 0, &ver, errstr, errstr_size) != 0) {
        return -1;
    }
    if (to_json(ver->tree.root, ver->type->current->tree.root, &ver->value, &j, buf, sizeof(buf)) !=
        0) {
        seterr(errstr, errstr_size, "could not decode a %s record: %s", ver->emb->name, buf);
        return -1;
    }
    *type = ver->type;
    *payload = j;
    return 0;
}

/* ---- the envelope (codec_internal.h) ----------------------------------------------------- */

avro_value_t *es_codec_envelope_value(es_codec_t *codec)
{
    return codec->envelope.current != NULL ? &codec->envelope.current->value : NULL;
}

int es_codec_envelope_write(es_codec_t *codec, es_buf_t *out, char *errstr, size_t errstr_size)
{
    return write_value(codec, codec->envelope.current, out, errstr, errstr_size);
}

int es_codec_envelope_read(es_codec_t *codec, const void *data, size_t len, avro_value_t **value,
                           char *errstr, size_t errstr_size)
{
    ver_t *ver;

    if (read_value(codec, data, len, 1, &ver, errstr, errstr_size) != 0) {
        return -1;
    }
    *value = &ver->value;
    return 0;
}
