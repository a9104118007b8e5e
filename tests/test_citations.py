"""Paper citations anyone can resolve: sources, tests, launch and docker files and docs cite
papers by name and year plus the equation, section or table (see docs/references.md), never
by the three-digit numbers of the files in the team's private papers folder, and the five
method papers are cited with one name and one year everywhere."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = (
    "anomask",
    "models",
    "training",
    "evaluation",
    "export",
    "ros2_ws",
    "launch",
    "docker",
    "tests",
    "docs",
    "README.md",
)
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".cfg", ".xml", ".sh", ".toml", ".txt"}
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", "build", "install", "log"}
REFERENCES = ROOT / "docs" / "references.md"

NUMBER = r"00[0-4]"
BARE_CITATIONS = [
    re.compile(rf"\bpapers?\s+{NUMBER}\b", re.IGNORECASE),  # paper N, Paper N Table 5
    re.compile(  # N eq. 15, N §4, N Table 5, N's Fig. 3
        rf"\b{NUMBER}(?:'s)?,?\s*(?:eqs?\.|§|tables?\b|figs?\.|figure\b|sec\.|section\b)", re.IGNORECASE
    ),
    re.compile(rf"\({NUMBER}\)"),  # (N)
    re.compile(rf"\b{NUMBER}-(?:T\d|\d)", re.IGNORECASE),  # the old claim ids, N-T5-eam
    re.compile(rf"\b{NUMBER}'s\b"),  # N's cumulative reading
]

CANONICAL = {
    "EAM": ("Grcić", 2023),
    "Mask2Anomaly": ("Rai", 2024),
    "noisy negatives": ("Bevandić", 2022),
    "GOSS": ("Hong", 2022),
    "UNO": ("Delić", 2024),
}
NAMED_CITATION = re.compile(r"\b(EAM|Mask2Anomaly|[Nn]oisy negatives|GOSS|UNO) \((\w+) et al\., (\d{4})\)")


def _scanned_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in [ROOT / top] if (ROOT / top).is_file() else sorted((ROOT / top).rglob("*")):
            parts = set(path.relative_to(ROOT).parts)
            if path.is_file() and not parts & SKIPPED_DIRS and (path.suffix in SUFFIXES or "Dockerfile" in path.name):
                files.append(path)
    return files


def bare_citations(text: str) -> list[str]:
    """Every match of a bare paper-file-number citation in ``text``."""
    return [m.group(0) for pattern in BARE_CITATIONS for m in pattern.finditer(text)]


def test_the_patterns_catch_bare_numbers_and_spare_names_and_decimals():
    zero, one, two, three, four = ("00" + str(digit) for digit in range(5))  # no bare number in this file
    bad = [
        f"paper {one} §7.3",
        f"Paper {zero} Table 5: ...",
        f"({one} eq. 15)",
        f"({four} §4)",
        f"({three} Table 3)",
        f"{two}'s two-head model",
        f"a per-pixel ({two}) model",
        f'"{zero}-T5-eam"',
        f"{zero} Fig. 3",
    ]
    assert [text for text in bad if not bare_citations(text)] == []
    good = [
        "Mask2Anomaly (Rai et al., 2024), eq. 15",
        "paste_share: (0.001, 0.1)",
        "stamp 1000.001 s",
        "254_000 + instance",
        '"eam-t5-eam"',
    ]
    assert [text for text in good if bare_citations(text)] == []


def test_no_bare_paper_file_numbers():
    files = _scanned_files()
    assert len(files) > 100, [str(f) for f in files]  # the scan did find the tree
    found = []
    for path in files:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if bare_citations(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "cite papers by name and year (docs/references.md):\n" + "\n".join(found)


def test_the_five_method_papers_keep_one_name_and_one_year():
    wrong = []
    for path in _scanned_files():
        for match in NAMED_CITATION.finditer(path.read_text(errors="replace")):
            name, author, year = match.group(1), match.group(2), int(match.group(3))
            if (author, year) != CANONICAL[name if name != "Noisy negatives" else "noisy negatives"]:
                wrong.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert wrong == []


@pytest.mark.parametrize("name", ["EAM", "Mask2Anomaly", "Noisy negatives", "GOSS", "UNO"])
def test_references_list_each_method_paper_with_its_citation(name):
    text = REFERENCES.read_text()
    entry = text.split(f"\n### {name}\n", 1)[1].split("\n### ", 1)[0]
    author, year = CANONICAL[name if name != "Noisy negatives" else "noisy negatives"]
    assert f"({author} et al., {year})" in entry
    assert re.search(r"\(https://arxiv\.org/abs/\d{4}\.\d{5}\)", entry)
