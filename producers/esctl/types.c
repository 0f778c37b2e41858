/*
 * types.c: `esctl types`: every command and event type the codec knows, with its topic, the
 * field that is the Kafka key, and its fields with their Avro types, read from the embedded
 * current schemas. Text for people by default, JSON lines with --json.
 */
#include "esctl.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(FILE *out)
{
    fprintf(out, "usage: esctl types [--json] [--kind command|event]\n"
                 "\n"
                 "Lists every type: name, kind, topic, key field (the Kafka key and aggregate id)\n"
                 "and fields. Only command types can be sent with \"esctl send\".\n"
                 "\n"
                 "flags:\n"
                 "  --json           one JSON object per line instead of text\n"
                 "  --kind KIND      only commands or only events          default: both\n"
                 "\n");
    esctl_common_help(out);
}

/* Append a short rendering of an Avro type (borrowed JSON) to out: "string", "long",
 * "null|string", "enum{A,B}", "array<string>", the record name for records. */
static void type_render(es_buf_t *out, const json_t *t)
{
    if (json_is_string(t)) {
        es_buf_puts(out, json_string_value(t));
    } else if (json_is_array(t)) {
        size_t i;
        json_t *v;
        json_array_foreach(t, i, v)
        {
            if (i) {
                es_buf_puts(out, "|");
            }
            type_render(out, v);
        }
    } else if (json_is_object(t)) {
        const char *kind = json_string_value(json_object_get(t, "type"));
        const char *logical = json_string_value(json_object_get(t, "logicalType"));
        if (!kind) {
            es_buf_puts(out, "?");
        } else if (!strcmp(kind, "enum")) {
            es_buf_puts(out, "enum{");
            size_t i;
            json_t *v;
            json_array_foreach(json_object_get(t, "symbols"), i, v)
            {
                es_buf_printf(out, "%s%s", i ? "," : "", json_string_value(v));
            }
            es_buf_puts(out, "}");
        } else if (!strcmp(kind, "array")) {
            es_buf_puts(out, "array<");
            type_render(out, json_object_get(t, "items"));
            es_buf_puts(out, ">");
        } else if (!strcmp(kind, "map")) {
            es_buf_puts(out, "map<");
            type_render(out, json_object_get(t, "values"));
            es_buf_puts(out, ">");
        } else if (!strcmp(kind, "record") || !strcmp(kind, "fixed")) {
            const char *name = json_string_value(json_object_get(t, "name"));
            es_buf_puts(out, name ? name : kind);
        } else {
            es_buf_puts(out, kind);
        }
        if (logical) {
            es_buf_printf(out, "(%s)", logical);
        }
    } else {
        es_buf_puts(out, "?");
    }
}

int esctl_types_main(esctl_t *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {ESCTL_COMMON_LONG,
                                             {"json", no_argument, NULL, 'j'},
                                             {"kind", required_argument, NULL, 'k'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int as_json = 0, kind = -1, opt;
    while ((opt = getopt_long(argc, argv, ESCTL_COMMON_SHORT "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            help(stdout);
            return ESCTL_OK;
        case 'j':
            as_json = 1;
            break;
        case 'k':
            if (!strcmp(optarg, "command")) {
                kind = ES_KIND_COMMAND;
            } else if (!strcmp(optarg, "event")) {
                kind = ES_KIND_EVENT;
            } else {
                esctl_err(ctx, "--kind must be \"command\" or \"event\", not \"%s\"", optarg);
                return ESCTL_USAGE;
            }
            break;
        default:
            if (esctl_other_opt(ctx, opt, optarg, argv) != 0) {
                return ESCTL_USAGE;
            }
        }
    }
    if (optind < argc) {
        esctl_err(ctx, "unexpected argument \"%s\"", argv[optind]);
        return ESCTL_USAGE;
    }

    char errstr[512];
    es_codec_t *codec = es_codec_new(errstr, sizeof(errstr));
    if (!codec) {
        esctl_err(ctx, "%s", errstr);
        return ESCTL_FAIL;
    }
    es_buf_t line;
    es_buf_init(&line);
    const es_type_t *type;
    for (size_t i = 0; (type = es_codec_type_at(codec, i)) != NULL; i++) {
        if (kind >= 0 && (int)es_type_kind(type) != kind) {
            continue;
        }
        json_error_t jerr;
        json_t *schema = json_loads(es_type_schema_json(type), 0, &jerr);
        json_t *fields = json_object_get(schema, "fields");
        const char *kname = es_type_kind(type) == ES_KIND_COMMAND ? "command" : "event";
        es_buf_reset(&line);
        if (as_json) {
            json_t *farr = json_array();
            size_t j;
            json_t *f;
            json_array_foreach(fields, j, f)
            {
                es_buf_t t;
                es_buf_init(&t);
                type_render(&t, json_object_get(f, "type"));
                json_t *fo =
                    json_pack("{s:s?, s:s?}", "name", json_string_value(json_object_get(f, "name")),
                              "type", t.data ? (const char *)t.data : "?");
                const json_t *doc = json_object_get(f, "doc");
                if (json_is_string(doc)) {
                    json_object_set(fo, "doc", (json_t *)doc);
                }
                json_array_append_new(farr, fo);
                es_buf_fini(&t);
            }
            json_t *o =
                json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "type", es_type_name(type), "kind",
                          kname, "context", es_type_context(type), "topic", es_type_topic(type),
                          "key", es_type_key_field(type), "fields", farr);
            char *s = json_dumps(o, JSON_COMPACT);
            es_buf_printf(&line, "%s\n", s ? s : "{}");
            free(s);
            json_decref(o);
        } else {
            es_buf_printf(&line, "%-24s %-7s %-22s key=%s\n", es_type_name(type), kname,
                          es_type_topic(type), es_type_key_field(type));
            size_t j;
            json_t *f;
            json_array_foreach(fields, j, f)
            {
                es_buf_t t;
                es_buf_init(&t);
                type_render(&t, json_object_get(f, "type"));
                const char *doc = json_string_value(json_object_get(f, "doc"));
                es_buf_printf(&line, "    %-22s %-12s %s\n",
                              json_string_value(json_object_get(f, "name")),
                              t.data ? (const char *)t.data : "?", doc ? doc : "");
                es_buf_fini(&t);
            }
        }
        json_decref(schema);
        fwrite(line.data, 1, line.len, stdout);
    }
    es_buf_fini(&line);
    es_codec_destroy(codec);
    return fflush(stdout) == 0 ? ESCTL_OK : ESCTL_FAIL;
}
