#!/usr/bin/env python3
"""cops-pilot: run a job's payload in a container with whatever runtime the worker node offers.

Single file, standard library only, Python 3.6+, so it can travel inside any grid job.

    cops-pilot --image IMAGE [--image-root DIR] [--runtime a,b,...] [--workdir DIR]
        [--env K=V]... [--pass-env NAME]... [--bind SRC[:DST[:ro|rw]]]... [--gpu]
        [--report FILE] [--require-container|--allow-uncontained] [--config FILE]
        [--dry-run] -- COMMAND [ARG...]
    cops-pilot --image host: [--workdir DIR] [--env K=V]... [--pass-env NAME]... [--report FILE]
        [--dry-run] -- COMMAND [ARG...]
    cops-pilot --list-runtimes [--json] [--image IMAGE]

The payload sees the job's scratch directory at /srv (also its working directory and HOME),
/cvmfs read-only when the node has it, the site's extra binds, and a clean environment made of
PATH, HOME, the pass-through list and the job's own variables. Runtimes that cannot create mount
points (charliecloud, runc) run images lacking /srv or /cvmfs on a shadow root made in the
wrapper's scratch; nothing is ever written into the image.

A payload never runs uncontained unless told to: either ``--allow-uncontained`` (a fallback
when no runtime works), or host mode, ``--image host:``, which runs COMMAND directly on the node
(site validation probes the node itself). Host mode keeps the scratch directory as working
directory and HOME, the clean environment (PATH is the node's own), the exit-code contract and
the report (runtime "host"); --bind and --require-container are refused with it.

Exit codes: the payload's own code comes back unchanged (killed by signal N -> 128+N); the
wrapper's failures use the immutable table EXIT_CODES below, with one line on stderr:
``cops-pilot: error <code>: <what failed>; <what to do>``.

Site configuration (INI, section [pilot]) comes from --config, $COPS_PILOT_CONFIG or
/etc/cops-pilot.conf; every key can be overridden by $COPS_PILOT_<KEY> (see etc/pilot.conf).
"""

import os
import sys
import time

# Start-up cost is the wrapper's overhead on every job: the hot path (warm probe cache, run,
# report) imports nothing beyond os, sys, time, select and the C signal module, all cheap;
# argparse (help, errors), re (a failed payload), configparser (unusual config files), and
# subprocess/tempfile/shutil (probes) are imported where needed. See benchmarks/pilot_overhead.py.
MYPY = False
if MYPY:  # typing costs ~10 ms of start-up; the annotations are type comments, checked by mypy
    import signal as signals
    from collections.abc import Mapping, Sequence  # noqa: F401
    from types import MappingProxyType
else:
    try:
        import _signal as signals  # the C module behind `signal`, loaded at start-up (`signal` adds enum)
    except ImportError:  # pragma: no cover - interpreters without it
        import signal as signals

    MappingProxyType = type(type.__dict__)  # types.MappingProxyType without importing types

__version__ = "0.2.0"
VERBOSE = []  # type: List[bool]  # set by -v; the wrapper avoids importing logging (start-up time)


def log(message, *args):
    # type: (str, Any) -> None
    if VERBOSE:
        sys.stderr.write("cops-pilot: " + (message % args if args else message) + "\n")


# Exit codes 240-249 are reserved for cops-grid itself: the wrapper's own failures and those of
# the job scripts backends write around it (which exit before the wrapper runs). EXIT_CODES is
# the one table of them. Client code loads this file to read it (computeops_grid/jobs/
# exit_codes.py); the copies kept where this file cannot be imported (probes/probelib.py,
# cops_dirac_launch.py) are pinned to it by tests/pilot/test_tables.py, which also fails on a
# literal 240-249 anywhere else under computeops_grid/. A new code gets a row here first.
EXIT_RESERVED = range(240, 250)
EXIT_BAD_ARGS = 240
EXIT_NO_RUNTIME = 241
EXIT_IMAGE_NOT_FOUND = 242
EXIT_IMAGE_ROOT_ABSENT = 243
EXIT_START_FAILED = 244
EXIT_STAGE_IN_FAILED = 245  # an input URL could not be fetched: the payload did not start
EXIT_STAGE_OUT_FAILED = 246  # an output could not be stored, or its checksum disagrees
EXIT_JOB_INDEX_UNKNOWN = 247  # job scripts only (the Slurm array dispatcher), never the wrapper
EXIT_JOB_DIR_UNUSABLE = 248  # job scripts only (cops-job.sh), never the wrapper
EXIT_INTERNAL = 249

# code -> (reason keyword used in the report, what it means). Immutable: backends and site
# validation rely on these numbers; rows may be added, never renumbered.
EXIT_CODES = MappingProxyType(
    {
        EXIT_BAD_ARGS: ("bad-arguments", "bad command line or site configuration"),
        EXIT_NO_RUNTIME: ("no-runtime", "no working container runtime (payload not run uncontained)"),
        EXIT_IMAGE_NOT_FOUND: ("image-not-found", "the image is not under the image root"),
        EXIT_IMAGE_ROOT_ABSENT: ("image-root-absent", "CVMFS / the image root is not available"),
        EXIT_START_FAILED: ("start-failed", "the runtime failed to start the container"),
        EXIT_STAGE_IN_FAILED: (
            "stage-in-failed",
            "an input URL could not be fetched from storage (payload not started)",
        ),
        EXIT_STAGE_OUT_FAILED: (
            "stage-out-failed",
            "an output could not be stored, or the storage's checksum disagrees (file kept in the sandbox)",
        ),
        EXIT_JOB_INDEX_UNKNOWN: (
            "job-index-unknown",
            "the batch job script found no job for its array index (wrapper not started)",
        ),
        EXIT_JOB_DIR_UNUSABLE: (
            "job-dir-unusable",
            "the job script could not enter the job directory (wrapper not started)",
        ),
        EXIT_INTERNAL: ("internal-error", "unexpected error inside the wrapper"),
    }
)

CONTAINER_WORKDIR = "/srv"
DEFAULT_IMAGE_ROOT = "/cvmfs/unpacked.cern.ch"
# How docker://[REGISTRY/]REPOSITORY[:TAG][@DIGEST] maps to a path under the image root, the
# layout DUCC publishes on /cvmfs/unpacked.cern.ch: REGISTRY/REPOSITORY:TAG, or :DIGEST without
# a tag. The client's computeops_grid/images/reference.py keeps the same table; the test
# tests/pilot/test_tables.py checks the two are equal and feeds both sides one corpus of names
# (tests/data/image-refs.txt), rejections included.
IMAGE_NAME_RULES = MappingProxyType(
    {
        "default_registry": "registry.hub.docker.com",  # when the first part has no . or : nor is localhost
        "registry_aliases": ("docker.io", "index.docker.io", "registry-1.docker.io"),  # -> the default
        "official_namespace": "library",  # one-part names on the default registry: library/busybox
        "default_tag": "latest",  # neither TAG nor DIGEST
        "digest_algorithm": "sha256",  # DIGEST is sha256:<64 lower-case hex>
        "digest_hex_length": 64,
        "tag_max_length": 128,  # TAG is [A-Za-z0-9_][A-Za-z0-9_.-]*
    }
)  # type: Mapping[str, Any]
DEFAULT_REGISTRY = IMAGE_NAME_RULES["default_registry"]  # type: str
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The default order: the grid's runtimes first, then the lightweight ones a site installs, then the
# OCI engines, and udocker last, the fallback that needs nothing from the site but runs through
# proot (ptrace). The project's runtime study (`cops-grid bench runtimes`, 2-core Debian 12 node)
# measured what that fallback costs: start-up 121 ms for udocker against 2 ms for charliecloud and
# 5 ms for bubblewrap, and 33-37x bare metal on the small-file workload for proot/udocker against
# 0.94x for charliecloud and bubblewrap. proot alone and docker (a root daemon) run only when named.
# Sites reorder it (`runtimes =` in pilot.conf, COPS_PILOT_RUNTIMES); the report says why one won.
DEFAULT_ORDER = "apptainer,singularity,charliecloud,bubblewrap,runc,podman,udocker"
# what each runtime brings, quoted in the report's "why" when it wins
RUNTIME_NOTES = MappingProxyType(
    {
        "apptainer": "the grid's standard runtime (SIF and CVMFS images, setuid or user namespaces)",
        "singularity": "apptainer's predecessor (same images and binds)",
        "charliecloud": "unprivileged, no daemon; measured start-up 2 ms, small files 0.94x bare metal",
        "bubblewrap": "unprivileged, no daemon; measured start-up 5 ms, small files 0.94x bare metal",
        "runc": "the OCI runtime, rootless through user namespaces",
        "podman": "a daemonless OCI engine (image import and conmon at every start)",
        "udocker": "the fallback that needs nothing from the site; it runs through proot (ptrace): "
        "measured start-up 121 ms, small files 33-37x bare metal",
        "proot": "ptrace, no namespaces needed; measured 33-37x bare metal on small files",
        "docker": "needs the Docker daemon (root-equivalent access)",
    }
)  # type: Mapping[str, str]
DEFAULT_PASS_ENV = (
    "X509_USER_PROXY,X509_CERT_DIR,X509_VOMS_DIR,BEARER_TOKEN,BEARER_TOKEN_FILE,LANG,TZ,OMP_NUM_THREADS"
)
SYSTEM_CONFIG = "/etc/cops-pilot.conf"
PROBE_TIMEOUT = 30.0
TAIL_BYTES = 16384


class PilotError(Exception):
    """A failure of the wrapper itself: one of EXIT_CODES, what failed and what to do."""

    def __init__(self, code, what, todo):
        # type: (int, str, str) -> None
        Exception.__init__(self, what)
        self.code = code
        self.what = what
        self.todo = todo

    def line(self):
        # type: () -> str
        return f"cops-pilot: error {self.code}: {self.what}; {self.todo}"


# ----------------------------------------------------------------------------- settings


class Settings:
    """Site configuration merged from defaults, config file, environment and command line."""

    KEYS = ("runtimes", "image_root", "binds", "pass_env", "require_container", "cache_dir", "cache_ttl",
            "s3_endpoint", "s3_region", "s3_keys", "transfer_retries", "transfer_backoff")  # fmt: skip

    def __init__(self):
        # type: () -> None
        self.runtimes = DEFAULT_ORDER
        self.image_root = DEFAULT_IMAGE_ROOT
        self.binds = ""
        self.pass_env = DEFAULT_PASS_ENV
        self.require_container = "yes"
        self.cache_dir = ""
        self.cache_ttl = "300"
        self.s3_endpoint = ""  # storage settings: cops_transfer.py (grid storage URLs)
        self.s3_region = ""
        self.s3_keys = ""  # a shared-credentials file (INI) with the node's S3 keys
        self.transfer_retries = "3"
        self.transfer_backoff = "2"
        self.sources = []  # type: List[str]
        self.runtimes_source = "built-in default"  # where the order came from, for the report

    def update(self, values, source):
        # type: (Mapping[str, str], str) -> None
        for key, value in values.items():
            key = key.strip().lower().replace("-", "_")
            if key not in self.KEYS:
                raise PilotError(
                    EXIT_BAD_ARGS,
                    f"unknown setting {key!r} in {source}",
                    "use one of " + ", ".join(self.KEYS),
                )
            setattr(self, key, value.strip())
            if key == "runtimes":
                self.runtimes_source = "COPS_PILOT_RUNTIMES" if source == "environment" else source
        self.sources.append(source)

    def order(self):
        # type: () -> List[str]
        return split_list(self.runtimes)

    def require(self):
        # type: () -> bool
        value = self.require_container.lower()
        if value not in ("yes", "no", "true", "false", "1", "0", "on", "off"):
            raise PilotError(EXIT_BAD_ARGS, f"require_container={value!r}", "use yes or no")
        return value in ("yes", "true", "1", "on")

    def ttl(self):
        # type: () -> float
        try:
            return float(self.cache_ttl)
        except ValueError:
            raise PilotError(EXIT_BAD_ARGS, f"cache_ttl={self.cache_ttl!r}", "use seconds") from None


