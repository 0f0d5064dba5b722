/* Text from a stats page, a dump or /proc, written where it goes: every
 * string the command and the report tool print may come from another user's
 * process, so it is escaped for the terminal, XML (SVG, HTML) or JSON it goes
 * to.  Well-formed UTF-8 is kept as it is everywhere (policy/utf8.h).
 *
 *   terminal  control bytes (C0, DEL, the C1 code points) and bytes that are
 *             not well-formed UTF-8 as \xNN; a backslash as \\ (so that \xNN
 *             in the output always stands for one byte)
 *   XML       & < > " ' as entities; control bytes XML cannot carry and bytes
 *             that are not UTF-8 as U+FFFD
 *   JSON      " \ and control characters (C0, DEL, C1) escaped (\n, \t, \u00NN); bytes that are
 *             not UTF-8 as U+FFFD.  Where the exact bytes matter (a path to
 *             open), the writer adds them as hex beside the string (the
 *             "path_bytes" of docs/dump.md): tx_hex and tx_unhex. */
#ifndef MB_TOOLS_TEXTOUT_H
#define MB_TOOLS_TEXTOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

void tx_term(FILE *out, const char *s);
/* The terminal form of s in dst (cap > 0, always NUL-terminated), cut on a
 * character boundary so that it takes at most `columns` columns (each code
 * point counts one, each escape its length); returns the columns taken. */
size_t tx_term_buf(char *dst, size_t cap, const char *s, size_t columns);
void tx_xml(FILE *out, const char *s);
/* s as a quoted JSON string. */
void tx_json(FILE *out, const char *s);
/* Whether s is well-formed UTF-8 (else its exact bytes need tx_hex). */
bool tx_is_utf8(const char *s);
/* s's bytes as lowercase hex, quoted, for JSON. */
void tx_hex(FILE *out, const char *s);
/* Decodes hex (an even number of hex digits, no NUL byte encoded) into out;
 * false when it is malformed or does not fit in cap - 1 bytes. */
bool tx_unhex(const char *hex, char *out, size_t cap);

#endif
