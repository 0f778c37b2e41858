/*
 * projector.h: the ledger projector's pieces shared by its two modes: live (a service on the
 * shared runtime, consuming accounts.events and transfers.events) and rebuild (the same
 * handler fed from the complete log into a shadow schema, then swapped in).
 */
#ifndef PROJECTOR_H
#define PROJECTOR_H

#include "config.h"
#include "service.h"

/* The advisory lock every live batch takes shared and a rebuild's swap takes exclusively. */
#define PROJECTOR_SWAP_LOCK 74020

/* Fill `def` for the ledger projection writing into `schema` (borrowed). */
void projector_def_init(es_service_def_t *def, const char *schema);
void projector_def_fini(es_service_def_t *def);

/* Rebuild `projection` ("ledger") from offset 0 while the platform runs, then swap it in
 * atomically. Draws a progress bar on stderr. Returns 0 or -1 (error printed). */
int projector_rebuild(es_config_t *cfg, const char *projection);

#endif