def split_list(text):
    # type: (str) -> List[str]
    """Items separated by commas and/or whitespace."""
    return text.replace(",", " ").split()


_REGEX = {}  # type: Dict[str, Pattern[str]]


def regex(pattern):
    # type: (Union[str, Pattern[str]]) -> Pattern[str]
    """``pattern`` compiled on first use (``re`` is needed only when a payload fails)."""
    if not isinstance(pattern, str):
        return pattern  # already compiled
    if pattern not in _REGEX:
        import re

        _REGEX[pattern] = re.compile(pattern)
    return _REGEX[pattern]


def which(name, path_env):
    # type: (str, str) -> Optional[str]
    """shutil.which without importing shutil."""
    if "/" in name:
        return name if os.access(name, os.X_OK) and not os.path.isdir(name) else None
    for directory in path_env.split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def temp_root():
    # type: () -> str
    """The temporary directory as tempfile.gettempdir() finds it, without importing tempfile."""
    for name in ("TMPDIR", "TEMP", "TMP"):
        value = os.environ.get(name)
        if value and os.path.isdir(value) and os.access(value, os.W_OK | os.X_OK):
            return os.path.abspath(value)
    return "/tmp"  # noqa: S108 - the system default, as tempfile's


def private_dir(prefix, parent=None):
    # type: (str, Optional[str]) -> str
    """A new 0700 directory with an unguessable name (tempfile.mkdtemp without tempfile)."""
    parent = parent or temp_root()
    while True:
        path = os.path.join(parent, prefix + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def remove_tree(path):
    # type: (str) -> None
    try:
        os.rmdir(path)  # the common case: nothing was written there
    except OSError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def json_string(text):
    # type: (str) -> str
    out = []
    for char in text:
        if char in JSON_ESCAPES:
            out.append(JSON_ESCAPES[char])
        elif " " <= char <= "~":
            out.append(char)
        else:
            code = ord(char)
            if code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
    return '"' + "".join(out) + '"'


def to_json(value, indent=None, level=0):
    # type: (Any, Optional[int], int) -> str
    """json.dumps(value, indent=indent, sort_keys=True) without importing json (~5 ms)."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json_string(value)
    if isinstance(value, dict):
        items = [(json_string(str(k)), v) for k, v in sorted(value.items())]
        parts = [f"{k}: {to_json(v, indent, level + 1)}" for k, v in items]
        return _json_join("{", parts, "}", indent, level)
    if isinstance(value, (list, tuple)):
        return _json_join("[", [to_json(v, indent, level + 1) for v in value], "]", indent, level)
    return json_string(str(value))


def _json_join(opening, parts, closing, indent, level):
    # type: (str, List[str], str, Optional[int], int) -> str
    if not parts:
        return opening + closing
    if indent is None:
        return opening + ", ".join(parts) + closing
    inner = "\n" + " " * (indent * (level + 1))
    return opening + inner + ("," + inner).join(parts) + "\n" + " " * (indent * level) + closing


def load_settings(config_file, environ):
    # type: (Optional[str], Mapping[str, str]) -> Settings
    settings = Settings()
    path = config_file or environ.get("COPS_PILOT_CONFIG") or ""
    if not path and os.path.isfile(SYSTEM_CONFIG):
        path = SYSTEM_CONFIG
    if path:
        try:
            with open(path) as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise PilotError(EXIT_BAD_ARGS, f"cannot read config {path}: {exc}", "fix the file") from None
        values = simple_ini_section(text, "pilot")
        if values is None:
            values = ini_section(text, "pilot", path)
        if values:
            settings.update(values, path)
    from_env = {}
    for key in Settings.KEYS:
        name = "COPS_PILOT_" + key.upper()
        if name in environ:
            from_env[key] = environ[name]
    if from_env:
        settings.update(from_env, "environment")
    return settings


def simple_ini_section(text, section):
    # type: (str, str) -> Optional[Dict[str, str]]
    """Section ``section`` of a plain INI file (``[name]``, ``key = value``, whole-line comments)
    read without configparser (~5 ms of start-up); None when the file uses anything more."""
    values = {}  # type: Dict[str, str]
    current = None  # type: Optional[str]
    seen = set()
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0].isspace():
            return None  # continuation lines: configparser's business
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
            if current in seen or current == "DEFAULT":
                return None
            seen.add(current)
            continue
        cut = min([i for i in (stripped.find("="), stripped.find(":")) if i >= 0] or [-1])
        if current is None or cut <= 0:
            return None  # let configparser report the error
        if current == section:
            key = stripped[:cut].strip().lower()
            if key in values:
                return None
            values[key] = stripped[cut + 1 :].strip()
    return values


def ini_section(text, section, path):
    # type: (str, str, str) -> Dict[str, str]
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, path)
    except configparser.Error as exc:
        raise PilotError(EXIT_BAD_ARGS, f"cannot read config {path}: {exc}", "fix the file") from None
    return dict(parser.items(section)) if parser.has_section(section) else {}


# ----------------------------------------------------------------------------- images


class Image:
    """A resolved image: a rootfs directory or a .sif file."""

    def __init__(self, name, path, kind):
        # type: (str, str, str) -> None
        self.name = name
        self.path = path
        self.kind = kind  # "dir" or "sif"


_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM = _LOWER_ALNUM | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _repository_part_ok(part):
    # type: (str) -> bool
    """[a-z0-9]+ joined by ".", "_", "__" or a run of "-" (checked by hand: ``re`` costs start-up)."""
    if not part or part[0] not in _LOWER_ALNUM or part[-1] not in _LOWER_ALNUM:
        return False
    sep = ""
    for char in part:
        if char in _LOWER_ALNUM:
            if sep and sep not in (".", "_", "__") and sep.strip("-"):
                return False
            sep = ""
        elif char in "._-":
            sep += char
        else:
            return False
    return True


def _registry_ok(registry):
    # type: (str) -> bool
    """HOST[:PORT]: letters, digits, . and - (a letter or digit at both ends), PORT 1-5 digits."""
    host, colon, port = registry.partition(":")
    if colon and not (0 < len(port) <= 5 and all(c in "0123456789" for c in port)):
        return False
    edges = bool(host) and host[0] in _ALNUM and host[-1] in _ALNUM
    return edges and all(c in _ALNUM or c in ".-" for c in host)


def _tag_ok(tag):
    # type: (str) -> bool
    return (
        0 < len(tag) <= IMAGE_NAME_RULES["tag_max_length"]
        and (tag[0] in _ALNUM or tag[0] == "_")
        and all(c in _ALNUM or c in "_.-" for c in tag)
    )


def _digest_ok(digest):
    # type: (str) -> bool
    algorithm, colon, hexpart = digest.partition(":")
    return (
        colon == ":"
        and algorithm == IMAGE_NAME_RULES["digest_algorithm"]
        and len(hexpart) == IMAGE_NAME_RULES["digest_hex_length"]
        and all(c in "0123456789abcdef" for c in hexpart)
    )


def image_relpath(name):
    # type: (str) -> str
    """docker://[registry/]repo[:tag][@digest] -> registry/repo:tag (or :digest) as DUCC publishes
    it, by IMAGE_NAME_RULES; every part is checked, so a name never leaves the image root."""
    rules = IMAGE_NAME_RULES
    ref = name.strip()
    if ref.startswith("docker://"):
        ref = ref[len("docker://") :]
    ref, at, digest = ref.partition("@")
    parts = ref.split("/")
    registry = rules["default_registry"]  # type: str
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry = parts.pop(0)
    parts[-1], colon, tag = parts[-1].partition(":")
    if not colon and not at:
        tag = rules["default_tag"]
    if registry in rules["registry_aliases"] or registry == rules["default_registry"]:
        registry = rules["default_registry"]
        if len(parts) == 1:
            parts.insert(0, rules["official_namespace"])
    if not (
        (not at or _digest_ok(digest))
        and _registry_ok(registry)
        and all(_repository_part_ok(part) for part in parts)
        and (not colon or _tag_ok(tag))
    ):
        raise PilotError(
            EXIT_BAD_ARGS,
            f"bad image name {name!r}",
            "use docker://[REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. docker://busybox:latest",
        )
    return registry + "/" + "/".join(parts) + ":" + (tag or digest)


HOST_IMAGES = ("host:", "host://")


def is_host_image(name):
    # type: (Optional[str]) -> bool
    """``--image host:`` (or ``host://``): run on the node itself, no container."""
    return name in HOST_IMAGES


def resolve_image(name, image_root):
    # type: (str, str) -> Image
    if name.startswith("docker://"):
        if not os.path.isdir(image_root):
            raise PilotError(
                EXIT_IMAGE_ROOT_ABSENT,
                f"image root {image_root} is not available",
                "check that CVMFS is mounted on this node or set --image-root",
            )
        relpath = image_relpath(name)
        pinned = pinned_digest(name)
        if pinned:  # docker://repo[:tag]@sha256:HEX runs that image or nothing, whatever the tag says now
            return resolve_pinned(name, pinned, image_root, relpath)
        path = os.path.join(image_root, relpath)
        if not os.path.isdir(path):
            raise PilotError(
                EXIT_IMAGE_NOT_FOUND,
                f"image {name} not found at {path}",
                "publish the image there or fix its name",
            )
        return Image(name, os.path.realpath(path), "dir")
    if name.endswith(".sif"):
        if not os.path.isfile(name):
            raise PilotError(EXIT_IMAGE_NOT_FOUND, f"image file {name} not found", "fix the path")
        return Image(name, os.path.abspath(name), "sif")
    if os.path.isdir(name):
        return Image(name, os.path.realpath(name), "dir")
    raise PilotError(
        EXIT_IMAGE_NOT_FOUND,
        f"image {name} not found (looked for a rootfs directory or .sif file)",
        "use docker://..., a rootfs directory or a .sif file",
    )


def pinned_digest(name):
    # type: (str) -> Optional[str]
    """The hex of ``docker://...@sha256:HEX`` (checked by image_relpath), or None."""
    at = name.rfind("@")
    if not name.startswith("docker://") or at < 0:
        return None
    return name[at + 1 :].partition(":")[2]


def resolve_pinned(name, hexdigest, image_root, relpath):
    # type: (str, str, str, str) -> Image
    """A digest-pinned name: the flat root filesystem ``.flat/<hh>/<hex>`` (the image config
    digest, DUCC's name for it), else DUCC's digest-only public name when it leads to that same
    directory. Never the tag's current image: a digest that is gone is an image not found."""
    flat_dir = os.path.join(image_root, FLAT_DIR, hexdigest[:2], hexdigest)
    if os.path.isdir(flat_dir):
        return Image(name, os.path.realpath(flat_dir), "dir")
    public = os.path.join(image_root, relpath)
    if relpath.endswith(":sha256:" + hexdigest) and os.path.isdir(public):
        return Image(name, os.path.realpath(public), "dir")
    raise PilotError(
        EXIT_IMAGE_NOT_FOUND,
        f"image {name}: digest sha256:{hexdigest} is not under {image_root} (no {FLAT_DIR}/"
        f"{hexdigest[:2]}/{hexdigest}); another image is never run in its place",
        "publish that image again, or resubmit without --same-image to run what the tag names now",
    )


# ----------------------------------------------------------------------------- provenance

FLAT_DIR = ".flat"  # DUCC: <image root>/.flat/<hh>/<config digest hex>, the image's flat rootfs


def image_digest(image):
    # type: (Image) -> Tuple[Optional[str], str]
    """(``sha256:<hex>``, how it was found) for the image that runs: a DUCC flat directory's
    name (the config digest, what ``docker images`` calls the image id), a .sif's sha256; a plain
    rootfs directory has none (hashing a tree per job costs too much)."""
    if image.kind == "sif":
        import hashlib

        sha = hashlib.sha256()
        with open(image.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        return "sha256:" + sha.hexdigest(), "sif-sha256"
    base = os.path.basename(image.path)
    parent = os.path.dirname(image.path)
    in_flat = os.path.basename(os.path.dirname(parent)) == FLAT_DIR and os.path.basename(parent) == base[:2]
    if in_flat and _digest_ok("sha256:" + base):
        return "sha256:" + base, "flat-directory"
    return None, "rootfs-directory"


def read_text(path, limit=1 << 16):
    # type: (str, int) -> str
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def node_facts():
    # type: () -> Dict[str, Any]
    """Where the payload ran: host name, OS, kernel, CPU model, GPUs seen (file reads only)."""
    uname = os.uname()
    os_name = ""
    for line in read_text("/etc/os-release").splitlines():
        key, _, value = line.partition("=")
        if key == "PRETTY_NAME":
            os_name = value.strip().strip('"')
    cpu = ""
    for line in read_text("/proc/cpuinfo", 1 << 14).splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model"):
            cpu = value.strip()
            break
    gpus = []  # type: List[str]
    models = os.path.join("/proc", "driver", "nvidia", "gpus")
    for bus in sorted(os.listdir(models)) if os.path.isdir(models) else []:
        for line in read_text(os.path.join(models, bus, "information")).splitlines():
            if line.startswith("Model:"):
                gpus.append(line.partition(":")[2].strip() + " (" + bus + ")")
    return {
        "hostname": uname[1],
        "os": os_name,
        "kernel": uname[2],
        "arch": uname[4],
        "cpu_model": cpu,
        "cpus": os.cpu_count(),
        "gpus": gpus,
        "gpu_devices": gpu_devices(),
    }


def runtime_version(rt, binary, cache_dir):
    # type: (Runtime, str, Optional[str]) -> str
    """``NAME X.Y.Z``: the first version number ``BINARY --version`` prints, cached per node by
    binary path and mtime (a warm run starts no process for it)."""
    try:
        key = flat("{}|{}|{}".format(__version__, binary, os.stat(binary).st_mtime))
    except OSError:
        return ""
    path = os.path.join(cache_dir, "versions.tsv") if cache_dir else None
    known = {}  # type: Dict[str, str]
    for line in read_text(path).splitlines() if path else []:
        name, tab, value = line.partition("\t")
        if tab:
            known[name] = value
    if key in known:
        return known[key]
    import subprocess

    env = host_env_for_runtime({})
    env.setdefault("USER", "cops-pilot")  # ch-run refuses to start without one
    try:
        proc = subprocess.run(
            [binary, "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=PROBE_TIMEOUT,
            env=env,
        )
        text = proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        text = ""
    import re

    found = re.search(r"[0-9]+\.[0-9]+[0-9A-Za-z.+~-]*", text)
    known[key] = version = flat(f"{rt.name} {found.group(0)}")[:200] if found else ""
    if path:
        tmp = os.path.join(cache_dir or "", f".versions-{os.getpid()}-{os.urandom(4).hex()}")
        try:
            write_private(tmp, "".join(k + "\t" + v + "\n" for k, v in sorted(known.items())))
            os.replace(tmp, path)
        except OSError as exc:
            log("runtime version cache not written: %s", exc)
    return version


def children_usage(before):
    # type: (Any) -> Dict[str, Any]
    """CPU seconds of the payload's processes (os.times() since ``before``) and their maximum
    resident memory. Read after the payload ended, so importing resource costs it nothing."""
    now = os.times()
    usage = {
        "cpu_user_s": round(now[2] - before[2], 3),
        "cpu_system_s": round(now[3] - before[3], 3),
    }  # type: Dict[str, Any]
    try:
        import resource

        usage["max_rss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    except (ImportError, OSError):
        usage["max_rss_kib"] = None
    return usage


def refusals(attempts):
    # type: (List[Dict[str, Any]]) -> Dict[str, str]
    """Why each runtime that did not run the payload was passed over."""
    return {
        a["name"]: "{}{}".format(a["status"], ": " + a["reason"] if a["reason"] else "")
        for a in attempts
        if a["status"] != "ok"
    }


# ----------------------------------------------------------------------------- launch


class Bind:
    """SRC on the host at DST in the container; an optional bind (/cvmfs) is dropped where the
    runtime cannot create its mount point."""

    def __init__(self, src, dst, writable, optional=False):
        # type: (str, str, bool, bool) -> None
        self.src = src
        self.dst = dst
        self.writable = writable
        self.optional = optional

    def as_dict(self):
        # type: () -> Dict[str, Any]
        return {"src": self.src, "dst": self.dst, "writable": self.writable}


def parse_bind(text):
    # type: (str) -> Bind
    parts = text.split(":")
    mode = "rw"
    if len(parts) == 3:
        mode = parts[2]
    if len(parts) > 3 or mode not in ("ro", "rw") or not parts[0].startswith("/"):
        raise PilotError(EXIT_BAD_ARGS, f"bad bind {text!r}", "use /SRC[:/DST[:ro|rw]]")
    dst = parts[1] if len(parts) > 1 and parts[1] else parts[0]
    if not dst.startswith("/"):
        raise PilotError(EXIT_BAD_ARGS, f"bad bind {text!r}", "the destination must be absolute")
    return Bind(parts[0], dst, mode == "rw")


class Launch:
    """Everything a runtime needs to start one container."""

    def __init__(self, image, command, workdir, binds, env, gpu, scratch=None):
        # type: (Image, List[str], str, List[Bind], Dict[str, str], bool, Optional[str]) -> None
        self.image = image
        self.command = command
        self.workdir = workdir
        self.binds = binds
        self.env = env
        self.gpu = gpu
        self._scratch = scratch
        self.made_scratch = False

    @property
    def scratch(self):
        # type: () -> str
        """Private 0700 directory for runtime files (bundles, env files), made on first use."""
        if self._scratch is None:
            self._scratch = private_dir("cops-pilot-")
            self.made_scratch = True
        return self._scratch

    def cleanup(self):
        # type: () -> None
        if self.made_scratch and self._scratch:
            remove_tree(self._scratch)

    def all_binds(self):
        # type: () -> List[Bind]
        return [Bind(self.workdir, CONTAINER_WORKDIR, True)] + self.binds


def read_only_fs(path):
    # type: (str) -> bool
    """Whether ``path`` is on a read-only mount (CVMFS, a squashfs): nothing can write into it."""
    try:
        return bool(os.statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1))
    except OSError:
        return False


def gpu_devices():
    # type: () -> List[str]
    try:
        names = sorted(os.listdir("/dev"))
    except OSError:
        return []
    return ["/dev/" + name for name in names if name.startswith("nvidia")]


def host_env_for_runtime(extra):
    # type: (Mapping[str, str]) -> Dict[str, str]
    """A minimal environment for the runtime process itself (not the payload)."""
    env = {}
    for key in ("PATH", "HOME", "USER", "LOGNAME", "XDG_RUNTIME_DIR", "TMPDIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(extra)
    return env


def write_private(path, text):
    # type: (str, str) -> None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


# ----------------------------------------------------------------------------- runtimes


class Runtime:
    """One container runtime: locate its binary, probe it, build the exec argv, explain failures.

    ``build(launch, binary)`` returns (argv, env of the runtime process). The payload's
    environment is ``launch.env``; each adapter passes it without putting values in argv.
    """

    name = ""
    binaries = ()  # type: Tuple[str, ...]
    extra_locations = ()  # type: Tuple[str, ...]
    supports_sif = False
    needs_mountpoints = False  # bind destinations must already exist in the image...
    shadow_root = False  # ...unless the runtime can run on a shadow root (see plan_binds)
    shadow_needs_readonly_image = False  # its binds are writable: shadow only a read-only image
    shadow_skip = ("dev", "proc", "sys", "tmp")  # top-level entries the runtime mounts itself
    # Regexes on the runtime's stderr lines, as source strings compiled on first use (a compiled
    # pattern works too): start_error marks the runtime's own failure before the payload ran.
    start_error = None  # type: Optional[Union[str, Pattern[str]]]
    not_start_error = r"executable file not found|command not found|execve\("

    def locate(self, path_env):
        # type: (str) -> Optional[str]
        for binary in self.binaries:
            found = which(binary, path_env)
            if found:
                return found
        for location in self.extra_locations:
            if os.access(location, os.X_OK):
                return location
        return None

    def mode(self, binary):
        # type: (str) -> str
        return "root" if os.geteuid() == 0 else "userns"

    def refuse(self, launch):
        # type: (Launch) -> Optional[str]
        """Why this runtime cannot run ``launch`` (image kind, missing mount points), or None."""
        if launch.image.kind == "sif" and not self.supports_sif:
            return "cannot run .sif images"
        return self.plan_binds(launch)[2]

    def has_mountpoint(self, launch, bind):
        # type: (Launch, Bind) -> bool
        return os.path.isdir(os.path.join(launch.image.path, bind.dst.lstrip("/")))

    def plan_binds(self, launch):
        # type: (Launch) -> Tuple[List[Bind], bool, Optional[str]]
        """(binds to make, whether they need a shadow root, refusal) for a runtime that cannot
        create mount points: a bind whose destination the image lacks is made on a shadow root
        when its top-level directory is missing from the image (/srv, /cvmfs in DUCC images),
        else dropped when optional (/cvmfs), else the runtime is refused."""
        binds = launch.all_binds()
        if not self.needs_mountpoints or launch.image.kind != "dir":
            return binds, False, None
        kept, shadow = [], False
        for bind in binds:
            if self.has_mountpoint(launch, bind):
                kept.append(bind)
            elif self.can_shadow(launch, bind):
                kept.append(bind)
                shadow = True
            elif not bind.optional:
                return [], False, f"image lacks mount point {bind.dst}"
        return kept, shadow, None

    def can_shadow(self, launch, bind):
        # type: (Launch, Bind) -> bool
        top = bind.dst.strip("/").split("/")[0]
        if not self.shadow_root or not top or os.path.lexists(os.path.join(launch.image.path, top)):
            return False
        return not self.shadow_needs_readonly_image or read_only_fs(launch.image.path)

    def binds(self, launch):
        # type: (Launch) -> List[Bind]
        """The binds this runtime can make (optional ones without a mount point dropped)."""
        return self.plan_binds(launch)[0]

    def layout(self, launch):
        # type: (Launch) -> Tuple[str, List[Bind], List[Bind]]
        """(root directory, image binds, job binds): the image itself and no image binds, or a
        shadow root in the scratch (a directory of empty mount points, nothing written into the
        image) and the image's top-level entries to bind read-only onto it, before the job's."""
        binds, shadow, _refusal = self.plan_binds(launch)
        if not shadow:
            return launch.image.path, [], binds
        image = launch.image.path
        root = os.path.join(launch.scratch, "shadow-root")
        os.mkdir(root, 0o755)
        entries = []
        for entry in sorted(os.listdir(image)):
            src, dst = os.path.join(image, entry), os.path.join(root, entry)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
                continue
            if os.path.isdir(src):
                os.mkdir(dst, 0o755)
            elif os.path.isfile(src):
                write_private(dst, "")
            else:
                continue
            if entry not in self.shadow_skip:
                entries.append(Bind(src, "/" + entry, False))
        for bind in binds:
            if not os.path.lexists(os.path.join(image, bind.dst.strip("/").split("/")[0])):
                path = os.path.join(root, bind.dst.lstrip("/"))
                if os.path.isdir(bind.src):
                    os.makedirs(path, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    write_private(path, "")
        return root, entries, binds

    def build(self, launch, binary):
        # type: (Launch, str) -> Tuple[List[str], Dict[str, str]]
        raise NotImplementedError

    def start_failure(self, returncode, stderr_tail):
        # type: (int, str) -> Optional[str]
        """The runtime's own error line if it failed before the payload ran, else None."""
        if returncode == 0 or self.start_error is None:
            return None
        start_error, not_start_error = regex(self.start_error), regex(self.not_start_error)
        for line in stderr_tail.splitlines():
            if start_error.search(line) and not not_start_error.search(line):
                return line.strip()
        return None

    signal_exit = False  # the runtime itself exits 128+N when the payload dies of signal N

    def signal_of(self, returncode, stderr_tail):
        # type: (int, str) -> Optional[int]
        """Signal that killed the payload, as the runtime reports it (exit 128+N or stderr)."""
        if self.signal_exit and 128 < returncode < 128 + 65:
            return returncode - 128
        return None


class Apptainer(Runtime):
    """apptainer exec, written to the documented CLI (--cleanenv, APPTAINERENV_*, --nv)."""

    name = "apptainer"
    binaries = ("apptainer",)
    env_prefix = "APPTAINERENV_"
    extra_locations = (  # type: Tuple[str, ...]
        "/cvmfs/oasis.opensciencegrid.org/mis/apptainer/current/bin/apptainer",
        "/cvmfs/oasis.opensciencegrid.org/mis/apptainer/current/x86_64/bin/apptainer",
        "/cvmfs/oasis.opensciencegrid.org/mis/apptainer/bin/apptainer",
    )
    supports_sif = True
    start_error = r"^(FATAL|ERROR)\s*:"
    signal_exit = True  # measured (1.4.5): a payload killed by signal N comes back as exit 128+N

    def mode(self, binary):
        # type: (str) -> str
        starter = os.path.join(os.path.dirname(os.path.dirname(binary)), "libexec", self.name)
        starter = os.path.join(starter, "bin", "starter-suid")
        try:
            if os.stat(starter).st_mode & 0o4000:
                return "setuid"
        except OSError:
            pass
        return "root" if os.geteuid() == 0 else "userns"

    def build(self, launch, binary):
        # type: (Launch, str) -> Tuple[List[str], Dict[str, str]]
        argv = [binary, "exec", "--cleanenv", "--contain", "--ipc", "--pid"]
        argv += ["--home", f"{launch.workdir}:{CONTAINER_WORKDIR}", "--pwd", CONTAINER_WORKDIR]
        for bind in launch.binds:
            argv += ["--bind", "{}:{}:{}".format(bind.src, bind.dst, "rw" if bind.writable else "ro")]
        if launch.gpu:
            argv.append("--nv")
        argv.append(launch.image.path)
        argv += launch.command
        extra = {}
        for key, value in launch.env.items():
            if key not in ("HOME", "PATH"):
                extra[self.env_prefix + key] = value
        return argv, host_env_for_runtime(extra)


class Singularity(Apptainer):
    name = "singularity"
    binaries = ("singularity",)
    env_prefix = "SINGULARITYENV_"
    extra_locations = (
        "/cvmfs/oasis.opensciencegrid.org/mis/singularity/current/bin/singularity",
        "/cvmfs/oasis.opensciencegrid.org/mis/singularity/bin/singularity",
    )


class Charliecloud(Runtime):
    """ch-run; its binds are read-write (0.31), so a shadow root only over a read-only image."""

    name = "charliecloud"
    binaries = ("ch-run",)
    needs_mountpoints = True
    shadow_root = True
    shadow_needs_readonly_image = True
    start_error = r"^ch-run\[\d+\]: error"

    def build(self, launch, binary):
        # type: (Launch, str) -> Tuple[List[str], Dict[str, str]]
        argv = [binary, "--no-passwd", "--cd", CONTAINER_WORKDIR]
        root, image_binds, binds = self.layout(launch)
        for bind in image_binds + binds:
            argv += ["-b", f"{bind.src}:{bind.dst}"]
        argv += [root, "--"] + launch.command
        env = dict(launch.env)
        env["USER"] = os.environ.get("USER") or str(os.getuid())  # ch-run refuses to start without it
        return argv, env


class Bubblewrap(Runtime):
    """bwrap on an empty tmpfs root with the image's top-level entries bound read-only into it,
    so bind destinations need not exist in the (read-only) image."""

    name = "bubblewrap"
    signal_exit = True
    binaries = ("bwrap",)
    start_error = r"^bwrap: "

    def build(self, launch, binary):
        # type: (Launch, str) -> Tuple[List[str], Dict[str, str]]
        root = launch.image.path
        argv = [binary, "--tmpfs", "/"]
        for entry in sorted(os.listdir(root)):
            if entry in ("proc", "dev", "tmp"):
                continue
            path = os.path.join(root, entry)
            if os.path.islink(path):
                argv += ["--symlink", os.readlink(path), "/" + entry]
            elif os.path.isdir(path) or os.path.isfile(path):
                argv += ["--ro-bind", path, "/" + entry]
        argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for bind in launch.all_binds():
            argv += ["--bind" if bind.writable else "--ro-bind", bind.src, bind.dst]
        if launch.gpu:
            for device in gpu_devices():
                argv += ["--dev-bind", device, device]
        argv += ["--chdir", CONTAINER_WORKDIR, "--unshare-pid", "--die-with-parent", "--"]
        return argv + launch.command, dict(launch.env)


PROOT_SIGNAL = r"proot info: pid \d+: terminated with signal (\d+)"


class Proot(Runtime):
    name = "proot"
    binaries = ("proot",)
    start_error = r"^proot error: "

    def mode(self, binary):
        # type: (str) -> str
        return "ptrace"

    def build(self, launch, binary):
        # type: (Launch, str) -> Tuple[List[str], Dict[str, str]]
        argv = [binary, "-r", launch.image.path, "-w", CONTAINER_WORKDIR, "-b", "/proc", "-b", "/dev"]
        argv += ["-b", "/sys"]
        for bind in launch.all_binds():  # proot binds cannot be read-only
            argv += ["-b", f"{bind.src}:{bind.dst}"]
        return argv + launch.command, dict(launch.env)

    def signal_of(self, returncode, stderr_tail):
        # type: (int, str) -> Optional[int]
        match = regex(PROOT_SIGNAL).search(stderr_tail) if returncode == 255 else None
        return int(match.group(1)) if match and returncode == 255 else None


PROOT_SHIM = """#!/bin/sh
# written by cops-pilot: drop udocker's "-k KERNEL", which Debian's proot mis-parses
n=$#; skip=0
for a in "$@"; do
  if [ $skip = 1 ]; then skip=0; elif [ "$a" = "-k" ]; then skip=1; else set -- "$@" "$a"; fi
done
shift $n
exec {proot} "$@"
"""


class Udocker(Runtime):
    """udocker P1 (proot) on a container entry whose ROOT links to the image rootfs."""

    name = "udocker"
    binaries = ("udocker",)
    start_error = r"^Error: "

    def mode(self, binary):
        # type: (str) -> str
        return "ptrace"

    def build(self, launch, binary):
        # type: (Launch, str) -> Tuple[List[str], Dict[str, str]]
        repo = os.path.join(launch.scratch, "udocker")
        container = os.path.join(repo, "containers", "cops")
        for sub in ("bin", "lib", "layers", "repos", "doc"):
            os.makedirs(os.path.join(repo, sub), exist_ok=True)
        os.makedirs(container, exist_ok=True)
        if not os.path.islink(os.path.join(container, "ROOT")):
            os.symlink(launch.image.path, os.path.join(container, "ROOT"))
        write_private(os.path.join(container, "container.json"), '{"architecture": "amd64", "config": {}}')
        env_file = os.path.join(launch.scratch, "udocker.env")
        write_private(env_file, "".join(f"{k}={v}\n" for k, v in sorted(launch.env.items())))
        extra = {"UDOCKER_TARBALL": "", "UDOCKER_DIR": repo}
        proot = which("proot", os.environ.get("PATH", DEFAULT_PATH))
        if proot:
            shim = os.path.join(launch.scratch, "proot-shim")
            write_private(shim, PROOT_SHIM.format(proot=proot))
            os.chmod(shim, 0o700)
            extra["UDOCKER_USE_PROOT_EXECUTABLE"] = shim
        argv = [binary, "-q", "--repo=" + repo]
        if os.geteuid() == 0:
            argv.append("--allow-root")
        argv += ["run", "--nobanner", "--nometa", "--env-file=" + env_file, "-w", CONTAINER_WORKDIR]
        for bind in launch.all_binds():
            argv += ["-v", f"{bind.src}:{bind.dst}"]
        argv += ["cops"] + launch.command
        return argv, host_env_for_runtime(extra)

    def signal_of(self, returncode, stderr_tail):
        # type: (int, str) -> Optional[int]
        return Proot.signal_of(Proot(), returncode, stderr_tail)


class Runc(Runtime):
    """runc run on an OCI bundle written into the private scratch (rootless when not root)."""

    name = "runc"
    signal_exit = True
    binaries = ("runc",)
    extra_locations = ("/usr/sbin/runc", "/usr/local/sbin/runc")
    needs_mountpoints = True
    shadow_root = True  # its image binds are read-only (rbind + ro remount)
    start_error = r"level=error|^runc run failed|^ERRO"

    def mode(self, binary):
        # type: (str) -> str
        return "root" if os.geteuid() == 0 else "rootless"

    def spec(self, launch):
        # type: (Launch) -> Dict[str, Any]
        root, image_binds, binds = self.layout(launch)
        mounts = [
            {"destination": b.dst, "type": "bind", "source": b.src, "options": ["rbind", "ro"]}
            for b in image_binds
        ]  # type: List[Dict[str, Any]]
        mounts += [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]},
            {"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "ro", "nosuid"]},
        ]
        for bind in binds:
            options = ["rbind", "rw" if bind.writable else "ro"]
            mounts.append({"destination": bind.dst, "type": "bind", "source": bind.src, "options": options})
        env = [f"{k}={v}" for k, v in sorted(launch.env.items())]
        namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
        linux = {"namespaces": namespaces, "maskedPaths": [], "readonlyPaths": []}  # type: Dict[str, Any]
        if os.geteuid() != 0:
            namespaces.append({"type": "user"})
            linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
            linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
        return {
            "ociVersion": "1.0.2",
            "process": {
                "terminal": False,
                "user": {"uid": 0, "gid": 0},
                "args": launch.command,
                "env": env,
                "cwd": CONTAINER_WORKDIR,
                "noNewPrivileges": True,
            },
            "root": {"path": root, "readonly": True},
            "hostname": "cops",
            "mounts": mounts,
            "linux": linux,
        }

    def build(self, launch, binary):
        # type: (Launch, str) -> Tuple[List[str], Dict[str, str]]
        bundle = os.path.join(launch.scratch, "bundle")
        os.makedirs(bundle, exist_ok=True)
        write_private(os.path.join(bundle, "config.json"), to_json(self.spec(launch)))
        state = os.path.join(launch.scratch, "runc-state")
        name = f"cops-{os.getpid()}-{int(time.time() * 1000) % 100000000}"
        argv = [binary, "--root", state, "run", "--bundle", bundle, name]
        return argv, host_env_for_runtime({"XDG_RUNTIME_DIR": launch.scratch})


class Podman(Runtime):
    name = "podman"
    signal_exit = True
    binaries = ("podman",)
    start_error = r"^Error: "

    def mode(self, binary):
        # type: (str) -> str
        return "root" if os.geteuid() == 0 else "rootless"

    def start_failure(self, returncode, stderr_tail):
        # type: (int, str) -> Optional[str]
        if returncode != 125:
            return None
        return Runtime.start_failure(self, returncode, stderr_tail) or "podman exited 125"

    def build(self, launch, binary):
        # type: (Launch, str) -> Tuple[List[str], Dict[str, str]]
        argv = [binary, "run", "--rm", "--net=host", "--runtime", "runc", "--pull=never"]
        argv += ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096", "--log-driver=none"]
        argv += ["--workdir", CONTAINER_WORKDIR]
        for bind in launch.all_binds():
            argv += ["-v", "{}:{}:{}".format(bind.src, bind.dst, "rw" if bind.writable else "ro")]
        if launch.gpu:
            for device in gpu_devices():
                argv += ["--device", device]
        for key in sorted(launch.env):
            argv += ["--env", key]  # value taken from podman's own environment, never in argv
        argv += ["--rootfs", launch.image.path + ":O"] + launch.command
        return argv, host_env_for_runtime(launch.env)


class Docker(Runtime):
    """Docker Engine through the ``docker`` CLI (argv lists; honours ``DOCKER_HOST``).

    The image runs by reference when the engine already has it (``docker://busybox:latest``
    -> ``busybox:latest``); otherwise the rootfs from the image repository is imported once
    and tagged ``cops-grid-rootfs:<digest>`` (the DUCC ``.flat`` directory name, or a hash
    of the tree), so later jobs on this engine find it by digest.
    """

    name = "docker"
    signal_exit = True
    binaries = ("docker",)
    start_error = r"^docker: |^Error response from daemon|^Cannot connect to the Docker daemon"
    cache_repo = "cops-grid-rootfs"
    engine_ref = None  # type: Optional[str]  # what the last build ran, for the report
    client_env = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")

    def mode(self, binary):
        # type: (str) -> str
        return "daemon"

    def refuse(self, launch):
        # type: (Launch) -> Optional[str]
        if launch.image.kind != "dir":
            return "runs docker:// images and rootfs directories only"
        return Runtime.refuse(self, launch)

    def start_failure(self, returncode, stderr_tail):
        # type: (int, str) -> Optional[str]
        if returncode not in (125, 126, 127) and returncode != 1:
            return None
        line = Runtime.start_failure(self, returncode, stderr_tail)
        return line or (f"docker exited {returncode}" if returncode == 125 else None)

    def has_image(self, binary, ref):
        # type: (str, str) -> bool
        import subprocess

        cmd = [binary, "image", "inspect", "--format", "{{.Id}}", ref]
        return subprocess.call(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0

    def image_id(self, binary, ref):
        # type: (str, str) -> Optional[str]
        """The engine's id (``sha256:...``) of the image it runs as ``ref``, for the report."""
        import subprocess

        cmd = [binary, "image", "inspect", "--format", "{{.Id}}", ref]
        try:
            proc = subprocess.run(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=PROBE_TIMEOUT
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.decode("utf-8", "replace").strip() or None if proc.returncode == 0 else None

    def digest(self, rootfs):
        # type: (str) -> str
        import hashlib

        real = os.path.realpath(rootfs)
        base = os.path.basename(real)
        flat = os.path.basename(os.path.dirname(os.path.dirname(real))) == ".flat"
        if flat and len(base) == 64 and all(c in "0123456789abcdef" for c in base):
            return base
        sha = hashlib.sha256()
        for top, dirs, files in os.walk(real):
            dirs.sort()
            for fname in sorted(files):
                path = os.path.join(top, fname)
                sha.update(os.path.relpath(path, real).encode())
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path, "rb") as handle:
                        sha.update(handle.read())
        return sha.hexdigest()

    def engine_image(self, launch, binary):
        # type: (Launch, str) -> str
        name = launch.image.name
        if name.startswith("docker://") and self.has_image(binary, name[len("docker://") :]):
            return name[len("docker://") :]
        tag = f"{self.cache_repo}:{self.digest(launch.image.path)}"
        if self.has_image(binary, tag):
            return tag
        import subprocess
        import tarfile

        path_env = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        proc = subprocess.Popen(
            [binary, "import", "--change", path_env, "-", tag],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
                tar.add(os.path.realpath(launch.image.path), arcname=".")
        except (OSError, tarfile.TarError):
            pass  # the import's own error below says why
        finally:
            proc.stdin.close()  # type: ignore[union-attr]
        err = ""
        if proc.stderr:
            with proc.stderr:
                err = proc.stderr.read().decode("utf-8", "replace")
        if proc.wait() != 0:  # an OSError, as for a runtime that cannot start: the probe reports it
            raise OSError(5, "docker import failed: " + err.strip()[-200:])
        return tag

    def build(self, launch, binary):
        # type: (Launch, str) -> Tuple[List[str], Dict[str, str]]
        image = self.engine_image(launch, binary)
        self.engine_ref = image  # the report records its engine id
        argv = [binary, "run", "--rm", "--network", "host", "--workdir", CONTAINER_WORKDIR]
        if os.geteuid() != 0:
            argv += ["--user", f"{os.getuid()}:{os.getgid()}"]
        for bind in self.binds(launch):
            argv += ["-v", "{}:{}:{}".format(bind.src, bind.dst, "rw" if bind.writable else "ro")]
        if launch.gpu:
            for device in gpu_devices():
                argv += ["--device", device]
        for key in sorted(launch.env):
            argv += ["--env", key]  # value taken from the docker CLI's own environment
        argv += [image] + launch.command
        env = host_env_for_runtime(launch.env)
        for key in self.client_env:  # where the engine is: for the CLI, not for the payload
            if key in os.environ and key not in launch.env:
                env[key] = os.environ[key]
        return argv, env


# The adapter registry: a plain ordered dict, add an adapter with one line.
RUNTIMES = {
    cls.name: cls
    for cls in (Apptainer, Singularity, Udocker, Charliecloud, Bubblewrap, Proot, Runc, Podman, Docker)
}  # type: Dict[str, Any]
ALIASES = {"ch-run": "charliecloud", "bwrap": "bubblewrap"}


def runtime(name):
    # type: (str) -> Runtime
    key = ALIASES.get(name, name)
    if key not in RUNTIMES:
        raise PilotError(EXIT_BAD_ARGS, f"unknown runtime {name!r}", "use one of " + ", ".join(RUNTIMES))
    return RUNTIMES[key]()  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- probes


def userns_status():
    # type: () -> Dict[str, Any]
    """User-namespace support as the kernel reports it (per user namespace)."""
    status = {}  # type: Dict[str, Any]
    for key, path in (
        ("max_user_namespaces", "/proc/sys/user/max_user_namespaces"),
        ("unprivileged_userns_clone", "/proc/sys/kernel/unprivileged_userns_clone"),
    ):
        try:
            with open(path) as handle:
                status[key] = int(handle.read().strip())
        except (OSError, ValueError):
            status[key] = None
    status["enabled"] = status["max_user_namespaces"] != 0 and status["unprivileged_userns_clone"] != 0
    return status


class ProbeCache:
    """Probe results per node, keyed by runtime binary path+mtime, uid and userns limit.

    Stored in a private (0700, owned by us) directory, one entry a line (key, time, ok, seconds,
    reason, tab-separated: read without json); unusable directories are skipped.
    """

    FILE = "probes.tsv"

    def __init__(self, directory, ttl):
        # type: (Optional[str], float) -> None
        self.directory = directory
        self.ttl = ttl
        self.path = os.path.join(directory, self.FILE) if directory else None
        self.entries = None  # type: Optional[Dict[str, Dict[str, Any]]]

    @staticmethod
    def choose_dir(configured, environ):
        # type: (str, Mapping[str, str]) -> Optional[str]
        candidates = [configured] if configured else []
        if environ.get("XDG_CACHE_HOME"):
            candidates.append(os.path.join(environ["XDG_CACHE_HOME"], "cops-pilot"))
        if environ.get("HOME"):
            candidates.append(os.path.join(environ["HOME"], ".cache", "cops-pilot"))
        candidates.append(os.path.join(temp_root(), f"cops-pilot-{os.geteuid()}"))
        for candidate in candidates:
            if ProbeCache.usable(candidate):
                return candidate
        return None

    @staticmethod
    def usable(directory):
        # type: (str) -> bool
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            info = os.lstat(directory)
        except OSError:
            return False
        private = info.st_uid == os.geteuid() and not info.st_mode & 0o022
        return (
            os.path.isdir(directory)
            and not os.path.islink(directory)
            and private
            and (os.access(directory, os.W_OK))
        )

    @staticmethod
    def key(name, binary):
        # type: (str, str) -> str
        try:
            mtime = os.stat(binary).st_mtime
        except OSError:
            mtime = 0.0
        parts = (__version__, name, binary, mtime, os.geteuid(), max_user_namespaces())  # type: Tuple[Any, ...]
        # a daemon-backed runtime's probe depends on which daemon its client talks to
        parts += tuple(os.environ.get(k, "") for k in getattr(RUNTIMES.get(name), "client_env", ()))
        return flat("|".join(str(part) for part in parts))

    def load(self):
        # type: () -> Dict[str, Dict[str, Any]]
        if self.entries is not None:
            return self.entries
        self.entries = {}
        if not self.path or self.ttl <= 0:
            return self.entries
        try:
            with open(self.path) as handle:
                lines = handle.read().splitlines()
        except (OSError, UnicodeDecodeError):
            return self.entries
        for line in lines:
            fields = line.split("\t")
            if len(fields) != 5:
                continue
            try:
                entry = {
                    "time": float(fields[1]),
                    "ok": fields[2] == "1",
                    "seconds": float(fields[3]),
                }  # type: Dict[str, Any]
            except ValueError:
                continue
            if fields[4]:
                entry["reason"] = fields[4]
            self.entries[fields[0]] = entry
        return self.entries

    def get(self, key):
        # type: (str) -> Optional[Dict[str, Any]]
        entry = self.load().get(key)
        if entry is not None and time.time() - entry["time"] < self.ttl:
            return entry
        return None

    def put(self, key, entry):
        # type: (str, Dict[str, Any]) -> None
        if not self.path or self.ttl <= 0 or not self.directory:
            return
        entries = self.load()
        entries[key] = entry
        lines = [
            "\t".join(
                (
                    k,
                    repr(float(e["time"])),
                    "1" if e.get("ok") else "0",
                    repr(float(e.get("seconds", 0.0))),
                    flat(str(e.get("reason", ""))),
                )
            )
            for k, e in sorted(entries.items())
        ]
        tmp = os.path.join(self.directory, f".probes-{os.getpid()}-{os.urandom(4).hex()}")
        try:
            write_private(tmp, "".join(line + "\n" for line in lines))
            os.replace(tmp, self.path)
        except OSError as exc:
            log("probe cache not written: %s", exc)


def flat(text):
    # type: (str) -> str
    """One tab-free line (probe cache fields)."""
    return " ".join(text.replace("\t", " ").splitlines())


def max_user_namespaces():
    # type: () -> Optional[int]
    return userns_status()["max_user_namespaces"]  # type: ignore[no-any-return]


def probe_command(image):
    # type: (Image) -> List[str]
    if image.kind == "dir":
        for candidate in ("bin/true", "usr/bin/true"):
            if os.path.lexists(os.path.join(image.path, candidate)):
                return ["/" + candidate]
        return ["/bin/sh", "-c", ":"]
    return ["/bin/true"]


HOST_PROBE_DIRS = ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64")


def host_probe_image(scratch):
    # type: (str) -> Tuple[Image, List[Bind]]
    """An image for probing without a job image: empty mount points, the host's /usr, /etc, ...
    bound read-only into it (merged-/usr symlinks copied as symlinks) and a copy of true(1)."""
    root = os.path.join(scratch, "host-probe-root")
    for sub in ("dev", "proc", "sys", "tmp", "srv"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    binds = []
    for sub in HOST_PROBE_DIRS:
        host = "/" + sub
        if os.path.islink(host):
            os.symlink(os.readlink(host), os.path.join(root, sub))
        elif os.path.isdir(host):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
            binds.append(Bind(host, host, False))
    import shutil

    true = which("true", os.environ.get("PATH", DEFAULT_PATH)) or "/bin/true"
    shutil.copy(true, os.path.join(root, "cops-probe-true"))  # a real file in the root (udocker checks)
    return Image("host", root, "dir"), binds


def probe(rt, binary, image, scratch, binds=None):
    # type: (Runtime, str, Image, str, Optional[List[Bind]]) -> Dict[str, Any]
    """Start a trivial command in a container: the runtime counts only if this works."""
    import subprocess  # probes are the cold path: the warm one never starts one

    workdir = private_dir("probe-", scratch)
    command = ["/cops-probe-true"] if image.name == "host" else probe_command(image)
    launch = Launch(image, command, workdir, binds or [], {"PATH": DEFAULT_PATH}, False, workdir)
    started = time.time()
    try:
        argv, env = rt.build(launch, binary)
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = proc.communicate(timeout=PROBE_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return {"ok": False, "reason": f"probe timed out after {PROBE_TIMEOUT:.0f} s"}
    except OSError as exc:
        return {"ok": False, "reason": f"cannot execute {binary}: {exc.strerror}"}
    finally:
        remove_tree(workdir)
    text = err.decode("utf-8", "replace") + out.decode("utf-8", "replace")
    failure = rt.start_failure(proc.returncode or 1, text) if proc.returncode or "FATAL" in text else None
    result = {"ok": not failure and proc.returncode == 0, "seconds": round(time.time() - started, 4)}
    if not result["ok"]:
        last = [line for line in text.splitlines() if line.strip()][-1:]
        reason = failure or (last[0].strip() if last else "")
        result["reason"] = f"probe exit {proc.returncode}: {reason}"[:300]
    return result


class Attempt:
    """One runtime considered for this job: the breadcrumb of why it was taken or refused."""

    def __init__(self, name):
        # type: (str) -> None
        self.name = name
        self.binary = None  # type: Optional[str]
        self.status = "not-found"
        self.reason = ""
        self.mode = ""
        self.cached = False
        self.probe_seconds = 0.0

    def as_dict(self):
        # type: () -> Dict[str, Any]
        return dict(self.__dict__)

    def crumb(self):
        # type: () -> str
        text = f"{self.name}:{self.status}"
        return text + (f"({self.reason})" if self.reason else "")


def consider(name, image, launch, cache, path_env, scratch, probe_binds=None):
    # type: (str, Image, Optional[Launch], ProbeCache, str, Optional[str], Optional[List[Bind]]) -> Attempt
    """Locate, refuse or probe (cached) one runtime; ``scratch`` None: the launch's, made if needed."""
    rt = runtime(name)
    attempt = Attempt(rt.name)
    attempt.binary = rt.locate(path_env)
    if attempt.binary is None:
        attempt.reason = "no {} binary".format("/".join(rt.binaries))
        return attempt
    attempt.mode = rt.mode(attempt.binary)
    refusal = rt.refuse(launch) if launch is not None else None
    if refusal:
        attempt.status, attempt.reason = "refused", refusal
        return attempt
    key = cache.key(rt.name, attempt.binary)
    result = cache.get(key)
    attempt.cached = result is not None
    if result is None:
        if scratch is None:
            assert launch is not None
            scratch = launch.scratch
        result = probe(rt, attempt.binary, image, scratch, probe_binds)
        result["time"] = time.time()
        cache.put(key, result)
    attempt.probe_seconds = 0.0 if attempt.cached else float(result.get("seconds", 0.0))
    attempt.status = "ok" if result.get("ok") else "probe-failed"
    attempt.reason = str(result.get("reason", ""))
    return attempt


def detect(order, image=None, path_env=None, cache=None):
    # type: (Sequence[str], Optional[Image], Optional[str], Optional[ProbeCache]) -> List[Attempt]
    """Probe every runtime in ``order`` against ``image`` (default: the host's /usr in an empty root)."""
    cache = cache or ProbeCache(None, 0)
    scratch = private_dir("cops-pilot-")
    path_env = path_env or os.environ.get("PATH", DEFAULT_PATH)
    try:
        binds = None  # type: Optional[List[Bind]]
        if image is None:
            image, binds = host_probe_image(scratch)
        return [consider(name, image, None, cache, path_env, scratch, binds) for name in order]
    finally:
        remove_tree(scratch)


def build_launch(runtime_name, rootfs, command, workdir, binds=(), env=None, gpu=False, scratch=None):
    # type: (str, str, Sequence[str], str, Sequence[str], Optional[Mapping[str, str]], bool, Optional[str]) -> Tuple[List[str], Dict[str, str]]
    """argv and environment that run ``command`` in ``rootfs`` with one runtime (for benchmarks).

    ``binds`` are "SRC[:DST[:ro|rw]]" strings; ``workdir`` appears at /srv. Runtime files go to
    ``scratch`` (default: a new private temporary directory the caller may delete).
    """
    rt = runtime(runtime_name)
    binary = rt.locate(os.environ.get("PATH", DEFAULT_PATH))
    if binary is None:
        raise PilotError(EXIT_NO_RUNTIME, f"{rt.name} not found", "install it or pick another")
    image = Image(rootfs, os.path.realpath(rootfs), "sif" if rootfs.endswith(".sif") else "dir")
    payload_env = {"PATH": DEFAULT_PATH, "HOME": CONTAINER_WORKDIR}
    payload_env.update(env or {})
    launch = Launch(
        image,
        list(command),
        os.path.realpath(workdir),
        [parse_bind(b) for b in binds],
        payload_env,
        gpu,
        scratch or private_dir("cops-launch-"),
    )
    return rt.build(launch, binary)


# ----------------------------------------------------------------------------- running


class Outcome:
    def __init__(self, returncode, stderr_tail):
        # type: (int, str) -> None
        self.returncode = returncode
        self.stderr_tail = stderr_tail


FORWARDED_SIGNALS = (signals.SIGTERM, signals.SIGINT, signals.SIGHUP, signals.SIGUSR1, signals.SIGUSR2)
STDERR_GRACE = 5.0  # seconds to wait for stderr's end once the child exited (descendants may hold it)


def execute(argv, env, cwd):
    # type: (List[str], Dict[str, str], str) -> Outcome
    """Run argv, passing stdout through, teeing stderr (kept tail for diagnosis), forwarding signals.

    One thread, no sleeps: the wrapper waits in poll(2) on the stderr pipe and a signal wake-up
    pipe (SIGCHLD), so it returns as soon as the child has exited and stderr has ended. The
    handlers are installed before the child exists: a signal that arrives while it starts is
    delivered to it right after, instead of killing the wrapper and orphaning the payload."""
    children = []  # type: List[int]
    pending = []  # type: List[int]

    def forward(signum, _frame):
        # type: (int, Any) -> None
        if not children:
            pending.append(signum)
            return
        try:
            os.kill(children[0], signum)
        except OSError:
            pass

    wake_r, wake_w = os.pipe()
    err_r, err_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
    previous = {}  # type: Dict[int, Any]
    for signum in FORWARDED_SIGNALS:
        previous[signum] = signals.signal(signum, forward)
    previous[signals.SIGCHLD] = signals.signal(signals.SIGCHLD, lambda _s, _f: None)
    old_wakeup = signals.set_wakeup_fd(wake_w)
    try:
        try:
            pid = spawn(argv, env, cwd, err_w)
        finally:
            os.close(err_w)
        children.append(pid)
        for queued in pending:
            os.kill(pid, queued)
        status, tail = pump(pid, err_r, wake_r)
    finally:
        signals.set_wakeup_fd(old_wakeup)
        for number, handler in previous.items():
            signals.signal(number, handler)
        for fd in (wake_r, wake_w, err_r):
            os.close(fd)
    return Outcome(exit_status(status), tail.decode("utf-8", "replace"))


def spawn(argv, env, cwd, stderr_fd):
    # type: (List[str], Dict[str, str], str, int) -> int
    """fork + exec ``argv`` (found on ``env``'s PATH) in ``cwd``, with stderr on ``stderr_fd``.

    What subprocess.Popen does, without importing it (~5 ms of start-up): descriptors above 2
    closed, SIGPIPE and SIGXFSZ back to default, an exec failure raised here as OSError (its
    errno comes back through a close-on-exec pipe)."""
    path = argv[0]
    if "/" not in path:  # looked up here: os.execvpe would import warnings in the child
        found = which(path, env.get("PATH", DEFAULT_PATH))
        if found is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        path = found
    report_r, report_w = os.pipe()  # os.pipe() descriptors are close-on-exec
    pid = os.fork()
    if pid == 0:  # the child: only os calls until exec or _exit
        error = 0
        try:
            os.close(report_r)
            os.dup2(stderr_fd, 2)
            os.chdir(cwd)
            for name in ("SIGPIPE", "SIGXFSZ"):
                if hasattr(signals, name):
                    signals.signal(getattr(signals, name), signals.SIG_DFL)
            close_fds(report_w)
            os.execve(path, argv, env)
        except OSError as exc:
            error = exc.errno or 0
        except BaseException:  # noqa: S110 - never return into the wrapper's code
            pass
        try:
            os.write(report_w, str(error).encode())
        finally:
            os._exit(127)
    os.close(report_w)
    data = b""
    while True:
        chunk = os.read(report_r, 64)
        if not chunk:
            break
        data += chunk
    os.close(report_r)
    if data:
        os.waitpid(pid, 0)
        error = int(data)
        raise OSError(error, os.strerror(error) if error else "exec failed", argv[0])
    return pid


def close_fds(keep):
    # type: (int) -> None
    """In the child: close every descriptor above 2 but ``keep`` (subprocess's close_fds)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):
        limit = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024
        os.closerange(3, keep)
        os.closerange(keep + 1, max(limit, keep + 1))
        return
    for fd in fds:
        if fd > 2 and fd != keep:
            try:
                os.close(fd)
            except OSError:
                pass


def pump(pid, err_fd, wake_fd):
    # type: (int, int, int) -> Tuple[int, bytearray]
    """Tee the child's stderr until it ends and the child has exited: (wait status, tail)."""
    import select

    poller = select.poll()
    poller.register(err_fd, select.POLLIN)
    poller.register(wake_fd, select.POLLIN)
    tail = bytearray()
    status = None  # type: Optional[int]
    deadline = 0.0
    reading = True
    while True:
        if status is None:
            done, result = os.waitpid(pid, os.WNOHANG)
            if done:
                status, deadline = result, time.time() + STDERR_GRACE
        if not reading:
            break
        timeout = None  # type: Optional[float]
        if status is not None:
            timeout = (deadline - time.time()) * 1000
            if timeout <= 0:
                break  # descendants still hold stderr: do not wait for them
        for fd, _event in poller.poll(timeout):
            if fd == wake_fd:
                drain(wake_fd)
                continue
            chunk = os.read(err_fd, 65536)
            if not chunk:
                reading = False
                poller.unregister(err_fd)
                continue
            write_all(2, chunk)
            tail.extend(chunk)
            del tail[:-TAIL_BYTES]
    if status is None:
        status = os.waitpid(pid, 0)[1]
    return status, tail


def drain(fd):
    # type: (int) -> None
    try:
        while os.read(fd, 512):
            pass
    except OSError:  # BlockingIOError: empty
        pass


def write_all(fd, data):
    # type: (int, bytes) -> None
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:  # stderr closed: keep running the payload
        pass


def exit_status(status):
    # type: (int) -> int
    """Popen-style return code of a wait status: the exit code, or -N when killed by signal N."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def payload_exit(rt, outcome):
    # type: (Optional[Runtime], Outcome) -> Tuple[int, Optional[int]]
    """(exit code, killing signal) of the payload as seen through the runtime."""
    if outcome.returncode < 0:
        return 128 - outcome.returncode, -outcome.returncode
    signum = rt.signal_of(outcome.returncode, outcome.stderr_tail) if rt else None
    if signum:
        return 128 + signum, signum
    return outcome.returncode, None


# ----------------------------------------------------------------------------- the job

ENV_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
ENV_CHARS = frozenset(ENV_FIRST + "0123456789")


def is_env_name(name):
    # type: (str) -> bool
    """[A-Za-z_][A-Za-z0-9_]*"""
    return bool(name) and name[0] in ENV_FIRST and all(char in ENV_CHARS for char in name)


# The command line, one table for the fast parser and for argparse (--help, errors, the rest):
# (flags, dest, action, metavar or const, help).
OPTIONS = (
    (
        ("--image",),
        "image",
        "store",
        None,
        "docker://[registry/]repo[:tag], a rootfs directory, a .sif, or host: to run COMMAND"
        " on the node itself, uncontained (site validation)",
    ),
    (
        ("--image-root",),
        "image_root",
        "store",
        None,
        "where docker:// images live (default /cvmfs/unpacked.cern.ch)",
    ),
    (("--runtime",), "runtime", "store", None, "comma-separated runtimes to try, in order"),
    (
        ("--workdir",),
        "workdir",
        "store",
        None,
        "job scratch dir, seen at /srv (default $_CONDOR_SCRATCH_DIR, $TMPDIR or .)",
    ),
    (("--env",), "env", "append", "K=V", "payload variable"),
    (("--pass-env",), "pass_env", "append", "NAME", "pass a host variable"),
    (("--bind",), "bind", "append", "SRC[:DST[:ro|rw]]", "extra bind"),
    (("--gpu",), "gpu", "store_true", None, "give the payload the node's GPUs"),
    (("--stage-in",), "stage_in", "append", "NAME=URL", "fetch URL into the workdir as NAME first"),
    (("--stage-out",), "stage_out", "append", "GLOB=URL", "store matching outputs at URL (dir if /)"),
    (("--report",), "report", "store", None, "JSON report file (relative to the workdir)"),
    (("--require-container",), "require", "store_const", "yes", "never run the payload uncontained"),
    (
        ("--allow-uncontained",),
        "require",
        "store_const",
        "no",
        "run the payload on the node when no runtime works",
    ),
    (("--config",), "config", "store", None, "site config file (INI, section [pilot])"),
    (("--dry-run",), "dry_run", "store_true", None, "print what would run, run nothing"),
    (("--list-runtimes",), "list_runtimes", "store_true", None, "print the probe table"),
    (("--json",), "json", "store_true", None, "JSON output for --list-runtimes"),
    (("-v", "--verbose"), "verbose", "store_true", None, "log what the wrapper does"),
)  # type: Tuple[Tuple[Tuple[str, ...], str, str, Optional[str], str], ...]


class Args:
    """The parsed command line."""

    def __init__(self):
        # type: () -> None
        self.image = None  # type: Optional[str]
        self.image_root = None  # type: Optional[str]
        self.runtime = None  # type: Optional[str]
        self.workdir = None  # type: Optional[str]
        self.env = []  # type: List[str]
        self.pass_env = []  # type: List[str]
        self.bind = []  # type: List[str]
        self.gpu = False
        self.stage_in = []  # type: List[str]
        self.stage_out = []  # type: List[str]
        self.report = None  # type: Optional[str]
        self.require = None  # type: Optional[str]
        self.config = None  # type: Optional[str]
        self.dry_run = False
        self.list_runtimes = False
        self.json = False
        self.verbose = False
        self.command = []  # type: List[str]


def parse_args(argv):
    # type: (List[str]) -> Args
    """The fast parser for well-formed command lines; argparse for --help, --version, errors."""
    return fast_parse(argv) or full_parse(argv)


def fast_parse(argv):
    # type: (List[str]) -> Optional[Args]
    """Exact flags, ``--flag VALUE`` / ``--flag=VALUE``, then ``-- COMMAND`` (or the first
    positional and all after it); None for anything else (abbreviations, -h, a value that looks
    like an option, conflicting policies), which argparse then handles (argparse costs ~5 ms)."""
    options = {flag: option for option in OPTIONS for flag in option[0]}
    args = Args()
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--" or not token.startswith("-"):
            args.command = argv[index + 1 :] if token == "--" else argv[index:]
            return args
        flag, eq, inline = token.partition("=")
        if flag not in options:
            return None
        _flags, dest, action, extra, _help = options[flag]
        if action in ("store", "append"):
            if not eq:
                index += 1
                if index >= len(argv) or argv[index].startswith("-"):
                    return None
                inline = argv[index]
            if action == "store":
                setattr(args, dest, inline)
            else:
                getattr(args, dest).append(inline)
        elif eq or (action == "store_const" and getattr(args, dest) not in (None, extra)):
            return None
        else:
            setattr(args, dest, True if action == "store_true" else extra)
        index += 1
    return args


def full_parse(argv):
    # type: (List[str]) -> Args
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):  # type: ignore[override]
            # type: (str) -> None
            raise PilotError(EXIT_BAD_ARGS, message, "see cops-pilot --help")

    parser = Parser(prog="cops-pilot", description="Run a payload in a container on a worker node.")
    policy = parser.add_mutually_exclusive_group()
    for flags, dest, action, extra, text in OPTIONS:
        kwargs = {"dest": dest, "action": action, "help": text}  # type: Dict[str, Any]
        if action == "append":
            kwargs.update(default=[], metavar=extra)
        elif action == "store_const":
            kwargs["const"] = extra
        (policy if action == "store_const" else parser).add_argument(*flags, **kwargs)
    parser.add_argument("--version", action="version", version="cops-pilot " + __version__)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    args = Args()
    args.__dict__.update(vars(parser.parse_args(argv)))
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    return args


def payload_env(args, settings, home=CONTAINER_WORKDIR, path=DEFAULT_PATH):
    # type: (Args, Settings, str, str) -> Dict[str, str]
    """The payload's clean environment: PATH, HOME, the pass-through list, the job's --env."""
    env = {"PATH": path, "HOME": home}
    for name in split_list(settings.pass_env) + list(args.pass_env):
        if not is_env_name(name):
            raise PilotError(EXIT_BAD_ARGS, f"bad variable name {name!r}", "use NAME")
        if name in os.environ:
            env[name] = os.environ[name]
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not is_env_name(key):
            raise PilotError(EXIT_BAD_ARGS, f"bad --env {item!r}", "use --env NAME=VALUE")
        env[key] = value
    return env


def job_binds(args, settings):
    # type: (Args, Settings) -> List[Bind]
    binds = []
    if os.path.isdir("/cvmfs"):
        binds.append(Bind("/cvmfs", "/cvmfs", False, optional=True))
    for text in split_list(settings.binds) + list(args.bind):
        bind = parse_bind(text)
        if not os.path.exists(bind.src):
            raise PilotError(EXIT_BAD_ARGS, f"bind source {bind.src} does not exist", "fix --bind")
        binds.append(bind)
    return binds


def job_workdir(args):
    # type: (Args) -> str
    workdir = args.workdir or os.environ.get("_CONDOR_SCRATCH_DIR") or os.environ.get("TMPDIR") or "."
    if not os.path.isdir(workdir):
        raise PilotError(EXIT_BAD_ARGS, f"workdir {workdir} does not exist", "create it first")
    return os.path.realpath(workdir)


class Job:
    """One payload run: its launch, the attempts made, the report."""

    def __init__(self, args, settings):
        # type: (Args, Settings) -> None
        self.args = args
        self.settings = settings
        self.started = time.time()
        self.report = {
            "version": __version__,
            "wrapper_version": __version__,
            "started_at": self.started,
            "hostname": os.uname()[1],
            "node": node_facts(),
            "uid": os.geteuid(),
            "image": args.image,
            "image_digest": None,
            "command": args.command,
            "runtime": None,
            "attempts": [],
            "exit_code": None,
            "wrapper_exit_reason": None,
        }  # type: Dict[str, Any]
        self.report_path = None  # type: Optional[str]
        self.stager = None  # type: Any  # cops_transfer.Stager, for jobs that name storage URLs
        self.stage_items = ([], [])  # type: Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]

    def run(self):
        # type: () -> int
        args, settings = self.args, self.settings
        if not args.image:
            raise PilotError(EXIT_BAD_ARGS, "no --image given", "pass --image docker://repo:tag")
        if not args.command:
            raise PilotError(EXIT_BAD_ARGS, "no payload command given", "append -- COMMAND [ARG...]")
        workdir = job_workdir(args)
        self.report["workdir"] = workdir
        if args.report:
            self.report_path = os.path.join(workdir, args.report)
        if args.stage_in or args.stage_out:
            self.stage_in(workdir)
        if is_host_image(args.image):
            return self.run_on_host(workdir)
        image_root = args.image_root or settings.image_root
        self.report["image_root"] = image_root
        image = resolve_image(args.image, image_root)
        self.report["image_path"] = image.path
        self.report["image_digest"], self.report["image_digest_source"] = image_digest(image)
        order = split_list(args.runtime) if args.runtime else settings.order()
        self.report["order"] = order
        self.report["order_source"] = "--runtime" if args.runtime else settings.runtimes_source
        require = settings.require() if args.require is None else args.require == "yes"
        launch = Launch(
            image, args.command, workdir, job_binds(args, settings), payload_env(args, settings), args.gpu
        )
        try:
            self.report["binds"] = [b.as_dict() for b in launch.all_binds()]
            self.report["env_names"] = sorted(launch.env)
            return self.try_runtimes(order, launch, require)
        finally:
            launch.cleanup()

    def run_on_host(self, workdir):
        # type: (str) -> int
        """Host mode (--image host:): the payload runs on the node itself, told to explicitly."""
        args = self.args
        if args.bind:
            raise PilotError(
                EXIT_BAD_ARGS,
                "--bind cannot apply with --image host: (no container)",
                "drop --bind: the payload sees the node's own paths",
            )
        if args.require == "yes":
            raise PilotError(
                EXIT_BAD_ARGS,
                "--require-container contradicts --image host:",
                "drop one of them: host mode runs the payload uncontained",
            )
        env = payload_env(args, self.settings, home=workdir, path=os.environ.get("PATH") or DEFAULT_PATH)
        self.report["image_path"] = None
        self.report["binds"] = []
        self.report["env_names"] = sorted(env)
        return self.start(None, None, list(args.command), env, "host")  # type: ignore[return-value]

    def try_runtimes(self, order, launch, require):
        # type: (List[str], Launch, bool) -> int
        cache = ProbeCache(ProbeCache.choose_dir(self.settings.cache_dir, os.environ), self.settings.ttl())
        path_env = os.environ.get("PATH", DEFAULT_PATH)
        failures = []
        for name in order:
            attempt = consider(name, launch.image, launch, cache, path_env, None)
            self.report["attempts"].append(attempt.as_dict())
            log("%s", attempt.crumb())
            if attempt.status != "ok":
                continue
            rt = runtime(name)
            argv, env = rt.build(launch, attempt.binary or rt.name)
            code = self.start(rt, attempt, argv, env)
            if code is not None:
                return code
            failures.append(attempt.crumb())
        if failures:
            raise PilotError(
                EXIT_START_FAILED,
                "the runtime failed to start the container: " + failures[-1],
                "see the runtime's message above; report it to the site",
            )
        if not require:
            env = dict(launch.env)
            if env.get("HOME") == CONTAINER_WORKDIR:
                env["HOME"] = launch.workdir  # no /srv on the host: HOME is the scratch itself
            return self.start(None, None, list(launch.command), env, "uncontained")  # type: ignore[return-value]
        raise PilotError(
            EXIT_NO_RUNTIME,
            "no working container runtime among {} ({})".format(
                ",".join(order), "; ".join(crumbs(self.report["attempts"]))
            ),
            "install apptainer or enable user namespaces; the payload is never run uncontained",
        )

    def start(self, rt, attempt, argv, env, label="uncontained"):
        # type: (Optional[Runtime], Optional[Attempt], List[str], Dict[str, str], str) -> Optional[int]
        """Run the payload; None when the runtime failed before the payload started."""
        self.report["runtime"] = rt.name if rt else label
        self.report["mode"] = attempt.mode if attempt else "none"
        self.report["why"] = why_chosen(self.report, label)
        log("chosen: %s", self.report["why"])
        self.report["argv"] = argv
        self.report["breadcrumbs"] = ";".join(crumbs(self.report["attempts"]))
        self.report["refused"] = refusals(self.report["attempts"])
        self.record_runtime(rt, attempt)
        if self.args.dry_run:
            sys.stdout.write("runtime: {}\n".format(self.report["runtime"]))
            sys.stdout.write("argv: {}\n".format(" ".join(quote(a) for a in argv)))
            sys.stdout.write("env: {}\n".format(" ".join(sorted(self.report["env_names"]))))
            self.report["wrapper_exit_reason"] = "dry-run"
            self.report["exit_code"] = 0
            return 0
        started = time.time()
        self.report["timings"] = {"setup_s": round(started - self.started, 4)}
        self.report["payload_started_at"] = started
        before = os.times()
        try:
            outcome = execute(argv, env, self.report["workdir"])
        except OSError as exc:
            if rt is not None:
                raise
            return self.not_started(argv[0], exc)
        ended = time.time()
        self.report["timings"]["payload_s"] = round(ended - started, 4)
        self.report["payload_ended_at"] = ended
        self.report["usage"] = dict(children_usage(before), wall_s=round(ended - started, 4))
        failure = rt.start_failure(outcome.returncode, outcome.stderr_tail) if rt else None
        if failure and attempt is not None:
            attempt.status, attempt.reason = "start-failed", failure
            self.report["attempts"][-1] = attempt.as_dict()
            return None
        code, signum = payload_exit(rt, outcome)
        self.report["exit_code"] = code
        self.report["signal"] = signum
        self.report["wrapper_exit_reason"] = "payload-signal" if signum else "payload"
        return code

    def record_runtime(self, rt, attempt):
        # type: (Optional[Runtime], Optional[Attempt]) -> None
        """The runtime's version (cached per node) and, for an engine, the image id it ran."""
        binary = attempt.binary if attempt else None
        version = ""
        if rt is not None and binary:
            cache_dir = ProbeCache.choose_dir(self.settings.cache_dir, os.environ)
            version = runtime_version(rt, binary, cache_dir)
        self.report["runtime_version"] = version
        engine_ref = getattr(rt, "engine_ref", None)
        if engine_ref and binary and isinstance(rt, Docker):
            self.report["engine_image"] = {"ref": engine_ref, "id": rt.image_id(binary, engine_ref)}

    def stage_in(self, workdir):
        # type: (str) -> None
        """Fetch the job's input URLs (--stage-in) before its payload; the mover's plan in dry-run."""
        transfer = load_transfer()
        settings = self.settings
        try:
            retries, backoff = int(settings.transfer_retries), float(settings.transfer_backoff)
            self.stage_items = (
                [transfer.split_pair(text, "--stage-in") for text in self.args.stage_in],
                [transfer.split_pair(text, "--stage-out") for text in self.args.stage_out],
            )
        except ValueError as exc:
            raise PilotError(EXIT_BAD_ARGS, str(exc), "see cops-pilot --help") from None
        self.stager = transfer.Stager(
            workdir,
            os.environ,
            (settings.s3_endpoint, settings.s3_region, settings.s3_keys),
            retries,
            backoff,
            log,
        )
        self.report["storage"] = self.stager.describe()
        if self.args.dry_run:
            for (name, url), arrow in [(i, "<-") for i in self.stage_items[0]] + [
                (o, "->") for o in self.stage_items[1]
            ]:
                sys.stdout.write(
                    f"stage: {name} {arrow} {url} ({transfer.mover_for(url, self.stager.tools)})\n"
                )
            return
        entries, failure = self.stager.stage_in(self.stage_items[0])
        self.report["stage_in"] = entries
        if failure is not None:
            raise PilotError(
                EXIT_STAGE_IN_FAILED,
                f"input {failure.url} ({failure.kind}): {failure.message}",
                transfer.HINTS.get(failure.kind, transfer.HINTS["failed"]) + "; the payload was not started",
            )

    def stage_out(self, code):
        # type: (int) -> int
        """Store the outputs that name a URL (--stage-out) once the payload succeeded, checked by
        checksum; a failure keeps the payload's code in the report and the file in the sandbox."""
        if self.stager is None or not self.stage_items[1] or self.args.dry_run:
            return code
        if code != 0 or self.report.get("wrapper_exit_reason") != "payload":
            why = "not stored: the job ended with {} before its outputs were complete".format(code)
            self.report["stage_out"] = [
                {"path": g, "url": u, "status": "skipped", "why": why} for g, u in self.stage_items[1]
            ]
            return code
        entries, failure = self.stager.stage_out(self.stage_items[1])
        self.report["stage_out"] = entries
        if failure is None:
            return code
        transfer = load_transfer()
        error = PilotError(
            EXIT_STAGE_OUT_FAILED,
            f"output {failure.path} to {failure.url} ({failure.kind}): {failure.message}",
            transfer.HINTS.get(failure.kind, transfer.HINTS["failed"])
            + "; the file stays in the job's sandbox (`cops-grid get` returns it)",
        )
        sys.stderr.write(error.line() + "\n")
        self.report["payload_exit_code"] = code
        return self.fail(error)

    def not_started(self, command, exc):
        # type: (str, OSError) -> int
        """An uncontained payload that cannot be executed: 127 (not found) or 126, as a shell does."""
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        message = f"{command}: {exc.strerror or exc}"
        sys.stderr.write("cops-pilot: payload not started: " + message + "\n")
        self.report["exit_code"] = code
        self.report["signal"] = None
        self.report["wrapper_exit_reason"] = "payload"
        self.report["payload_error"] = message
        return code

    def fail(self, error):
        # type: (PilotError) -> int
        self.report["exit_code"] = error.code
        self.report["wrapper_exit_reason"] = EXIT_CODES[error.code][0]
        self.report["error"] = error.line()
        self.report["breadcrumbs"] = ";".join(crumbs(self.report["attempts"]))
        return error.code

    def write_report(self):
        # type: () -> None
        if not self.report_path:
            return
        self.report["ended_at"] = time.time()
        self.report.setdefault("timings", {})["total_s"] = round(self.report["ended_at"] - self.started, 4)
        try:
            tmp = self.report_path + ".tmp"
            write_private(tmp, to_json(self.report, indent=1) + "\n")
            os.replace(tmp, self.report_path)
        except OSError as exc:
            sys.stderr.write(f"cops-pilot: warning: report {self.report_path} not written: {exc}\n")


def load_transfer():
    # type: () -> Any
    """cops_transfer.py, shipped beside this file; imported only by jobs that name storage URLs."""
    module = sys.modules.get("cops_transfer")
    if module is not None:
        return module
    path = os.path.join(os.path.dirname(os.path.realpath(__file__)), "cops_transfer.py")
    if not os.path.isfile(path):
        raise PilotError(
            EXIT_BAD_ARGS, f"{path} is missing: storage URLs need it", "ship it beside the wrapper"
        )
    import importlib.util

    spec = importlib.util.spec_from_file_location("cops_transfer", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    sys.modules["cops_transfer"] = module
    return module


def why_chosen(report, label="uncontained"):
    # type: (Dict[str, Any], str) -> str
    """Why the report's runtime won: the order and where it came from, what was wrong with
    each runtime before it, and what the winner brings (RUNTIME_NOTES)."""
    name = report["runtime"]
    if name == "host":
        return "host mode (--image host:): the payload runs on the node itself, as asked"
    before = [a for a in report["attempts"] if a["name"] != name or a["status"] != "ok"]
    refused = ", ".join(
        "{} {}{}".format(a["name"], a["status"], " ({})".format(a["reason"]) if a["reason"] else "")
        for a in before
    )
    source = report.get("order_source", "built-in default")
    order = "{} order {}".format(source, ",".join(report.get("order", [])))
    if name == label:
        return f"no runtime of the {order} works here ({refused}) and containers are not required"
    text = f"{name}: the first runtime of the {order} that works here"
    text += f"; before it: {refused}" if refused else ""
    note = RUNTIME_NOTES.get(name)
    return text + (f"; {name}: {note}" if note else "")


def crumbs(attempts):
    # type: (List[Dict[str, Any]]) -> List[str]
    return [
        "{}:{}{}".format(a["name"], a["status"], "({})".format(a["reason"]) if a["reason"] else "")
        for a in attempts
    ]


def quote(arg):
    # type: (str) -> str
    import shlex

    return shlex.quote(arg)


def list_runtimes(args, settings):
    # type: (Args, Settings) -> int
    order = split_list(args.runtime) if args.runtime else settings.order()
    image = None  # type: Optional[Image]
    if args.image and not is_host_image(args.image):
        image = resolve_image(args.image, args.image_root or settings.image_root)
    cache = ProbeCache(ProbeCache.choose_dir(settings.cache_dir, os.environ), settings.ttl())
    attempts = detect(order, image, cache=cache)
    userns = userns_status()
    source = "--runtime" if args.runtime else settings.runtimes_source
    chosen = next((a.name for a in attempts if a.status == "ok"), None)
    if args.json:
        data = {
            "userns": userns,
            "runtimes": [a.as_dict() for a in attempts],
            "order": order,
            "order_source": source,
            "chosen": chosen,
        }
        sys.stdout.write(to_json(data, indent=1) + "\n")
        return 0
    sys.stdout.write("user namespaces: {}\n".format("enabled" if userns["enabled"] else "disabled"))
    sys.stdout.write("{:<13} {:<13} {:<9} {}\n".format("RUNTIME", "STATUS", "MODE", "BINARY / REASON"))
    for a in attempts:
        detail = a.binary or ""
        if a.reason:
            detail = (detail + " " if detail else "") + "- " + a.reason
        sys.stdout.write("{:<13} {:<13} {:<9} {}\n".format(a.name, a.status, a.mode or "-", detail))
    sys.stdout.write("a job here runs with: {} (first that works, {} order)\n".format(chosen or "-", source))
    return 0


def main(argv=None):
    # type: (Optional[Sequence[str]]) -> int
    """Entry point of cops-pilot and `cops-grid pilot`: returns the exit code."""
    job = None  # type: Optional[Job]
    try:
        args = parse_args(list(sys.argv[1:] if argv is None else argv))
        if args.verbose:
            VERBOSE.append(True)
        settings = load_settings(args.config, os.environ)
        if args.list_runtimes:
            return list_runtimes(args, settings)
        job = Job(args, settings)
        return job.stage_out(job.run())
    except PilotError as error:
        sys.stderr.write(error.line() + "\n")
        return job.fail(error) if job else error.code
    except Exception as exc:
        if VERBOSE:
            import traceback

            traceback.print_exc()
        failure = PilotError(
            EXIT_INTERNAL,
            f"internal error: {type(exc).__name__}: {exc}",
            "report this bug with the command line (run with -v for details)",
        )
        sys.stderr.write(failure.line() + "\n")
        return job.fail(failure) if job else failure.code
    finally:
        if job is not None:
            job.write_report()


if __name__ == "__main__":
    sys.exit(main())
