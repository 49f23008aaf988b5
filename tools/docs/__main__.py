"""`python -m tools.docs`: rewrite the generated reference pages (`--check`: only say which are out of date)."""

from __future__ import annotations

import sys

from tools.docs.generate import REGENERATE, stale_pages, write_pages


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = stale_pages()
        for relative in stale:
            print(f"{relative} differs from what the code generates; run `{REGENERATE}`")
        return 1 if stale else 0
    for relative in write_pages():
        print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
