#!/usr/bin/env python3
"""Checks that every path and identifier ARCHITECTURE.md names in backticks exists in the code.

A path (a token with a `/` or a file extension) must name a file or folder of the checkout, or,
given bare, a file of that name somewhere in it. An identifier (`Store::sync`, `FeedMarks`,
`feed_mark_formula`) must appear as a whole word in the sources; with `::`, every segment
must. Tokens with spaces or other punctuation (commands, SQL, values) are prose and not
checked. Prints each name that is not found and exits 1 if any.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_EXT = (".rs", ".sql", ".kt", ".kts", ".sh", ".toml", ".json", ".xml", ".py")
SKIP_DIRS = {".git", "target", "node_modules", "build", ".gradle"}

files = []
for base, dirs, names in os.walk(ROOT):
    dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
    for name in names:
        files.append(os.path.relpath(os.path.join(base, name), ROOT))
basenames = {os.path.basename(f) for f in files}
dirs_all = {os.path.dirname(f) for f in files}
for d in list(dirs_all):
    while d:
        dirs_all.add(d)
        d = os.path.dirname(d)

dir_names = {os.path.basename(d) for d in dirs_all}
words = set()
sources = ""
for f in files:
    if f.endswith(SOURCE_EXT):
        try:
            with open(os.path.join(ROOT, f), encoding="utf-8", errors="replace") as fh:
                content = fh.read()
            words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", content))
            sources += content
        except OSError:
            pass

PATH = re.compile(r"^[A-Za-z0-9_.\-/<>]+$")
EXT = re.compile(r"\.(rs|sql|md|kt|kts|sh|toml|json|xlsx|xml|py)$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*(\(\))?$")


def path_exists(token):
    if "<" in token or "*" in token:
        return True  # a pattern (`<data>.checkpoints`), not a path
    if token.startswith("/"):
        return token in sources  # a route: its path is in the code
    token = token.rstrip("/")
    if "..." in token:
        token = token.rsplit("/", 1)[-1]  # `android-demo/.../X.kt`: the file is what counts
    if "/" not in token:
        return token in basenames or token in dir_names
    return any(p == token or p.endswith("/" + token) for p in files + sorted(dirs_all))


def identifier_exists(token):
    token = token.removesuffix("()")
    return all(seg in words for seg in token.split("::"))


with open(os.path.join(ROOT, "ARCHITECTURE.md"), encoding="utf-8") as fh:
    text = fh.read()
# Fenced blocks are diagrams and examples: only inline code is a claim.
text = re.sub(r"```.*?```", "", text, flags=re.S)
missing = []
for token in sorted(set(re.findall(r"`([^`\n]+)`", text))):
    if (("/" in token and " " not in token) or EXT.search(token)) and PATH.match(token):
        if not path_exists(token):
            missing.append(f"path {token}")
    elif token.startswith("_"):
        continue  # a suffix (`_MAX`), not a name
    elif IDENT.match(token) and ("_" in token or "::" in token or re.search(r"[a-z][A-Z]", token)):
        if not identifier_exists(token):
            missing.append(f"identifier {token}")
for m in missing:
    print(f"ARCHITECTURE.md names {m}, which is not in the code")
sys.exit(1 if missing else 0)
