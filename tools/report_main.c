/* membudget-report: the report tool on its own (see tools/report.h). */
#include "tools/report.h"

int main(int argc, char **argv) { return report_main(argc, argv); }
