/*
 * rebuild.c: `esctl rebuild <projection>...`: run the es-projector that sits next to esctl's
 * own executable in rebuild mode, once per projection, in order:
 *   es-projector --rebuild P [-d DIR] [-b BROKERS] [-X P=V]...
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

static void help(FILE *out)
{
    fprintf(out, "usage: esctl rebuild <projection> [<projection>...]\n"
                 "\n"
                 "Rebuilds read models from the complete log (journal + broker) by running\n"
                 "  es-projector --rebuild <projection>\n"
                 "found next to esctl. The common flags below are passed on to it.\n"
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

    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0) {
        esctl_err(ctx, "could not find esctl's own executable: %s", strerror(errno));
        return ESCTL_FAIL;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    char projector[PATH_MAX + 32];
    snprintf(projector, sizeof(projector), "%.*s/es-projector", slash ? (int)(slash - self) : 1,
             slash ? self : ".");

    static char rebuild_flag[] = "--rebuild";
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
    if (npos == 1) {
        args[proj_idx] = argv[optind];
        execv(projector, args);
        esctl_err(ctx, "could not run %s: %s", projector, strerror(errno));
        return ESCTL_FAIL;
    }
    for (int i = optind; i < argc; i++) {
        args[proj_idx] = argv[i];
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
