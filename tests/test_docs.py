"""The README and docs/ say only what is there: every relative link (and its #anchor) leads somewhere, every
module and file path they name exists, every command line they show parses with the real parser, and the
README's test command is the one CI runs."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

from siamese_core.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SPAN = re.compile(r"`([^`\n]+)`")
FILE_PATH = re.compile(r"(?<![\w/.-])((?:siamese_core|app_pages|tests|benchmarks|assets|\.ci|\.streamlit)/[\w./-]*[\w/])")
MODULE = re.compile(r"(?<![\w.])siamese_core(?:\.\w+)+")
COMMANDS = {"train", "runs", "eval", "verify", "embed", "similar", "export"}


def text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def prose(page: Path) -> str:
    """The page without its code blocks (a `# comment` in one is not a heading, a `[x](y)` not a link)."""
    return FENCE.sub("", text(page))


def code_lines(page: Path) -> list:
    """The lines of the page's code blocks, a line ending in a backslash joined to the next."""
    lines = []
    for block in FENCE.findall(text(page)):
        body = re.sub(r"\\\n\s*", " ", block)
        lines += body.splitlines()[1:-1]
    return lines


def anchors(page: Path) -> set:
    """The #anchors of a page's headings, made as GitHub makes them."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", prose(page), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name if p.parent == ROOT else f"docs/{p.name}")
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page):
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z]+:", target):
            continue  # a web address: not checked offline
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no such heading")
    assert not broken, f"{page.name}: {broken}"


def module_exists(dotted: str) -> bool:
    """`siamese_core.a.b` is a module, or a module followed by a name defined at its top level."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:cut])
        source = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if source.is_file():
            rest = parts[cut:]
            if not rest:
                return True
            if len(rest) > 1:
                return False
            tree = ast.parse(source.read_text(encoding="utf-8"))
            names = set()
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names |= {t.id for t in targets if isinstance(t, ast.Name)}
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    names |= {(a.asname or a.name).split(".")[0] for a in node.names}
            return rest[0] in names
    return False


def test_every_module_and_file_path_named_exists():
    missing = []
    for page in PAGES:
        for dotted in MODULE.findall(text(page)):
            if not module_exists(dotted):
                missing.append(f"{page.name}: {dotted}")
        for path in FILE_PATH.findall(text(page)):
            if not (ROOT / path).exists():
                missing.append(f"{page.name}: {path}")
    assert not missing, missing


def options(parser) -> dict:
    """Each sub-command's option strings (--train_path, --no-frozen...)."""
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {name: set(p._option_string_actions) for name, p in sub.choices.items()}


def shown_commands(page: Path) -> tuple:
    """(full command lines, fragments): `python -m siamese_core ...` lines of code blocks and code spans, and
    what only names a command and some flags (`train ... --frozen`, `--same-share 0.3`, `eval`, `--help`)."""
    full, fragments = [], []
    for line in code_lines(page) + SPAN.findall(prose(page)):
        line = line.split(" #")[0].strip()
        if "-m siamese_core " in line:
            args = line.split("-m siamese_core ", 1)[1]
            placeholder = "<" in args or "..." in args or "|" in args or "--help" in args
            (fragments if placeholder or len(args.split()) < 2 else full).append(args)
        elif line.split(" ", 1)[0] in COMMANDS or line.startswith("--"):
            fragments.append(line)
    return full, fragments


def test_every_command_line_shown_parses_and_names_real_flags():
    parser = build_parser()
    flags = options(parser)
    every_flag = set().union(*flags.values())
    wrong = []
    for page in PAGES:
        full, fragments = shown_commands(page)
        for args in full:
            tokens = shlex.split(args.replace("[", " ").replace("]", " "))
            try:
                parser.parse_args(tokens)
            except SystemExit:
                wrong.append(f"{page.name}: python -m siamese_core {args}")
        for fragment in full + fragments:
            first = fragment.split()[0]
            known = flags[first] if first in COMMANDS else every_flag
            wrong += [f"{page.name}: {flag} in `{fragment}`" for flag in re.findall(r"(?<!\S)--[\w-]+", fragment)
                      if flag not in known]
    assert not wrong, wrong


def test_every_script_shown_exists_with_the_flags_shown():
    wrong = []
    for page in PAGES:
        for line in code_lines(page) + SPAN.findall(prose(page)):
            for script, args in re.findall(r"python ((?:benchmarks|assets)/\w+\.py)([^`#\n]*)", line):
                source = ROOT / script
                if not source.is_file():
                    wrong.append(f"{page.name}: {script}")
                    continue
                wrong += [f"{page.name}: {script} {flag}" for flag in re.findall(r"(?<!\S)--[\w-]+", args)
                          if f'"{flag}"' not in source.read_text(encoding="utf-8")]
    assert not wrong, wrong


def test_the_readme_starts_with_the_two_set_up_commands_and_ci_runs_the_second():
    readme = text(ROOT / "README.md")
    first_block = FENCE.search(readme).group(0).splitlines()[1:-1]
    assert first_block == ["pip install -r requirements.txt && streamlit run app.py",
                           "pip install -r requirements-dev.txt && python -m pytest"]
    assert readme.index("```bash") < readme.index("\n## ")  # before any section: the front door opens with them
    assert first_block[1] in text(ROOT / ".ci" / "run").splitlines()
