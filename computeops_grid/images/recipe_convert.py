# ruff: noqa: PLR0912, PLR0915  (one parser per format, one branch per instruction)
"""Dockerfile <-> Singularity/Apptainer definition, in the project's own code.

spython 0.3.14 (what ``image convert`` used) fails on its own output and on common shapes,
measured on the corpus in ``tests/data/recipes/``:

- a stage named ``spython-base`` (``Stage: spython-base``, ``FROM x AS spython-base``, which is
  what spython itself writes) raises ``KeyError: 'spython-base'`` (``_multistage`` copies the
  default stage onto itself, then deletes it);
- lower-case instructions (``from``, ``run``) become ``From: from debian`` and ``RUN run ...``;
- ``%runscript`` becomes ``exec /bin/bash <command> "$@"`` (runs the command as a bash script),
  and every ``ENV`` is also written into ``%post``, so each round trip adds lines.

This module parses both formats into one model (:class:`Stage`) and writes either format from
it; what has no equivalent is kept in a form the other direction reads back, so converting the
output once more gives the same text (``Docker -> def -> Docker -> def``: the two definitions
are equal). Mapping, per stage:

==========================  ===============================================================
Dockerfile                  Singularity definition
==========================  ===============================================================
``FROM img AS name``        ``Bootstrap: docker`` / ``From: img`` / ``Stage: name``
``FROM scratch``            ``Bootstrap: scratch``
``COPY``/``ADD a b``        ``%files`` ``a b`` (``--from=s``: ``%files from s``;
                            ``--chown``/``--chmod``: ``chown``/``chmod`` in ``%post``)
``RUN cmd``                 one ``%post`` command (continuation lines kept)
``ENV K=V``                 ``export K=V`` in ``%environment`` and at its place in ``%post``
``LABEL k=v``               ``%labels`` ``k v``
``WORKDIR d``               ``mkdir -p d`` + ``cd d`` in ``%post``; ``cd d`` opens ``%runscript``
``ENTRYPOINT``/``CMD``      ``%runscript``: ``exec E "$@"``, CMD as ``set --`` when no argument
``USER``, ``EXPOSE``, ...   ``# Dockerfile: USER x`` in ``%post`` (read back as the instruction)
==========================  ===============================================================

A ``%runscript`` of another shape becomes ``ENTRYPOINT ["/bin/sh", "-c", SCRIPT, "runscript"]``
(read back verbatim). ``%post`` lines that open a compound command (``if``/``for``/``case``/
``{``) are joined until it closes, into one ``RUN``. Sections with no Dockerfile equivalent
(``%setup``, ``%test``, ``%startscript``, ``%app*``), other bootstrap agents, ``RUN --mount`` and
heredocs are refused with the file and line. Known losses: ``%files`` are copied before
``%post`` runs (a ``COPY`` after a ``RUN`` moves up), comments are dropped, and a ``cd`` inside a
``RUN`` carries over to the following ``%post`` lines.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from computeops_grid.images.errors import ImageError

PASS_THROUGH = ("USER", "EXPOSE", "ARG", "VOLUME", "SHELL", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD")
KEPT = "# Dockerfile: "
SCRIPT_TAG = "runscript"
_NO_ARGS = "if [ $# -eq 0 ]; then set -- {}; fi"
_SAFE = re.compile(r"^[\w@%+=:,./${}-]*$")
_OPEN = {"if", "for", "while", "until", "case", "{"}
_CLOSE = {"fi", "done", "esac", "}"}
_UNSUPPORTED_SECTIONS = ("setup", "test", "startscript", "help", "app")


@dataclass
class Stage:
    base: str  # "scratch" for FROM scratch / Bootstrap: scratch
    name: str | None = None
    labels: list[tuple[str, str]] = field(default_factory=list)
    files: list[tuple[str, str, str | None]] = field(default_factory=list)  # src, dst, from stage
    # build steps in order: ("run", text) ("env", "K", "V") ("workdir", d) ("kept", instruction)
    steps: list[tuple[str, ...]] = field(default_factory=list)
    runtime_env: list[tuple[str, str]] = field(default_factory=list)  # ENV not set during the build
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    script: str | None = None  # a %runscript of no other shape


@dataclass
class Recipe:
    stages: list[Stage]
    preamble: list[str] = field(default_factory=list)  # instructions before the first FROM


def _fail(path: Path, line: int, message: str) -> ImageError:
    return ImageError(f"{path}:{line}: {message}", hint="convert this part by hand")


def _q(word: str) -> str:
    """Shell word: bare when safe (``$`` left to expand), else double-quoted."""
    if word and _SAFE.match(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'


def _unquote(word: str) -> str:
    try:
        return " ".join(shlex.split(word))
    except ValueError:
        return word


def _exec_form(words: list[str]) -> str:
    return json.dumps(words)


def _depth(text: str) -> int:
    tokens = re.split(r"[\s;&|()]+", text)
    return sum(t in _OPEN for t in tokens) - sum(t in _CLOSE for t in tokens)


# ---------------------------------------------------------------- Dockerfile


def _docker_logical_lines(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """``(first line number, physical segments)``; comments dropped, continuations kept apart."""
    out: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        escape = re.match(r"#\s*escape\s*=\s*(\S)", stripped)
        if not current and number <= 3 and escape and not stripped.endswith("\\"):
            raise _fail(path, number, "only the \\ escape character is supported")
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if not current:
            start = number
        if stripped.endswith("\\"):
            current.append(stripped[:-1].rstrip())
            continue
        current.append(stripped)
        out.append((start, [s for s in current if s]))
        current = []
    if current:
        out.append((start, [s for s in current if s]))
    return out


def _json_or_shell(rest: str) -> list[str] | str:
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except ValueError:
            return rest
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return rest


def _flags(args: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    while args.startswith("--"):
        flag, _, args = args.partition(" ")
        key, _, value = flag[2:].partition("=")
        flags[key.lower()] = value
        args = args.strip()
    return flags, args


def _key_values(path: Path, line: int, rest: str, instruction: str) -> list[tuple[str, str]]:
    try:
        tokens = shlex.split(rest)
    except ValueError as exc:
        raise _fail(path, line, f"{instruction}: {exc}") from None
    if tokens and "=" not in tokens[0]:  # legacy ``ENV KEY value with spaces``
        key, _, value = rest.partition(" ")
        return [(key, " ".join(shlex.split(value)) if value.strip() else "")]
    pairs = []
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise _fail(path, line, f"{instruction}: {token!r} is not KEY=VALUE")
        pairs.append((key, value))
    return pairs


def parse_dockerfile(path: Path, text: str) -> Recipe:
    recipe = Recipe(stages=[])
    for line, segments in _docker_logical_lines(path, text):
        head, _, rest = segments[0].partition(" ")
        instruction = head.upper()
        rest = rest.strip()
        joined = " ".join([rest, *segments[1:]]).strip()
        if instruction == "FROM":
            flags, joined = _flags(joined)
            if flags:
                raise _fail(path, line, f"FROM --{next(iter(flags))} has no definition equivalent")
            parts = joined.split()
            if len(parts) == 3 and parts[1].lower() == "as":
                recipe.stages.append(Stage(base=parts[0], name=parts[2]))
            elif len(parts) == 1:
                recipe.stages.append(Stage(base=parts[0]))
            else:
                raise _fail(path, line, f"cannot read FROM {joined!r}")
            continue
        if not recipe.stages:
            if instruction != "ARG":
                raise _fail(path, line, f"{instruction} before the first FROM")
            recipe.preamble.append(f"ARG {joined}")
            continue
        stage = recipe.stages[-1]
        if instruction == "RUN":
            if rest.startswith("--"):
                raise _fail(path, line, "RUN --flags (BuildKit) have no definition equivalent")
            if "<<" in segments[0] and re.search(r"<<-?\s*['\"]?\w+['\"]?\s*$", segments[0]):
                raise _fail(path, line, "heredocs are not supported")
            form = _json_or_shell(joined)
            body = [" ".join(_q(w) for w in form)] if isinstance(form, list) else [rest, *segments[1:]]
            stage.steps.append(("run", "\n".join(s for s in body if s)))
        elif instruction in ("COPY", "ADD"):
            flags, args = _flags(joined)
            form = _json_or_shell(args)
            words = form if isinstance(form, list) else shlex.split(args)
            if len(words) < 2:
                raise _fail(path, line, f"{instruction} needs a source and a destination")
            source = flags.pop("from", None)
            if source is not None and source.isdigit() and int(source) < len(recipe.stages) - 1:
                source = names_for(recipe)[int(source)]
            for src in words[:-1]:
                stage.files.append((src, words[-1], source))
            if "chown" in flags:
                stage.steps.append(("run", f"chown -R {flags.pop('chown')} {_q(words[-1])}"))
            if "chmod" in flags:
                stage.steps.append(("run", f"chmod -R {flags.pop('chmod')} {_q(words[-1])}"))
            flags.pop("link", None)
            if flags:
                raise _fail(path, line, f"{instruction} --{next(iter(flags))} has no definition equivalent")
        elif instruction == "ENV":
            for key, value in _key_values(path, line, joined, "ENV"):
                stage.steps.append(("env", key, value))
        elif instruction in ("LABEL", "MAINTAINER"):
            pairs = [("maintainer", joined)] if instruction == "MAINTAINER" else None
            stage.labels += pairs or _key_values(path, line, joined, "LABEL")
        elif instruction == "WORKDIR":
            stage.steps.append(("workdir", joined))
        elif instruction in ("ENTRYPOINT", "CMD"):
            form = _json_or_shell(joined)
            words = form if isinstance(form, list) else ["/bin/sh", "-c", form]
            if instruction == "CMD":
                stage.cmd = words
            else:
                stage.entrypoint, stage.cmd = words, None  # Docker: ENTRYPOINT resets CMD
        elif instruction in PASS_THROUGH:
            stage.steps.append(("kept", f"{instruction} {joined}"))
        else:
            raise _fail(path, line, f"unknown instruction {head!r}")
    if not recipe.stages:
        raise _fail(path, 1, "no FROM instruction")
    return recipe


def names_for(recipe: Recipe) -> list[str]:
    """Every stage's name; unnamed stages of a multi-stage recipe get ``stage-N``."""
    if len(recipe.stages) == 1:
        return [recipe.stages[0].name or ""]
    return [s.name or f"stage-{i}" for i, s in enumerate(recipe.stages)]


