# make install [PREFIX=/usr/local] [DESTDIR=...]: the library ($(LIBDIR)), the
# command ($(BINDIR)), the report tool when it has been built
# ($(LIBEXECDIR)/membudget), membudget.h ($(INCLUDEDIR)), membudget.pc
# ($(PKGCONFIGDIR)) and the man pages membudget(1) and membudget(3) ($(MANDIR)).
# make uninstall removes exactly these.  The directories come from tools/tools.mk.

INSTALL ?= install
INSTALL_REPORT_TOOL := $(BUILD)/membudget-report

.PHONY: install uninstall

install: $(LIB) tool
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	$(INSTALL) -m 755 $(LIB) $(DESTDIR)$(LIBDIR)/libmembudget.so
	$(INSTALL) -m 755 $(TOOL) $(DESTDIR)$(BINDIR)/membudget
	@if [ -x $(INSTALL_REPORT_TOOL) ]; then \
		echo "$(INSTALL) -m 755 $(INSTALL_REPORT_TOOL) $(DESTDIR)$(LIBEXECDIR)/membudget/membudget-report"; \
		$(INSTALL) -d $(DESTDIR)$(LIBEXECDIR)/membudget && \
		$(INSTALL) -m 755 $(INSTALL_REPORT_TOOL) $(DESTDIR)$(LIBEXECDIR)/membudget/membudget-report; \
	else \
		echo "install: $(INSTALL_REPORT_TOOL) is not built; membudget report will say so"; \
	fi
	$(INSTALL) -m 644 include/membudget.h $(DESTDIR)$(INCLUDEDIR)/membudget.h
	$(INSTALL) -m 644 $(TOOL_PC) $(DESTDIR)$(PKGCONFIGDIR)/membudget.pc
	$(INSTALL) -m 644 $(TOOL_MAN1) $(DESTDIR)$(MANDIR)/man1/membudget.1
	$(INSTALL) -m 644 $(TOOL_MAN3) $(DESTDIR)$(MANDIR)/man3/membudget.3

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libmembudget.so $(DESTDIR)$(BINDIR)/membudget \
		$(DESTDIR)$(LIBEXECDIR)/membudget/membudget-report \
		$(DESTDIR)$(INCLUDEDIR)/membudget.h $(DESTDIR)$(PKGCONFIGDIR)/membudget.pc \
		$(DESTDIR)$(MANDIR)/man1/membudget.1 $(DESTDIR)$(MANDIR)/man3/membudget.3
	rmdir $(DESTDIR)$(LIBEXECDIR)/membudget 2>/dev/null || true
