"""The documentation checked against the code: README.md and docs/*.md.

- Every command in a shell block (```sh, ```bash) parses with the CLI's own parser, ``pcdms.cli.build_parser()``:
  parsed only, nothing is run. Placeholders (``DIR``, ``person.jpg``, ``$EX/...``) need no substitution, since the
  parser takes any string as a path; where the parser checks a value (a number, a ``WxH`` size, a choice) the docs
  must show a real one. A synopsis with ``[optional]`` parts is not a command: it goes in a ```text block.
- Every code block says what it is: a shell block's lines are all commands this test knows (pcdms, ``make`` with a
  target of the Makefile, ``python`` with a script of the repository), ```python blocks compile and the pcdms names
  they import exist, ```text blocks (output, synopses) and data formats are not checked. A block without a
  language fails, so nothing is skipped silently. The ``--options`` a ```text synopsis names must exist.
- Every relative link and image points to a file of the repository, and an ``#anchor`` to a heading of that page.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import shlex
from pathlib import Path

import pytest

from pcdms.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"sh", "bash", "shell"}
NOT_CHECKED = {"text", "yaml", "json", "csv"}  # output, synopses and data formats: not commands
LAUNCHERS = {"accelerate", "torchrun"}  # run `-m pcdms ...` on several processes
FENCE = re.compile(r"^```(\S*)\s*$")


def page_name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def code_blocks(page: Path) -> list[tuple[str, int, list[str]]]:
    """(language, line number of the opening fence, the block's lines) of each fenced block of a page."""
    blocks, current = [], None
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        match = FENCE.match(line)
        if current is None and match:
            current = (match.group(1), number, [])
        elif current is not None and line.rstrip() == "```":
            blocks.append(current)
            current = None
        elif current is not None:
            current[2].append(line)
    assert current is None, f"{page_name(page)}: the block opened on line {current[1]} is not closed"
    return blocks


def prose_lines(page: Path) -> list[str]:
    """The page's lines outside fenced blocks."""
    lines, inside = [], False
    for line in page.read_text().splitlines():
        if FENCE.match(line) or (inside and line.rstrip() == "```"):
            inside = not inside
        elif not inside:
            lines.append(line)
    return lines


def shell_commands(lines: list[str], first_line: int) -> list[tuple[int, list[str]]]:
    """(line number, words) of each command: continuation lines joined, comments dropped, as the shell splits it."""
    commands, pending, start = [], "", None
    for number, line in enumerate(lines, start=first_line + 1):
        start = start or number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words = shlex.split(pending + line, comments=True)
        if words:
            commands.append((start, words))
        pending, start = "", None
    assert not pending, f"a continuation line ends the block (line {start})"
    return commands


def pcdms_arguments(words: list[str]) -> list[str] | None:
    """The arguments after ``pcdms`` (or ``python -m pcdms``, or a launcher's ``-m pcdms``); None for another program."""
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):  # VAR=value before a command
        words = words[1:]
    if not words:
        return None
    if words[0] == "pcdms":
        return words[1:]
    for position in range(len(words) - 1):
        if words[position : position + 2] == ["-m", "pcdms"] and (words[0] in LAUNCHERS or position == 1):
            return words[position + 2 :]
    return None