def _shell_form(words: list[str]) -> str | None:
    if len(words) == 3 and words[:2] == ["/bin/sh", "-c"]:
        return words[2]
    return None


def write_dockerfile(recipe: Recipe) -> str:
    out = list(recipe.preamble)
    for stage in recipe.stages:
        if out:
            out.append("")
        out.append(f"FROM {stage.base}" + (f" AS {stage.name}" if stage.name else ""))
        for key, value in stage.labels:
            out.append(f"LABEL {_q(key)}={_q(value)}")
        for src, dst, source in stage.files:
            out.append("COPY " + (f"--from={source} " if source else "") + f"{src} {dst}")
        for step in stage.steps:
            if step[0] == "run":
                out.append("RUN " + " \\\n    ".join(step[1].split("\n")))
            elif step[0] == "env":
                out.append(f"ENV {step[1]}={_q(step[2])}")
            elif step[0] == "workdir":
                out.append(f"WORKDIR {step[1]}")
            else:
                out.append(step[1])
        for key, value in stage.runtime_env:
            out.append(f"ENV {key}={_q(value)}")
        if stage.script is not None:
            out.append("ENTRYPOINT " + _exec_form(["/bin/sh", "-c", stage.script, SCRIPT_TAG]))
        pairs: list[tuple[str, list[str] | None]] = [("ENTRYPOINT", stage.entrypoint), ("CMD", stage.cmd)]
        for word, argv in pairs:
            if argv is not None:
                shell = _shell_form(argv)
                out.append(f"{word} {shell}" if shell is not None else f"{word} {_exec_form(argv)}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- Singularity definition


def _post_commands(path: Path, lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """One command per ``%post`` command: continuation lines, and the lines of a compound
    command (``if`` ... ``fi``) until it closes, joined as continuation segments (``\\n``),
    with ``;`` added where sh needs one once the newlines are gone."""
    out: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, line in lines:
        if not current:
            start = number
        if re.search(r"<<-?\s*['\"]?\w+['\"]?\s*$", line):
            raise _fail(path, number, "heredocs in %post are not supported")
        if line.endswith("\\"):
            current.append(line[:-1].rstrip())
            continue
        current.append(line)
        if _depth("\n".join(current)) > 0:
            if not re.search(r"(\bthen|\bdo|\belse|\{|\||&&|\(|\bin|;)$", line):
                current[-1] = line + ";"
            continue
        out.append((start, "\n".join(current)))
        current = []
    if current:
        raise _fail(path, start, "this command does not end (an unclosed if/for/case/{)")
    return out


def _plain(command: str) -> bool:
    """No shell operator outside quotes (``;``, ``|``, ``&&``, redirections, backquotes)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return False
    return "`" not in command and not any(set(t) <= set("();<>|&") for t in tokens)


def _parse_runscript(stage: Stage, lines: list[str]) -> None:
    body = list(lines)
    workdirs = [s[1] for s in stage.steps if s[0] == "workdir"]
    if body and workdirs and body[0] == f"cd {_q(workdirs[-1])}":
        body = body[1:]
    cmd = None
    if len(body) == 2 and body[0].startswith("if [ $# -eq 0 ]; then set -- ") and body[0].endswith("; fi"):
        cmd = shlex.split(body[0][len("if [ $# -eq 0 ]; then set -- ") : -len("; fi")])
        body = body[1:]
    if len(body) == 1 and body[0].startswith("exec ") and body[0].endswith(' "$@"'):
        try:
            words = shlex.split(body[0][5:-5])
        except ValueError:
            words = []
        plain = _plain(body[0][5:-5])
        if plain and (words or cmd is not None):
            stage.entrypoint = words or None
            stage.cmd = cmd
            return
    stage.script = "\n".join(lines)


def parse_definition(path: Path, text: str) -> Recipe:
    recipe = Recipe(stages=[])
    stages: list[tuple[dict[str, str], dict[str, list[tuple[int, str]]], int]] = []
    section: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        match = re.match(r"^([A-Za-z]+)\s*:\s*(.*)$", stripped)
        if match and match.group(1).lower() == "bootstrap":
            stages.append(({}, {}, number))
            section = None
        if section is None:  # the header
            if not stripped or (stripped.startswith("#") and not stripped.startswith("%")):
                if stripped.startswith(KEPT.strip()) and not stages:
                    recipe.preamble.append(stripped[len(KEPT) :].strip())
                continue
            if not stages:
                raise _fail(path, number, "the definition must start with Bootstrap:")
            if match:
                key = match.group(1).lower()
                if key not in ("bootstrap", "from", "stage", "registry", "namespace"):
                    raise _fail(path, number, f"header {match.group(1)}: has no Dockerfile equivalent")
                stages[-1][0][key] = match.group(2).split("#", 1)[0].strip()
                continue
        if stripped.startswith("%"):
            words = stripped.split("#", 1)[0].split()
            section = words[0][1:].lower()
            if section.startswith(_UNSUPPORTED_SECTIONS):
                raise _fail(path, number, f"%{section} has no Dockerfile equivalent")
            if section not in ("post", "environment", "runscript", "labels", "files"):
                raise _fail(path, number, f"unknown section %{section}")
            if len(words) == 3 and section == "files" and words[1].lower() == "from":
                section = f"files from {words[2]}"
            elif len(words) > 1:
                raise _fail(path, number, f"cannot read {stripped!r}")
            stages[-1][1].setdefault(section, [])
            continue
        if section is None:
            raise _fail(path, number, f"cannot read {stripped!r} in the header")
        stages[-1][1][section].append((number, raw.rstrip()))
    if not stages:
        raise _fail(path, 1, "no Bootstrap: line")
    recipe.stages = [_stage_of(path, header, body, number) for header, body, number in stages]
    return recipe


def _stage_of(path: Path, header: dict[str, str], body: dict[str, list[tuple[int, str]]], line: int) -> Stage:
    agent = header.get("bootstrap", "").lower()
    if agent == "scratch":
        base = "scratch"
    elif agent in ("docker", "docker-daemon"):
        if "from" not in header:
            raise _fail(path, line, "Bootstrap: docker without From:")
        base = "/".join(header[k] for k in ("registry", "namespace") if header.get(k)) + (
            "/" if header.get("registry") or header.get("namespace") else ""
        )
        base += header["from"]
    else:
        raise _fail(path, line, f"Bootstrap: {header.get('bootstrap')} has no Dockerfile equivalent")
    stage = Stage(base=base, name=header.get("stage"))

    def lines_of(key: str) -> list[tuple[int, str]]:
        return [(n, text.strip()) for n, text in body.get(key, []) if text.strip()]

    for key in [k for k in body if k == "files" or k.startswith("files from ")]:
        source = key[len("files from ") :] if key != "files" else None
        for number, text in lines_of(key):
            if text.startswith("#"):
                continue
            words = shlex.split(text)
            if len(words) == 1:  # no destination: the same path inside the image
                words = [words[0], words[0] if words[0].startswith("/") else "/" + words[0]]
            if len(words) != 2:
                raise _fail(path, number, f"%files line {text!r} is not SOURCE [DESTINATION]")
            stage.files.append((words[0], words[1], source))
    for _number, text in lines_of("labels"):
        if text.startswith("#"):
            continue
        key, _, value = text.partition(" ")
        value = value.strip()
        if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        stage.labels.append((key, value))
    environment: list[tuple[str, str]] = []
    for number, text in lines_of("environment"):
        if text.startswith("#"):
            continue
        try:
            tokens = shlex.split(re.sub(r"^export\s+", "", text))
        except ValueError as exc:
            raise _fail(path, number, f"%environment: {exc}") from None
        pairs = [t.partition("=") for t in tokens]
        if not pairs or any(not sep for _, sep, _ in pairs):
            raise _fail(path, number, f"%environment line {text!r} is not export KEY=VALUE")
        environment += [(k, v) for k, _, v in pairs]
    pending = list(environment)
    post = [(n, t) for n, t in lines_of("post") if not t.startswith("#") or t.startswith(KEPT.strip())]
    commands = _post_commands(path, post)
    i = 0
    while i < len(commands):
        number, text = commands[i]
        nxt = commands[i + 1][1] if i + 1 < len(commands) else None
        mkdir = re.match(r"^mkdir -p (\S+)$", text)
        export = re.match(r"^export (\w+)=(.*)$", text)
        pair = (export.group(1), _unquote(export.group(2))) if export else None
        if text.startswith(KEPT.strip()):
            stage.steps.append(("kept", text[len(KEPT) :].strip()))
        elif mkdir and nxt == f"cd {mkdir.group(1)}":
            stage.steps.append(("workdir", shlex.split(mkdir.group(1))[0]))
            i += 1
        elif re.match(r"^cd \S+$", text):
            stage.steps.append(("workdir", shlex.split(text[3:])[0]))
        elif pair is not None and pair in pending:
            pending.remove(pair)
            stage.steps.append(("env", *pair))
        else:
            stage.steps.append(("run", text))
        i += 1
    stage.runtime_env = pending
    runscript = [t for _, t in lines_of("runscript")]
    if runscript:
        _parse_runscript(stage, runscript)
    return stage


def write_definition(recipe: Recipe) -> str:
    out = [KEPT + line for line in recipe.preamble]
    names = names_for(recipe)
    multi = len(recipe.stages) > 1
    for index, stage in enumerate(recipe.stages):
        if out:
            out.append("")
        if stage.base == "scratch":
            out.append("Bootstrap: scratch")
        else:
            out += ["Bootstrap: docker", f"From: {stage.base}"]
        if stage.name or multi:
            out.append(f"Stage: {names[index]}")
        sources: dict[str | None, list[str]] = {}
        for src, dst, source in stage.files:
            sources.setdefault(source, []).append(f"    {_q(src)} {_q(dst)}")
        for source, lines in sources.items():
            out += ["", "%files" + (f" from {source}" if source else ""), *lines]
        if stage.labels:
            out += ["", "%labels", *(f"    {key} {value}" for key, value in stage.labels)]
        envs = [(s[1], s[2]) for s in stage.steps if s[0] == "env"] + stage.runtime_env
        if envs:
            out += ["", "%environment", *(f"    export {k}={_q(v)}" for k, v in envs)]
        post = []
        for step in stage.steps:
            if step[0] == "run":
                post.append("    " + " \\\n        ".join(step[1].split("\n")))
            elif step[0] == "env":
                post.append(f"    export {step[1]}={_q(step[2])}")
            elif step[0] == "workdir":
                post += [f"    mkdir -p {_q(step[1])}", f"    cd {_q(step[1])}"]
            else:
                post.append(f"    {KEPT}{step[1]}")
        if post:
            out += ["", "%post", *post]
        runscript = _runscript_lines(stage)
        if runscript:
            out += ["", "%runscript", *(f"    {line}" for line in runscript)]
    return "\n".join(out) + "\n"


def _runscript_lines(stage: Stage) -> list[str]:
    workdirs = [s[1] for s in stage.steps if s[0] == "workdir"]
    lines = [f"cd {_q(workdirs[-1])}"] if workdirs else []
    entrypoint = stage.entrypoint
    if stage.script is None and entrypoint and entrypoint[:2] == ["/bin/sh", "-c"] and stage.cmd is None:  # noqa: SIM102
        if len(entrypoint) == 4 and entrypoint[3] == SCRIPT_TAG:
            return entrypoint[2].split("\n")
    if stage.script is not None:
        return stage.script.split("\n")
    if entrypoint is None and stage.cmd is None:
        return []
    if stage.cmd is not None:
        lines.append(_NO_ARGS.format(" ".join(_q(w) for w in stage.cmd)))
    lines.append("exec " + "".join(_q(w) + " " for w in entrypoint or []) + '"$@"')
    return lines


def convert_text(path: Path, text: str, source: str) -> str:
    """``source`` is ``docker`` or ``singularity``; the result is the other format."""
    if source == "docker":
        return write_definition(parse_dockerfile(path, text))
    return write_dockerfile(parse_definition(path, text))
