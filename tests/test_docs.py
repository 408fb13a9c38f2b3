"""The documentation site stays whole: every page of docs/ is in mkdocs.yml's nav and every nav entry exists,
every relative link of README.md and docs/*.md reaches a file (and its anchor), the architecture page names every
stage of ``deepfake_lib``, and ``mkdocs build --strict`` passes where MkDocs is installed."""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.test_architecture import STAGES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "deepfake_lib"

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def nav_pages(config: dict) -> list[str]:
    """Every page file named in ``nav`` (nested sections included), in order."""

    def walk(entry: object) -> Iterator[str]:
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, list):
            for item in entry:
                yield from walk(item)
        elif isinstance(entry, dict):
            for value in entry.values():
                yield from walk(value)

    return [page for page in walk(config.get("nav", [])) if not _SCHEME.match(page)]


def load_config(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "mkdocs.yml").read_text(encoding="utf-8"))


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slugify(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc) gives a heading: its text without markup, ASCII, lower case,
    punctuation dropped, runs of spaces and hyphens as one hyphen."""
    text = _CODE_SPAN.sub(lambda m: m[2].strip(), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"(\*\*|__|\*|(?<!\w)_(?!\w))", "", text)  # emphasis markers (not underscores inside words)
    text = html.unescape(text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown page's headings, numbered as MkDocs numbers repeats (``name_1``, ...)."""
    found: set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        if match := _HEADING.match(line):
            slug = base = slugify(match[2])
            n = 0
            while slug in found:
                n += 1
                slug = f"{base}_{n}"
            found.add(slug)
    return found


def relative_links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link that is not an external address, outside code."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for match in _LINK.finditer(_CODE_SPAN.sub("", line)):
            target = match[1]
            if not _SCHEME.match(target):
                yield number, target


def broken_links(path: Path, inside: Path | None = None) -> list[str]:
    """Links of ``path`` that reach no file, or no anchor of the page they name; with ``inside``, also links that
    leave that folder (a docs page can only link to what the site holds)."""
    problems = []
    for number, target in relative_links(path):
        where = f"{path.name}:{number}: {target}"
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path.resolve()
        if inside is not None and inside.resolve() not in dest.parents:
            problems.append(f"{where}: outside {inside.name}/")
        elif not dest.exists():
            problems.append(f"{where}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where}: no heading with the anchor #{anchor} in {dest.name}")
    return problems


def doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    config = load_config()
    listed = nav_pages(config)
    assert listed, "mkdocs.yml has no nav"
    assert len(listed) == len(set(listed)), "a page is listed twice in the nav"
    on_disk = {p.relative_to(DOCS).as_posix() for p in doc_pages()}
    assert sorted(set(listed) - on_disk) == [], "nav entries without a page"
    assert sorted(on_disk - set(listed)) == [], "pages missing from the nav"
    assert listed[0] == "index.md"
    assert config.get("docs_dir", "docs") == "docs" and config["theme"]["name"] == "material"


def test_validation_makes_broken_links_fail_a_strict_build() -> None:
    validation = load_config()["validation"]
    assert validation["nav"]["omitted_files"] == validation["nav"]["not_found"] == "warn"
    for key in ("not_found", "anchors", "absolute_links", "unrecognized_links"):
        assert validation["links"][key] == "warn", key


@pytest.mark.parametrize("page", ["README.md", *(p.relative_to(ROOT).as_posix() for p in doc_pages())])
def test_relative_links_resolve(page: str) -> None:
    path = ROOT / page
    assert broken_links(path, inside=DOCS if path.is_relative_to(DOCS) else None) == []


def test_readme_links_to_every_docs_page() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for _, t in relative_links(ROOT / "README.md")}
    assert [p.name for p in doc_pages() if p.resolve() not in linked] == []


def test_link_checker_sees_a_missing_file_a_missing_anchor_and_a_link_out_of_the_site(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "b.md").write_text("# Title\n\n## Which fakes (`FAKES`)\n\n## Twice\n\n## Twice\n")
    (tmp_path / "data.md").write_text("outside\n")
    (docs / "a.md").write_text(
        "[ok](b.md#which-fakes-fakes) [ok](b.md#twice_1) [ok](#top) [web](https://example.org/x.md)\n"
        "`[in code](nope.md)`\n```\n[in a fence](nope.md)\n```\n"
        "[gone](nope.md) [no anchor](b.md#nothing) [out](../data.md)\n\n# Top\n"
    )
    problems = broken_links(docs / "a.md", inside=docs)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "nope.md: no such file",
        "b.md#nothing: no heading with the anchor #nothing in b.md",
        "../data.md: outside docs/",
    ]
    assert anchors(docs / "b.md") == {"title", "which-fakes-fakes", "twice", "twice_1"}
    assert nav_pages({"nav": [{"A": "a.md"}, {"Section": [{"B": "b.md"}, "https://example.org"]}]}) == ["a.md", "b.md"]


def test_architecture_page_names_every_stage_in_order() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    subpackages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert subpackages  # every stage is a subpackage now; a top-level module would be named as `name.py`
    assert [name for name in subpackages if f"`{name}/`" not in text] == []
    assert [name for name in modules if f"`{name}.py`" not in text] == []
    order = re.search(r"```\n(core ->.*?)\n```", text, re.S)
    assert order, "the stage order as one block: core -> data -> ..."
    assert re.split(r"\s*->\s*", order[1].strip()) == list(STAGES), "the order tests/test_architecture.py enforces"
    assert "tests/test_architecture.py" in text


def _built_ids(page: Path) -> set[str]:
    return set(re.findall(r'<h[1-6][^>]* id="([^"]+)"', page.read_text(encoding="utf-8")))


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="MkDocs with the Material theme is not installed (pip install -e '.[dev]')",
)
def test_mkdocs_build_strict_passes(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in doc_pages():
        rel = page.relative_to(DOCS).with_suffix("")
        built = site / ("index.html" if rel.as_posix() == "index" else rel / "index.html")
        assert built.exists(), built
        # the anchors this test computes are the ones MkDocs wrote
        assert sorted(anchors(page) - _built_ids(built)) == [], page.name


def test_documented_module_commands_exist() -> None:
    """Every ``python -m deepfake_lib.X`` in the README and the docs is a module that runs as a command."""
    stale = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for module in sorted(set(re.findall(r"-m (deepfake_lib(?:\.\w+)+)", page.read_text()))):
            path = ROOT / Path(*module.split("."))
            entry = path / "__main__.py" if path.is_dir() else path.with_suffix(".py")
            if not entry.is_file() or (entry.name != "__main__.py" and "__main__" not in entry.read_text()):
                stale.append(f"{page.name}: python -m {module}")
    assert stale == []


def test_architecture_page_names_every_module() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "deepfake_lib"
    missing = [
        p.relative_to(package).as_posix()
        for p in sorted(package.glob("*/*.py"))
        if p.name not in ("__init__.py", "__main__.py") and f"`{p.relative_to(package).as_posix()}`" not in text
    ]
    assert missing == []
