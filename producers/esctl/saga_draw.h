/*
 * saga_draw.h: a saga's timeline drawn for people, from the JSON of GET /sagas/{id}
 * (docs/SAGAS.md): a sequence diagram with one lane per service, one row per step, and an
 * arrow from the lane of the service whose record caused the step to the lane of the service
 * that emitted it. As text for a terminal, and as an SVG picture. Pure: no I/O.
 */
#ifndef ESCTL_SAGA_DRAW_H
#define ESCTL_SAGA_DRAW_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"

/* Append the text diagram of `saga` (borrowed) to `out`, at most `width` columns wide where
 * it can be (lanes narrow down to fit; labels are cut last). With `color`, ANSI colours mark
 * failures red, completions green and timeouts yellow. Returns 0, or -1 with errstr filled
 * when the JSON lacks what a timeline needs (saga_id, status, steps; each step's service and
 * type as strings). */
int esctl_saga_draw_text(const json_t *saga, int width, int color, es_buf_t *out, char *errstr,
                         size_t errstr_size);

/* Append a standalone SVG document of the same diagram to `out`. Every string from the JSON
 * is escaped for XML. Returns 0, or -1 with errstr as above. */
int esctl_saga_draw_svg(const json_t *saga, es_buf_t *out, char *errstr, size_t errstr_size);

/* "+41 ms", "+1.25 s", "+2m05s", "+3h20m": an elapsed time for people, at most 8 characters
 * below 100 hours (out: caller storage). */
void esctl_saga_elapsed(long long ms, char *out, size_t size);

#endif
