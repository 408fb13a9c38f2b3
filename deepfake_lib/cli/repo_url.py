"""One repository URL: ``[project.urls] Repository`` in pyproject.toml feeds every notebook's ``REPO_URL`` (what
Colab installs from) and the Colab badges of the README and the docs pages.

    python -m deepfake_lib.cli.repo_url           # rewrite notebooks, README and docs/*.md from pyproject.toml
    python -m deepfake_lib.cli.repo_url --check   # exit 1 and list what is out of step

A fork changes the one line in pyproject.toml and runs ``make urls``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from deepfake_lib.cli.runner import ArgumentParser, add_debug_flag, run_command

ROOT = Path(__file__).resolve().parents[1]
_NOTEBOOK_LINE = re.compile(r'(REPO_URL = \\")([^"\\]*)(\\")')
_BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^/\s]+/[^/\s]+/blob/[^/\s]+/notebooks/")


def repository_url(root: Path = ROOT) -> str:
    """``[project.urls] Repository`` of ``root/pyproject.toml`` (without a trailing slash or ``.git``)."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    url = project.get("urls", {}).get("Repository")
    if not url:
        raise ValueError(f"{root / 'pyproject.toml'}: no [project.urls] Repository entry")
    return re.sub(r"(\.git)?/*$", "", url)


def colab_prefix(url: str, branch: str = "main") -> str:
    """The Colab address of the repository's notebooks folder: ``.../github/<owner>/<name>/blob/<branch>/notebooks/``."""
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+)", url)
    if not match:
        raise ValueError(f"{url}: Colab opens notebooks from GitHub repositories only (https://github.com/OWNER/NAME)")
    return f"https://colab.research.google.com/github/{match[1]}/{match[2]}/blob/{branch}/notebooks/"


def _rewritten(root: Path, url: str) -> dict[Path, tuple[str, str]]:
    """Every file that mentions the URL: ``{path: (current text, text with the URL from pyproject)}``."""
    files = {}
    for nb in sorted((root / "notebooks").glob("*.ipynb")):
        text = nb.read_text(encoding="utf-8")
        files[nb] = (text, _NOTEBOOK_LINE.sub(lambda m: m[1] + url + m[3], text))
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        files[page] = (text, _BADGE.sub(colab_prefix(url), text))
    return files


def out_of_step(root: Path = ROOT) -> list[Path]:
    """Notebooks, README and docs pages whose URLs differ from pyproject's (or a notebook without a ``REPO_URL``)."""
    url = repository_url(root)
    stale = [p for p, (old, new) in _rewritten(root, url).items() if old != new]
    missing = [p for p in sorted((root / "notebooks").glob("*.ipynb")) if not _NOTEBOOK_LINE.search(p.read_text())]
    return stale + missing


def sync(root: Path = ROOT) -> list[Path]:
    """Rewrite the URLs from pyproject.toml; returns the files changed."""
    from deepfake_lib.core.runs import atomic_write

    changed = []
    for path, (old, new) in _rewritten(root, repository_url(root)).items():
        if old != new:
            atomic_write(path, lambda tmp, text=new: tmp.write_text(text, encoding="utf-8"))
            changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m deepfake_lib.cli.repo_url", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files out of step (exit 1 if any)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository root (default: this checkout)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        url = repository_url(args.root)
        if args.check:
            stale = out_of_step(args.root)
            for path in stale:
                print(f"out of step with {url}: {path}")
            return 1 if stale else 0
        for path in sync(args.root):
            print(f"updated: {path}")
        print(f"repository: {url}")
        return 0

    return run_command(body, bad_input=(OSError, ValueError, KeyError), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
