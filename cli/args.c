/* cli/args.c — argument helpers shared by the subcommands. */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_parse_u64(const char *text, uint64_t *out) {
    if (text == NULL || out == NULL || text[0] == '\0') return -1;
    if (text[0] == '-' || text[0] == '+' || text[0] == ' ') return -1;
    errno = 0;
    char *end = NULL;
    const unsigned long long v = strtoull(text, &end, 0);
    if (errno != 0 || end == text || *end != '\0') return -1;
    *out = (uint64_t)v;
    return 0;
}

int cli_is_help(const char *arg) {
    return arg != NULL && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0);
}

int cli_usage_error(const char *command, const char *fmt, ...) {
    fprintf(stderr, "chaoslab %s: ", command);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(try chaoslab %s --help)\n", command);
    return CLI_EXIT_USAGE;
}
