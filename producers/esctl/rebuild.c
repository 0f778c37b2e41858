/*
 * rebuild.c: `esctl rebuild <projection>...`: run the projection's projector, which sits next
 * to esctl's own executable, in rebuild mode, once per projection, in order:
 *   es-projector --rebuild ledger [-d DIR] [-b BROKERS] [-X P=V]...
 *   es-shop-projector --rebuild shop [...]
 * One projection: esctl becomes the projector (exec). Several: each runs to completion and the
 * first failure stops the rest. The common flags given to esctl are passed through as given;
 * the environment is inherited. The projector does the work and draws its own progress bar.
 */
#include "esctl.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define REBUILD_MAX_ARGS 256

/* Which program keeps which projection. */
static const struct {
    const char *name, *program;
} projectors[] = {{"ledger", "es-projector"}, {"shop", "es-shop-projector"}};

static const char *projector_of(const char *projection)
{
    for (size_t i = 0; i < sizeof(projectors) / sizeof(projectors[0]); i++) {
        if (!strcmp(projectors[i].name, projection)) {
            return projectors[i].program;
        }
    }
    return NULL;
}

static void help(FILE *out)
{
    fprintf(out, "usage: esctl rebuild <projection> [<projection>...]\n"
                 "\n"
                 "Rebuilds read models from the complete log (journal + broker) while the\n"
                 "platform runs, and swaps them in atomically. Projections:\n"
                 "  ledger   accounts, entries, transfers (es-projector --rebuild ledger)\n"
                 "  shop     users, products, orders (es-shop-projector --rebuild shop)\n"
                 "The projector is found next to esctl; the common flags below are passed on.\n"
                 "\n");
    esctl_common_help(out);
    fprintf(out, "\nenvironment: ES_PG (the read models' PostgreSQL) and everything else is\n"
                 "inherited by es-projector.\n");
}

int esctl_rebuild_main(esctl_t *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        ESCTL_COMMON_LONG, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, ESCTL_COMMON_SHORT "h", longopts, NULL)) != -1) {
        if (opt == 'h') {
            help(stdout);
            return ESCTL_OK;
        }
        if (esctl_other_opt(ctx, opt, optarg, argv) != 0) {
            return ESCTL_USAGE;
        }
    }
    int npos = argc - optind;
    if (npos < 1) {
        esctl_err(ctx, "missing the projection to rebuild (try \"esctl rebuild --help\")");
        return ESCTL_USAGE;
    }
    if (ctx->pass_argc + 2 * npos + 2 > REBUILD_MAX_ARGS) {
        esctl_err(ctx, "too many arguments");
        return ESCTL_USAGE;
    }

    for (int i = optind; i < argc; i++) {
        if (!projector_of(argv[i])) {
            esctl_err(ctx, "unknown projection \"%s\" (known: ledger, shop)", argv[i]);
            return ESCTL_USAGE;
        }
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0) {
        esctl_err(ctx, "could not find esctl's own executable: %s", strerror(errno));
        return ESCTL_FAIL;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    int dirlen = slash ? (int)(slash - self) : 1;
    const char *dir = slash ? self : ".";

    static char rebuild_flag[] = "--rebuild";
    char projector[PATH_MAX + 32];
    char *args[REBUILD_MAX_ARGS];
    int a = 0;
    args[a++] = projector;
    args[a++] = rebuild_flag;
    int proj_idx = a++;
    for (int i = 0; i < ctx->pass_argc; i++) {
        args[a++] = ctx->pass_argv[i];
    }
    args[a] = NULL;
    fflush(stdout);
    for (int i = optind; i < argc; i++) {
        snprintf(projector, sizeof(projector), "%.*s/%s", dirlen, dir, projector_of(argv[i]));
        args[proj_idx] = argv[i];
        if (npos == 1) {
            execv(projector, args);
            esctl_err(ctx, "could not run %s: %s", projector, strerror(errno));
            return ESCTL_FAIL;
        }
        pid_t pid = fork();
        if (pid < 0) {
            esctl_err(ctx, "could not start %s: %s", projector, strerror(errno));
            return ESCTL_FAIL;
        }
        if (pid == 0) {
            execv(projector, args);
            esctl_err(ctx, "could not run %s: %s", projector, strerror(errno));
            _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            esctl_err(ctx, "rebuilding \"%s\" failed (%s %d)", argv[i],
                      WIFEXITED(status) ? "exit status" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            return WIFEXITED(status) && WEXITSTATUS(status) == ESCTL_USAGE ? ESCTL_USAGE
                                                                           : ESCTL_FAIL;
        }
    }
    return ESCTL_OK;
}
