/*
 * nice.h: a program nothing waits on yields the CPU to those that others wait on, on a machine
 * they share: the process takes a nice value, and asks the same of the PostgreSQL backend that
 * does its work when that backend runs on this machine.
 */
#ifndef ES_NICE_H
#define ES_NICE_H

#include <libpq-fe.h>

/* Set the calling thread's nice value to `nice` (0..19); threads it creates afterwards inherit
 * it, so call it before starting any. Returns 0, or -1 with the reason in errstr. */
int es_nice_self(int nice, char *errstr, size_t errstr_size);

/* Set the nice value of `pg`'s (borrowed) server backend to `nice`, when that backend is a
 * process of this machine: its pid (PQbackendPID) names a PostgreSQL backend here whose client
 * is `pg`'s own socket (its local port; or a Unix socket). Returns 1 when done, 0 when it is
 * not (nothing changed), or -1 with the reason in errstr (e.g. no permission). */
int es_nice_pg_backend(PGconn *pg, int nice, char *errstr, size_t errstr_size);

#endif
