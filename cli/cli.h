/*
 * cli/cli.h — the chaoslab command-line entry. Thin: each subcommand parses
 * its arguments and calls into the libraries. Exit codes (DESIGN.md):
 * 0 = success / every expectation held, 1 = an expectation failed,
 * 2 = bad usage or a broken input.
 */
#ifndef CHAOSLAB_CLI_CLI_H
#define CHAOSLAB_CLI_CLI_H

#include <stdint.h>
#include <stdio.h>

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

typedef int (*cli_command_fn)(int argc, char **argv);

typedef struct cli_command {
    const char *name;
    cli_command_fn fn;
    const char *summary;
} cli_command_t;

/* Parse a decimal or 0x-hex unsigned 64-bit number. Returns 0 on success, -1
 * on anything else (empty, sign, trailing bytes, overflow). */
int cli_parse_u64(const char *text, uint64_t *out);

/* Print "chaoslab COMMAND: <message>" and a pointer to --help on stderr;
 * returns CLI_EXIT_USAGE so callers can `return cli_usage_error(...)`. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* True if argv[i] is -h or --help. */
int cli_is_help(const char *arg);

int cli_cmd_demo(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);
/* The same, with the run's report written to `out` (report show --html). */
int cli_cmd_run_to(int argc, char **argv, FILE *out);
int cli_cmd_report(int argc, char **argv);
int cli_cmd_shrink(int argc, char **argv);  /* cli/cmd_shrink.c */
int cli_cmd_broker(int argc, char **argv);  /* cli/cmd_broker.c */
int cli_cmd_cluster(int argc, char **argv); /* cli/cmd_cluster.c */

#endif
