#!/usr/bin/env python3
"""The shape of the C sources: files over N lines and functions over M lines.

    python3 scripts/code_shape.py [--file-lines 600] [--function-lines 80] [DIR...]

Reads the .c and .h files below the directories (default: alloc policy preload
tools include), skips comments, strings and character constants, and counts a
function from the line of its name to its closing brace.  Prints one line per
file or function over its bound, then the two counts.  A reading aid for
reviews, not a test: it always exits 0 unless a directory is missing.
"""
import argparse
import os
import re
import sys

NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\($")


def strip(text):
    """The text with comments, strings and character constants blanked (line
    breaks kept, so line numbers hold)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(text):
    """(name, first line, last line) of each function body at file scope."""
    src = strip(text)
    depth, line, result = 0, 1, []
    start = None
    head = []  # file-scope text since the last ';', '}' or preprocessor line
    at_line_start = True
    i = 0
    while i < len(src):
        c = src[i]
        if at_line_start and depth == 0 and src[i:].lstrip(" \t").startswith("#"):
            # a preprocessor line (with continuations) is not a declaration
            while i < len(src):
                j = src.find("\n", i)
                j = len(src) if j < 0 else j
                cont = src[i:j].rstrip().endswith("\\")
                line += 1
                i = j + 1
                if not cont:
                    break
            at_line_start = True
            continue
        at_line_start = c == "\n"
        if c == "\n":
            line += 1
        if c == "{":
            if depth == 0:
                sig = "".join(head)
                paren = sig.rfind(")")
                m = None
                if paren >= 0 and "=" not in sig[paren:]:
                    before = sig[:sig.find("(")] + "(" if "(" in sig else ""
                    m = NAME.search(before.rstrip())
                if m and not re.search(r"\b(struct|union|enum)\s*\w*\s*$", sig[:m.start()].strip()[-40:] or " "):
                    first = line - sig[m.start():].count("\n")
                    start = (m.group(1), first)
                else:
                    start = None
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                if start is not None:
                    result.append((start[0], start[1], line))
                start = None
                head = []
                i += 1
                continue
        if depth == 0:
            if c == ";":
                head = []
            else:
                head.append(c)
        i += 1
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file-lines", type=int, default=600)
    ap.add_argument("--function-lines", type=int, default=80)
    ap.add_argument("dirs", nargs="*", default=["alloc", "policy", "preload", "tools", "include"])
    args = ap.parse_args()
    big_files, big_functions = [], []
    for d in args.dirs:
        if not os.path.isdir(d):
            sys.exit("code_shape.py: %s: not a directory" % d)
        for root, _, names in sorted(os.walk(d)):
            for name in sorted(names):
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.join(root, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                n = text.count("\n")
                if n > args.file_lines:
                    big_files.append((n, path))
                for fn, a, b in functions(text):
                    if b - a + 1 > args.function_lines:
                        big_functions.append((b - a + 1, "%s:%d %s" % (path, a, fn)))
    for n, what in sorted(big_files, reverse=True):
        print("file %5d lines  %s" % (n, what))
    for n, what in sorted(big_functions, reverse=True):
        print("function %4d lines  %s" % (n, what))
    print("%d files over %d lines, %d functions over %d lines"
          % (len(big_files), args.file_lines, len(big_functions), args.function_lines))


if __name__ == "__main__":
    main()
