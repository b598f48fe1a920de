/* cli/cmd_report.c — `chaoslab report list|show|compare`: the queries of
 * reports/report_cli.c over the SQLite report store. */
#include <stdio.h>

#include "cli/cli.h"
#include "reports/report.h"

int cli_cmd_report(int argc, char **argv) {
    return report_cli_main(argc, argv, stdout, stderr);
}
