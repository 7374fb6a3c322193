#!/usr/bin/env python3
"""bench/update_readme.py - put bench/run's output into README.md.

    bench/update_readme.py [--results FILE] [--readme FILE] [--check]

Replaces what lies between the two marker lines of README.md's
Performance section

    <!-- bench/run output: begin -->
    <!-- bench/run output: end -->

with bench/results/latest.md (or --results FILE), as the README shows
it: without its "# volley benchmarks, DATE" title, each heading one
level down (## becomes ###, under the README's "## Performance"; lines in
``` blocks left alone).  Everything outside the markers (the section's
introduction, "What the figures say") is kept as it is.  --check changes
nothing and exits 1 when the README differs from what it would write.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = "<!-- bench/run output: begin -->"
END = "<!-- bench/run output: end -->"


def readme_text(md):
    """bench/run's Markdown as the README section shows it."""
    out, fence = [], False
    lines = md.strip("\n").split("\n")
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
        while lines and not lines[0].strip():
            lines = lines[1:]
    for line in lines:
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            line = "#" + line
        out.append(line)
    return "\n".join(out)


def replace(readme, body):
    start = readme.find(BEGIN)
    end = readme.find(END)
    if start < 0 or end < 0 or end < start:
        raise ValueError(
            f"README has not the two marker lines, in this order:\n  {BEGIN}"
            f"\n  {END}\naround the pasted output of bench/run in its "
            "Performance section")
    if readme.find(BEGIN, start + 1) >= 0 or readme.find(END, end + 1) >= 0:
        raise ValueError("README has a marker line twice")
    return (readme[:start + len(BEGIN)] + "\n\n" + body + "\n\n" +
            readme[end:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default=os.path.join(
        ROOT, "bench", "results", "latest.md"))
    ap.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    ap.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 if the README differs")
    args = ap.parse_args()
    try:
        with open(args.results) as f:
            md = f.read()
    except OSError as e:
        sys.exit(f"{args.results}: {e.strerror} (run bench/run first)")
    with open(args.readme) as f:
        readme = f.read()
    try:
        new = replace(readme, readme_text(md))
    except ValueError as e:
        sys.exit(f"{args.readme}: {e}")
    if args.check:
        if new != readme:
            print(f"{args.readme}: its bench/run output differs from "
                  f"{args.results}")
            return 1
        return 0
    if new != readme:
        with open(args.readme, "w") as f:
            f.write(new)
        print(f"{args.readme}: bench/run output replaced from "
              f"{args.results}")
    else:
        print(f"{args.readme}: already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
