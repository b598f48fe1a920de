/* cli/main.c — `chaoslab <command> ...`: dispatch to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "scenarios/engine.h"

static const cli_command_t cli_commands[] = {
    {"demo", cli_cmd_demo, "run the simulation-kernel demo and print what it simulated"},
    {"run", cli_cmd_run, "run a Lua fault scenario and check its invariants"},
    {"shrink", cli_cmd_shrink, "shrink a failing run to a minimal standalone scenario"},
    {"report", cli_cmd_report, "list, show and compare stored runs (SQLite)"},
    {"broker", cli_cmd_broker, "run one real broker node (libuv, TCP, files)"},
    {"cluster", cli_cmd_cluster, "start N real broker processes on loopback"},
};

static void cli_usage(FILE *out) {
    fprintf(out,
            "chaoslab — a deterministic simulation and chaos-testing lab for\n"
            "replicated message brokers, with a reference broker.\n\n"
            "usage: chaoslab <command> [options]   (chaoslab <command> --help)\n\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof cli_commands / sizeof cli_commands[0]; i++)
        fprintf(out, "  %-10s %s\n", cli_commands[i].name, cli_commands[i].summary);
    fprintf(out,
            "\nexit codes: 0 = ok, 1 = an expectation failed, 2 = bad usage or input\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        cli_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        cli_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("chaoslab %s\n", scn_binary_version()); /* as stored with every run */
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof cli_commands / sizeof cli_commands[0]; i++) {
        if (strcmp(argv[1], cli_commands[i].name) == 0)
            return cli_commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "chaoslab: unknown command '%s' (try chaoslab --help)\n", argv[1]);
    return CLI_EXIT_USAGE;
}
