#!/usr/bin/env python3
"""Checks the relative links of the docs: README.md, ARCHITECTURE.md,
benches/README.md and every page of the book (docs/*.md).

Each relative link must name a file or folder that exists, and a `#anchor` on a
Markdown file must name one of its headings (ids as mdBook and GitHub make them:
lower case, spaces to `-`, other punctuation dropped). Links from book pages must
stay inside docs/, since the built book holds nothing else. Every page in docs/ must be
listed in docs/SUMMARY.md (else the book leaves it out). Web links are not
fetched. Exit status 1 lists every broken link as file:line: link: why.

Usage: .ci/check-doc-links.py [REPO_ROOT]
"""

import re
import sys
from pathlib import Path

# [text](target) and ![alt](target); the target ends at whitespace or ')'.
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
# [label]: target
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def strip_code_spans(line):
    """The line without `code spans`, whose brackets are not links."""
    return re.sub(r"(`+)(.+?)\1", "", line)


def heading_id(text):
    """The anchor mdBook (and GitHub) give a heading."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links: their text
    text = text.replace("`", "").replace("*", "")
    out = []
    for ch in text:
        if ch.isalnum() or ch in "_-":
            out.append(ch.lower())
        elif ch.isspace():
            out.append("-")
    return "".join(out)


def lines_outside_code(path):
    """(line number, text) of every line outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def anchors(path, cache):
    """Every heading id of a Markdown file (repeats get -1, -2, ...)."""
    if path not in cache:
        seen = {}
        ids = set()
        for _, line in lines_outside_code(path):
            m = HEADING.match(line)
            if not m:
                continue
            base = heading_id(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            ids.add(base if n == 0 else f"{base}-{n}")
        cache[path] = ids
    return cache[path]


def links(path):
    """(line number, target) of every link in a Markdown file."""
    for number, line in lines_outside_code(path):
        line = strip_code_spans(line)
        for m in INLINE.finditer(line):
            yield number, m.group(1)
        m = REFERENCE.match(line)
        if m:
            yield number, m.group(1)


def check(root):
    docs = root / "docs"
    files = [root / "README.md", root / "ARCHITECTURE.md", root / "benches" / "README.md"]
    files += sorted(docs.glob("*.md"))
    problems = []
    cache = {}
    for source in files:
        if not source.exists():
            problems.append(f"{source.relative_to(root)}: missing")
            continue
        for number, target in links(source):
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # empty, or a URL (http:, https:, mailto:, ...)
            where = f"{source.relative_to(root)}:{number}: {target}"
            path_part, _, anchor = target.partition("#")
            resolved = (source.parent / path_part).resolve() if path_part else source
            if not resolved.exists():
                problems.append(f"{where}: no such file")
                continue
            if source.parent == docs and docs.resolve() not in [resolved, *resolved.parents]:
                problems.append(f"{where}: outside docs/, so missing from the built book")
                continue
            if anchor and resolved.suffix == ".md":
                if anchor not in anchors(resolved, cache):
                    problems.append(f"{where}: no heading with id #{anchor}")
    summary = docs / "SUMMARY.md"
    if summary.exists():
        listed = {(docs / t.partition("#")[0]).resolve() for _, t in links(summary) if t}
        for page in sorted(docs.glob("*.md")):
            if page.name != "SUMMARY.md" and page.resolve() not in listed:
                problems.append(f"docs/{page.name}: not in docs/SUMMARY.md, so not in the book")
    return problems


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    problems = check(root.resolve())
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in the docs links", file=sys.stderr)
        return 1
    print("doc links: all relative links resolve, every page is in SUMMARY.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
