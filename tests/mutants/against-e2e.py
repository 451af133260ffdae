#!/usr/bin/env python3
"""Runs surviving mutants against the end-to-end tests.

cargo-mutants runs the mutated package's tests; the change-validation and access rules live in
suivi-core and sync-server but are exercised end to end by suivi-tests (in-process servers).
This takes the mutants cargo-mutants reported missed (its `missed.txt`; a timeout is already a
detection), applies
each one's diff to a copy of the tree, runs the chosen end-to-end tests, and prints CAUGHT or
MISSED per mutant, then the totals. One core, about a minute a mutant.

  python3 tests/mutants/against-e2e.py MUTANTS_OUT_DIR_OR_LIST [cargo test args...]

MUTANTS_OUT_DIR_OR_LIST: cargo-mutants' `mutants.out` directory, or a text file of mutant names
(one a line, `#` comments), such as tests/mutants/service.missed-by-unit-tests.txt.

Default test args: the in-process e2e tests (those that need the suivi-server binary are
skipped: a missing binary would count as a kill). With SUIVI_MUTANTS_BINARIES=1, the
`suivi-server` and `suivi` binaries are built from the mutated tree before each run, so the tests
that start them can run too (the whole `--test e2e`), at about 20 s more a mutant.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

DEFAULT_TESTS = ["-p", "suivi-tests", "--test", "e2e", "--", "trust::", "access::", "fallback::",
                 "simulation::", "--skip", "a_revoked_phone_stays"]


def main():
    out_dir = sys.argv[1]
    test_args = sys.argv[2:] or DEFAULT_TESTS
    root = subprocess.check_output(["git", "rev-parse", "--show-toplevel"], text=True).strip()
    listing = out_dir if os.path.isfile(out_dir) else os.path.join(out_dir, "missed.txt")
    names = [l.strip() for l in open(listing) if l.strip() and not l.startswith("#")]
    files = sorted({n.split(":")[0] for n in names})
    mutants = []
    for f in files:
        listed = json.loads(subprocess.check_output(
            ["cargo", "mutants", "-f", f, "--list", "--diff", "--json"], cwd=root, text=True,
            stderr=subprocess.DEVNULL))
        mutants += [m for m in listed if m["name"] in names]
    # SUIVI_MUTANTS_WORK reuses a copy (and its build) from an earlier run.
    work = os.environ.get("SUIVI_MUTANTS_WORK") or tempfile.mkdtemp(prefix="suivi-mutants-")
    shutil.copytree(root, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("target", ".git"))
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(work, "target"))
    binaries = os.environ.get("SUIVI_MUTANTS_BINARIES") == "1"

    def build_binaries():
        if not binaries:
            return True
        built = subprocess.run(["cargo", "build", "--workspace", "--features", "suivi-core/cli",
                                "--bins"], cwd=work, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return built.returncode == 0

    base = subprocess.run(["cargo", "test"] + test_args, cwd=work, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) \
        if build_binaries() else None
    if base is None or base.returncode != 0:
        if base is not None:
            print("\n".join(base.stdout.splitlines()[-40:]))
        sys.exit(f"the unmutated tree fails these tests (the copy is kept: {work})")
    caught = missed = 0
    for m in mutants:
        target = os.path.join(work, m["file"])
        original = open(target).read()
        applied = subprocess.run(["patch", "-s", target], input=m["diff"], text=True)
        if applied.returncode != 0:
            print(f"UNAPPLIED {m['name']}", flush=True)
            open(target, "w").write(original)
            continue
        try:
            if not build_binaries():
                failed = True  # the mutant does not build: cargo-mutants calls it unviable
            else:
                run = subprocess.run(["cargo", "test"] + test_args, cwd=work, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     timeout=300)
                failed = run.returncode != 0
        except subprocess.TimeoutExpired:
            failed = True
        open(target, "w").write(original)
        if failed:
            caught += 1
            print(f"CAUGHT {m['name']}", flush=True)
        else:
            missed += 1
            print(f"MISSED {m['name']}", flush=True)
    print(f"{len(mutants)} mutants: {caught} caught, {missed} missed", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
