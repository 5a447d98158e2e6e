#!/usr/bin/env python3
"""Builds assets/words/<lang>.txt.gz: a seeded sample of words per language from the
Debian word-list packages (see assets/README.md for sources and licences).

    apt-get install wamerican wngerman wfrench wspanish witalian wportuguese
    python3 assets/tools/build_word_sample.py

Words are lower-cased, kept only when made of letters (no apostrophes, digits or
hyphens) and 3-12 characters long, de-duplicated, then 3,000 are drawn per
language with a fixed seed and written sorted, one per line, UTF-8.
"""
import gzip
import pathlib
import random

LISTS = {
    "en": "/usr/share/dict/american-english",
    "de": "/usr/share/dict/ngerman",
    "fr": "/usr/share/dict/french",
    "es": "/usr/share/dict/spanish",
    "it": "/usr/share/dict/italian",
    "pt": "/usr/share/dict/portuguese",
}
PER_LANGUAGE = 3000
OUT = pathlib.Path(__file__).resolve().parent.parent / "words"


def main():
    OUT.mkdir(exist_ok=True)
    for code, path in LISTS.items():
        words = set()
        for line in open(path, encoding="utf-8"):
            w = line.strip().lower()
            if 3 <= len(w) <= 12 and w.isalpha():
                words.add(w)
        pool = sorted(words)
        sample = sorted(random.Random(f"trainlab-{code}").sample(pool, PER_LANGUAGE))
        data = ("\n".join(sample) + "\n").encode("utf-8")
        # mtime=0: the same input gives byte-identical files.
        with open(OUT / f"{code}.txt.gz", "wb") as f:
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
                gz.write(data)
        print(f"{code}: {len(pool)} candidates, {len(sample)} written")


if __name__ == "__main__":
    main()
