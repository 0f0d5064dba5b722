/* membudget report (DESIGN §6, §9): reads a death dump (docs/dump.md) and
 * prints what a user reads first, the footprint timeline as SVG, folded stacks
 * for flame graphs, or the dump normalized and symbolized as JSON.
 *
 *     membudget report DUMP [--svg FILE] [--folded] [--json]
 *                           [--sites N] [--frames N] [--no-symbols]
 *
 * An ordinary program: it runs outside the budget, with stdio and malloc.
 * Symbols come from elfutils' libdwfl, using the module paths and load biases
 * the dump recorded; JSON is read and written with jansson. */
#ifndef MEMBUDGET_TOOLS_REPORT_H
#define MEMBUDGET_TOOLS_REPORT_H

/* The whole command: argv[0] is the program's or subcommand's name.  Returns
 * the exit status: 0, 1 when the dump cannot be read or a file written, 2 for
 * bad arguments. */
int report_main(int argc, char **argv);

#endif
