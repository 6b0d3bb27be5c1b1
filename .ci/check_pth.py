"""Fail when site-packages holds a *.pth file outside the allow-list.

A .pth file runs at every interpreter start, with or without an import: that is how
litellm 1.82.8 shipped its credential stealer (litellm_init.pth). See
../shared/reference/litellm.md, section 1.
"""

from __future__ import annotations

import re
import site
import sys
from pathlib import Path

ALLOWED = [
    r"distutils-precedence\.pth",  # setuptools
    r"__editable__\.moot-[\w.]+\.pth",  # this project, installed with pip -e
    r"_virtualenv\.pth",  # virtualenv-made environments
]


def main(dirs: list[str]) -> int:
    """Check `dirs` (default: this interpreter's site-packages)."""
    found = sorted({p for d in dirs or site.getsitepackages() for p in Path(d).glob("*.pth")})
    bad = [p for p in found if not any(re.fullmatch(a, p.name) for a in ALLOWED)]
    for p in bad:
        print(
            f"unexpected .pth file: {p}\n--- it runs at every interpreter start; its first lines:",
            file=sys.stderr,
        )
        print("".join(p.read_text(errors="replace").splitlines(keepends=True)[:5]), file=sys.stderr)
    if bad:
        print(
            "Remove the package that installed it, or add it to .ci/check_pth.py with a reason.",
            file=sys.stderr,
        )
        return 1
    print(f"pth check: {len(found)} .pth file(s), all expected: {', '.join(p.name for p in found)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
