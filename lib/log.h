/*
 * log.h: one line per event on stderr:
 *   2026-11-26T12:00:00.123Z INFO accounts msg="..." key=value ...
 * The service name is set once by main(). Callers pass the message and key=value pairs
 * already formatted: es_log_info("batch committed", "topic=%s partition=%d", t, p).
 */
#ifndef ES_LOG_H
#define ES_LOG_H

typedef enum { ES_LOG_DEBUG = 0, ES_LOG_INFO, ES_LOG_WARN, ES_LOG_ERROR } es_log_level_t;

/* Set the service name shown on every line (copied). ES_LOG_LEVEL=debug|info|warn|error. */
void es_log_init(const char *service);
/* The service name set by es_log_init ("es" before it); owned by the logger. */
const char *es_log_service(void);
void es_log(es_log_level_t level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

#define es_log_debug(msg, ...) es_log(ES_LOG_DEBUG, msg, __VA_ARGS__)
#define es_log_info(msg, ...) es_log(ES_LOG_INFO, msg, __VA_ARGS__)
#define es_log_warn(msg, ...) es_log(ES_LOG_WARN, msg, __VA_ARGS__)
#define es_log_error(msg, ...) es_log(ES_LOG_ERROR, msg, __VA_ARGS__)

#endif