def check_other_program(words: list[str]) -> None:
    """A shell line that is not pcdms: a VAR=value, ``make TARGET`` of the Makefile or ``python SCRIPT`` that exists."""
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words = words[1:]
    if not words:
        return
    program, *rest = words
    if program == "make":
        targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
        named = [word for word in rest if "=" not in word]
        assert named and set(named) <= set(targets), f"make {' '.join(rest)}: not a target of the Makefile {targets}"
    elif program in ("python", "python3") and rest and rest[0].endswith(".py"):
        assert (ROOT / rest[0]).is_file(), f"{rest[0]}: no such script in the repository"
    else:
        raise AssertionError(f"{' '.join(words)!r} is not a command this test knows: put it in a ```text block")


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, words) of every command in every shell block of the documentation."""
    found = []
    for page in PAGES:
        for language, line, lines in code_blocks(page):
            if language in SHELL:
                found += [(f"{page_name(page)}:{number}", words) for number, words in shell_commands(lines, line)]
    return found


COMMANDS = documented_commands()
PCDMS_COMMANDS = [(where, words) for where, words in COMMANDS if pcdms_arguments(words) is not None]


def test_every_code_block_says_what_it_is():
    for page in PAGES:
        for language, line, _ in code_blocks(page):
            known = SHELL | NOT_CHECKED | {"python"}
            assert language in known, (
                f"{page_name(page)}:{line}: a ```{language} block; mark it ```sh (its commands are checked), "
                "```python, or ```text (not a command)"
            )


def test_the_docs_show_commands():
    """The extraction found the documented commands (a broken extractor would pass every check below)."""
    readme = [where for where, _ in PCDMS_COMMANDS if where.startswith("README.md:")]
    assert len(readme) >= 3
    assert len(PCDMS_COMMANDS) >= 30
    # Continuations are joined: the conversion of the authors' checkpoints is one command over three lines.
    convert = [words for _, words in PCDMS_COMMANDS if words[1:3] == ["convert", "official"]]
    assert any("--stable-diffusion" in words and "--out" in words for words in convert)


@pytest.mark.parametrize("where, words", PCDMS_COMMANDS, ids=[where for where, _ in PCDMS_COMMANDS])
def test_every_pcdms_command_parses(where, words):
    parser = build_parser()
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            arguments = parser.parse_args(pcdms_arguments(words))
    except SystemExit:
        pytest.fail(f"{where}: {shlex.join(words)}\n{errors.getvalue()}")
    assert isinstance(arguments, argparse.Namespace) and arguments.command == pcdms_arguments(words)[0]


def test_every_other_shell_line_is_a_known_program():
    for where, words in COMMANDS:
        if pcdms_arguments(words) is None:
            try:
                check_other_program(words)
            except AssertionError as error:
                raise AssertionError(f"{where}: {error}") from None


def subcommand_parser(parser: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser | None:
    """The parser of the (sub)command a synopsis line names (``pcdms data validate ...``), or None for no command."""
    found = None
    for word in words:
        choices = [action.choices for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
        if not choices or word not in choices[0]:
            break
        parser = found = choices[0][word]
    return found


def test_every_option_a_synopsis_names_exists():
    """Synopses (```text lines such as ``pcdms serve [--model DIR] [--port N]``) are not parsed as commands, but
    each ``--option`` they name must be one of that command's options."""
    checked = 0
    for page in PAGES:
        for language, line, lines in code_blocks(page):
            if language != "text":
                continue
            for number, text in enumerate(lines, start=line + 1):
                words = text.split("#")[0].split()
                if words[:1] != ["pcdms"]:
                    continue
                parser = subcommand_parser(build_parser(), [word.split("|")[0] for word in words[1:]])
                if parser is None:  # output such as "pcdms demo: ...", not a synopsis
                    continue
                options = {option for action in parser._actions for option in action.option_strings}
                named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
                assert named <= options, f"{page_name(page)}:{number}: {sorted(named - options)} not options of it"
                checked += 1
    assert checked >= 19  # the command line page's synopsis of every command


def python_blocks() -> list[tuple[str, str]]:
    return [
        (f"{page_name(page)}:{line}", "\n".join(lines))
        for page in PAGES
        for language, line, lines in code_blocks(page)
        if language == "python"
    ]


@pytest.mark.parametrize("where, code", python_blocks(), ids=[where for where, _ in python_blocks()])
def test_every_python_block_compiles_and_its_pcdms_imports_exist(where, code):
    import ast

    tree = ast.parse(compile(code, where, "exec", flags=ast.PyCF_ONLY_AST))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pcdms":
            module = importlib.import_module(node.module)
            missing = [alias.name for alias in node.names if not hasattr(module, alias.name)]
            assert not missing, f"{where}: `from {node.module} import` {', '.join(missing)}: no such name"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "pcdms":
                    importlib.import_module(alias.name)


def heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens, -1 on repeats."""
    anchors: set[str] = set()
    for line in prose_lines(page):
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            anchor, repeat = slug, 0
            while anchor in anchors:
                repeat += 1
                anchor = f"{slug}-{repeat}"
            anchors.add(anchor)
    return anchors


def relative_links(page: Path) -> list[str]:
    """Link and image targets of a page's prose (inline code excluded) that are not web addresses."""
    text = re.sub(r"`[^`\n]*`", "", "\n".join(prose_lines(page)))
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [target for target in targets if not re.match(r"[a-z]+:", target)]


def test_every_relative_link_points_to_an_existing_file_and_heading():
    broken = []
    for page in PAGES:
        for target in relative_links(page):
            path_part, _, anchor = target.partition("#")
            destination = (page.parent / path_part).resolve() if path_part else page
            if not destination.exists():
                broken.append(f"{page_name(page)}: {target} (no such file)")
            elif anchor and destination.suffix == ".md" and anchor not in heading_anchors(destination):
                broken.append(f"{page_name(page)}: {target} (no such heading in {destination.name})")
    assert not broken, "\n".join(broken)


def test_the_link_check_sees_links():
    assert "docs/install.md" in relative_links(ROOT / "README.md")
    assert "reliability-errors-warnings-outputs" in heading_anchors(ROOT / "README.md")
    assert "the-bundled-model-pcdms-street-and-the-street-benchmark" in heading_anchors(
        ROOT / "docs" / "street-benchmark.md"
    )
