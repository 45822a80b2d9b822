"""Every ``srcore ...`` command line in the docs parses with today's CLI, so stale options cannot recur.

Command lines are taken from README.md, docs/*.md and plugins/*/README.md: code blocks (fenced or
indented) and inline code spans that start with ``srcore``. Each is run through click's own parser
of its subcommand (group by group: ``srcore data prepare``), which checks every option name, that
each option gets its value and that no positional argument is left over; a ``Choice`` option's
value must be one of its choices. Nothing is executed. Elisions (``...``, ``[--json]``) and shell
syntax (``# comment``, ``> file``) are read as a reader would.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from srcore.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("plugins/*/README.md"))]
LEAD = re.compile(r"^(?:\$ )?(?:[A-Z_]+=\S* )*(?:\.venv/bin/)?srcore(?= |$)")
SHELL_STOP = {">", ">>", "|", "&&", ";", "2>"}
PLACEHOLDER = "VALUE"


def doc_commands(path: Path) -> list[tuple[int, str]]:
    """(line number, command) for each srcore command line of a Markdown file."""
    lines = path.read_text().splitlines()
    found: list[tuple[int, str]] = []
    in_fence, i = False, 0
    while i < len(lines):
        line, number = lines[i], i + 1
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        elif in_fence or line.startswith("    "):
            text = line.strip()
            while text.endswith("\\") and i + 1 < len(lines):  # a continued shell line
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            if LEAD.match(text):
                found.append((number, text))
        else:
            found += [(number, m[1]) for m in re.finditer(r"`([^`]+)`", line) if LEAD.match(m[1])]
        i += 1
    return found


def argv_of(command: str) -> list[str]:
    """The arguments after ``srcore``, as a reader takes them: comments, redirections and
    environment assignments dropped, ``[--opt]`` read as ``--opt``, an elided ``...`` dropped (or a
    value when it stands for one)."""
    tokens = shlex.split(command, comments=True)
    while tokens and not tokens[0].endswith("srcore"):
        tokens.pop(0)
    argv: list[str] = []
    for tok in tokens[1:]:
        if tok in SHELL_STOP:
            break
        tok = tok.strip("[]") if tok.startswith("[") or tok.endswith("]") else tok
        if tok == "...":
            if argv and argv[-1].startswith("-"):
                argv.append(PLACEHOLDER)
            continue
        argv.append(tok)
    return argv


def parse(argv: list[str]) -> None:
    """Parse ``argv`` as ``srcore`` would, without running anything; raise ``click.UsageError``."""
    ctx = click.Context(main, info_name="srcore")
    cmd: click.Command = main
    while isinstance(cmd, click.Group):
        _, rest, _ = cmd.make_parser(ctx).parse_args(list(argv))
        if not rest:
            return  # `srcore config` alone: the group's help
        sub = cmd.get_command(ctx, rest[0])
        if sub is None:
            raise click.UsageError(f"no such command '{rest[0]}' in '{ctx.command_path}'")
        ctx, cmd, argv = click.Context(sub, parent=ctx, info_name=rest[0]), sub, rest[1:]
    params = {name: p for p in cmd.get_params(ctx) for name in p.opts + p.secondary_opts}
    if argv and argv[-1] in params and not getattr(params[argv[-1]], "is_flag", True):
        argv = [*argv, PLACEHOLDER]  # an option named in prose: `srcore upscale --t-map`
    values, rest, _ = cmd.make_parser(ctx).parse_args(list(argv))
    if rest:
        raise click.UsageError(f"unexpected extra argument(s) {' '.join(rest)}")
    for param in cmd.get_params(ctx):
        value = values.get(param.name)
        if isinstance(param.type, click.Choice) and value is not None and value != PLACEHOLDER:
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if v not in param.type.choices:
                    raise click.UsageError(f"{v!r} is not one of {', '.join(map(str, param.type.choices))} "
                                           f"({'/'.join(param.opts)})")


# Stale commands in files this change does not own, reported to their owners. An entry whose line
# was fixed (or no longer fails) makes the test fail, so the list shrinks as they are fixed.
KNOWN_STALE: dict[tuple[str, str], str] = {}  # (file, line) -> why, for stale lines reported but not yet fixed

CASES = [(d.relative_to(ROOT).as_posix(), n, c) for d in DOCS for n, c in doc_commands(d)]


def test_the_docs_have_commands() -> None:
    files = {f for f, _, _ in CASES}
    assert {"README.md", "docs/training.md", "docs/plugin-authoring.md"} <= files
    assert len(CASES) > 80
    present = {(f, c) for f, _, c in CASES}
    assert [k for k in KNOWN_STALE if k not in present] == []  # fixed: remove it from KNOWN_STALE


@pytest.mark.parametrize(("doc", "line", "command"), CASES, ids=[f"{f}:{n}" for f, n, _ in CASES])
def test_command_line_parses(doc: str, line: int, command: str) -> None:
    stale = KNOWN_STALE.get((doc, command))
    if stale:
        with pytest.raises(click.UsageError):
            parse(argv_of(command))
        pytest.xfail(f"stale, reported: {stale}")
    try:
        parse(argv_of(command))
    except click.UsageError as exc:
        pytest.fail(f"{doc}:{line}: `{command}`: {exc.format_message()}")


@pytest.mark.parametrize(("command", "problem"), [
    ("srcore upscale --checkpoint x.pth photo.png -o out/", "No such option '--checkpoint'"),
    ("srcore eval --model bicubic --data set5 --scale 4 --y-convention matlabb", "'matlabb' is not one of"),
    ("srcore data prepares -i set14", "no such command 'prepares'"),
    ("srcore plugins extra", "unexpected extra argument(s) extra"),
])
def test_stale_commands_are_caught(command: str, problem: str) -> None:
    with pytest.raises(click.UsageError) as err:
        parse(argv_of(command))
    assert problem in err.value.format_message()


def test_reading_rules() -> None:
    assert argv_of("srcore plugins [--json]   # listing") == ["plugins", "--json"]
    assert argv_of("srcore config schema > srcore.schema.json") == ["config", "schema"]
    assert argv_of("srcore config check -r ... -s ...") == ["config", "check", "-r", PLACEHOLDER, "-s", PLACEHOLDER]
    assert argv_of("srcore eval ... --metrics psnr") == ["eval", "--metrics", "psnr"]
    assert argv_of("$ SRCORE_LOAD_PLUGINS=a srcore plugins") == ["plugins"]


def test_authoring_page_documents_every_model_keyword() -> None:
    """The keyword table of docs/plugin-authoring.md names every ModelInfo field (a new field
    without a row fails here)."""
    from srcore.registry import ModelInfo

    page = (ROOT / "docs" / "plugin-authoring.md").read_text()
    rows = set(re.findall(r"^\| `(\w+)` \|", page, re.M))
    assert [f for f in ModelInfo.model_fields if f not in rows] == []
