/*
 * log.c: structured one-line logs on stderr (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static char log_service[64] = "es";
static es_log_level_t log_min = ES_LOG_INFO;

const char *es_log_service(void)
{
    return log_service;
}

void es_log_init(const char *service)
{
    snprintf(log_service, sizeof(log_service), "%s", service);
    const char *lvl = getenv("ES_LOG_LEVEL");
    if (lvl) {
        if (!strcasecmp(lvl, "debug")) {
            log_min = ES_LOG_DEBUG;
        } else if (!strcasecmp(lvl, "warn")) {
            log_min = ES_LOG_WARN;
        } else if (!strcasecmp(lvl, "error")) {
            log_min = ES_LOG_ERROR;
        }
    }
}

void es_log(es_log_level_t level, const char *msg, const char *kvfmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < log_min) {
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s msg=\"%s\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[level], log_service, msg);
    if (kvfmt && *kvfmt && n > 0 && (size_t)n < sizeof(line) - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, kvfmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, kvfmt, ap);
        va_end(ap);
        if (m > 0) {
            n += m;
        }
    }
    if (n < 0 || (size_t)n >= sizeof(line) - 1) {
        n = (int)sizeof(line) - 2;
    }
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}
