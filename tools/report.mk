# The report tool (tools/report*.c, DESIGN §6): $(BUILD)/membudget-report reads a
# death dump and prints the summary, --svg, --html, --folded, --json or --diff.  An ordinary
# program, built without the library: jansson reads and writes the JSON, elfutils'
# libdw (libdwfl) symbolizes the sampled frames.  `membudget report` runs it.
#   make report-tool

REPORT_TOOL    := $(BUILD)/membudget-report
REPORT_SRCS    := alloc/fmt.c tools/textout.c tools/report.c $(MB_OS_REPORT_SYMBOLS) tools/report_svg.c tools/report_diff.c tools/report_html.c tools/report_main.c
REPORT_HDRS    := alloc/fmt.h policy/stats_list.h tools/textout.h policy/utf8.h tools/report.h tools/report_model.h tools/report_diff.h
REPORT_HDRS    += tools/report_index.h
REPORT_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O2 -I. -Iinclude $(WARN) $(MB_OS_TOOL_CFLAGS)
# libstdc++ for its demangler (__cxa_demangle), called through its C symbol.
# On macOS (MB_OS_REPORT_LDLIBS): atos for symbols, libc++abi's demangler.
REPORT_LDLIBS  := $(if $(MB_OS_REPORT_LDLIBS),$(MB_OS_REPORT_LDLIBS),-ljansson -ldw -lelf -lstdc++)

.PHONY: report-tool
all: report-tool
report-tool: $(REPORT_TOOL)

# The report tool's sources compiled one by one without the link (make
# check-macos without a jansson built for the target).
REPORT_OBJDIR := $(BUILD)/report/obj
.PHONY: report-tool-objs
report-tool-objs: $(REPORT_SRCS:%.c=$(REPORT_OBJDIR)/%.o)
$(REPORT_OBJDIR)/%.o: %.c $(REPORT_HDRS) tools/report.mk | build-deps
	@mkdir -p $(dir $@)
	$(CC) $(REPORT_CFLAGS) -c $< -o $@

$(REPORT_TOOL): $(REPORT_SRCS) $(REPORT_HDRS) tools/report.mk | build-deps
	@mkdir -p $(dir $@)
	$(CC) $(REPORT_CFLAGS) $(REPORT_SRCS) -o $@ $(MB_OS_TOOL_LDFLAGS) $(REPORT_LDLIBS)
