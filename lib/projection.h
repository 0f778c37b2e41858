/*
 * projection.h: what makes a projector program. A projection is a set of read models in one
 * PostgreSQL schema, kept by a service on the shared runtime (service.h) whose handler only
 * writes views (it is idempotent: every write is guarded by a version, a key or a terminal
 * state). Beside running live, every projection can be rebuilt from the complete log while
 * the platform runs and swapped in atomically (`<program> --rebuild <name>`, which
 * `esctl rebuild <name>` runs).
 */
#ifndef ES_PROJECTION_H
#define ES_PROJECTION_H

#include "config.h"
#include "service.h"

#define ES_PROJECTION_MAX_TOPICS 8

typedef struct es_projection {
    const char *name;          /* "ledger": what --rebuild and `esctl rebuild` call it */
    const char *program;       /* "es-projector": for messages */
    const char *schema;        /* the live schema, "projections"; the rebuild works in
                                * <schema>_rebuild and swaps it in under this name */
    const char *const *topics; /* what it reads, NULL-terminated, at most 8 */
    int swap_lock;             /* advisory lock id: every live batch takes it shared (the
                                * def's begin_sql), the swap takes it exclusively */
    /* Fill the projection's own part of `def` (name, ddl, wants, handle, opaque); def_fini
     * frees what def_init allocated. What every projection shares is filled in by this
     * module: the schema, the topics, the dead-letter topic projections.dlq, the shared swap
     * lock taken by every batch, batches of up to 5000, idempotent handling (every write is
     * guarded by a version, a key or a terminal state) and asynchronous commits (a commit lost
     * in an OS crash is redone from the positions before it). */
    void (*def_init)(es_service_def_t *def);
    void (*def_fini)(es_service_def_t *def);
    const char *about; /* --help's description */
} es_projection_t;

/* The whole main() of a projector: `--rebuild <name>` rebuilds, anything else runs the
 * projection live (es_service_main). `proj` is borrowed. Returns the exit status. */
int es_projection_main(int argc, char **argv, const es_projection_t *proj);

/* Rebuild `proj` (borrowed) from offset 0 while the platform runs, then swap it in
 * atomically. Draws a progress bar on stderr. Returns 0 or -1 (error printed). */
int es_projection_rebuild(es_config_t *cfg, const es_projection_t *proj);

#endif
