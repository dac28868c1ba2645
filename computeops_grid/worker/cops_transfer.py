"""cops_transfer: the pilot wrapper's data mover for grid storage (root://, davs://, https://, s3://).

Standard library only, Python 3.6+, shipped beside ``cops_pilot.py`` and imported by it only
when a job names storage URLs (``--stage-in NAME=URL``, ``--stage-out GLOB=URL``). The bytes
are moved by the node's own tools, probed on PATH: ``xrdcp``/``xrdfs`` (or ``gfal-copy``/
``gfal-sum``) for XRootD, ``curl`` for WebDAV and HTTPS (the standard library when curl is
absent, downloads only), and a standard-library SigV4 client for S3.

Every upload is checked: the checksum the storage reports (XRootD ``query checksum`` adler32,
WebDAV ``Digest: adler32=`` on ``Want-Digest``, the S3 ETag, an MD5) must equal the local one.
Failures carry a kind the user can act on: ``missing``, ``unreachable``, ``refused``,
``no-space``, ``mismatch``, ``no-tool``; ``unreachable`` (and unknown failures) are retried
with backoff, a bounded number of times. Credentials come from the node, never the job: the
X.509 proxy ($X509_USER_PROXY), the WLCG bearer token ($BEARER_TOKEN, $BEARER_TOKEN_FILE),
S3 keys from $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY or a shared-credentials file.
"""

import os
import subprocess
import time
import zlib

MYPY = False
if MYPY:  # pragma: no cover
    from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple  # noqa: F401

TOOLS = ("xrdcp", "xrdfs", "gfal-copy", "gfal-sum", "curl")
TRANSIENT = ("unreachable", "failed", "mismatch")  # kinds worth another try
CHUNK = 1 << 20
HEADER_FILE = ".cops-bearer-header"  # the token as a curl header file (0600), never on a command line
TOOL_TIMEOUT = 3600.0
# XRootD's client waits up to 120 s for a server that refuses connections; our own retries
# (bounded, with backoff) replace that, unless the site set these itself.
XRD_ENV = {"XRD_CONNECTIONRETRY": "1", "XRD_CONNECTIONWINDOW": "10", "XRD_REQUESTTIMEOUT": "300"}


class TransferError(Exception):
    """One file that could not be moved: its kind, the local file and the URL."""

    def __init__(self, kind, message, path="", url=""):
        # type: (str, str, str, str) -> None
        Exception.__init__(self, message)
        self.kind = kind
        self.message = message
        self.path = path
        self.url = url

    @property
    def transient(self):
        # type: () -> bool
        return self.kind in TRANSIENT


# ----------------------------------------------------------------------------- URLs and tools


def scheme(url):
    # type: (str) -> str
    return url.split("://", 1)[0].lower() if "://" in url else ""


def split_xroot(url):
    # type: (str) -> Tuple[str, str]
    """``root://host:port//store/x`` -> (``host:port``, ``/store/x``)."""
    rest = url.split("://", 1)[1]
    host, _, path = rest.partition("/")
    return host, "/" + path.lstrip("/")


def probe_tools(path_env):
    # type: (str) -> Dict[str, Optional[str]]
    """Which movers this node has: tool name -> its path, or None."""
    found = {}  # type: Dict[str, Optional[str]]
    for name in TOOLS:
        found[name] = None
        for folder in path_env.split(os.pathsep):
            candidate = os.path.join(folder or ".", name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                found[name] = candidate
                break
    return found


def mover_for(url, tools):
    # type: (str, Mapping[str, Optional[str]]) -> str
    """The mover this node uses for ``url`` (``no-tool`` when it has none)."""
    kind = scheme(url)
    if kind in ("root", "xroot"):
        if tools.get("xrdcp") and tools.get("xrdfs"):
            return "xrdcp"
        return "gfal-copy" if tools.get("gfal-copy") else "no-tool"
    if kind in ("davs", "https", "dav", "http"):
        return "curl" if tools.get("curl") else "python-https"
    if kind == "s3":
        return "python-s3"
    return "no-tool"


def file_adler32(path):
    # type: (str) -> str
    value = 1
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            value = zlib.adler32(chunk, value)
    return "{:08x}".format(value & 0xFFFFFFFF)


def file_digest(path, name):
    # type: (str, str) -> str
    import hashlib

    digest = hashlib.new(name)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def classify(text):
    # type: (str) -> str
    """A failure kind from a tool's message (xrdcp/xrdfs, gfal, curl, HTTP status)."""
    low = text.lower()
    if any(s in low for s in ("[3009]", "[3021]", "no space", "quota", "http 507", "error: 507")):
        return "no-space"
    if any(s in low for s in ("[3010]", "not authorized", "read/only", "read-only", "read only", "permission denied", "disallowed", "http 403",
                              "http 401", "error: 403", "error: 401", "accessdenied")):  # fmt: skip
        return "refused"
    if any(s in low for s in ("[3011]", "no such file", "not found", "http 404", "error: 404", "nosuchkey",
                              "nosuchbucket")):  # fmt: skip
        return "missing"
    if any(s in low for s in ("connection refused", "connection error", "could not connect", "timed out",
                              "timeout", "couldn't connect", "unreachable", "name or service not known",
                              "failed to connect", "[3012]", "http 5", "error: 5")):  # fmt: skip
        return "unreachable"
    return "failed"


def run_tool(argv, env=None, timeout=TOOL_TIMEOUT):
    # type: (List[str], Optional[Dict[str, str]], float) -> Tuple[int, str, str]
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 124, "", "{} timed out after {:.0f} s".format(argv[0], timeout)
    except OSError as exc:
        return 127, "", "{}: {}".format(argv[0], exc)
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    return proc.returncode, out, err


def last_line(text):
    # type: (str) -> str
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# ----------------------------------------------------------------------------- XRootD


def xrd_env(environ):
    # type: (Mapping[str, str]) -> Dict[str, str]
    env = dict(environ)
    for key, value in XRD_ENV.items():
        env.setdefault(key, value)
    return env


def xrootd_get(url, dest, tools, environ):
    # type: (str, str, Mapping[str, Optional[str]], Mapping[str, str]) -> Dict[str, Any]
    if mover_for(url, tools) == "gfal-copy":
        return gfal_copy(url, "file://" + os.path.abspath(dest), tools, environ, None)
    code, _out, err = run_tool([str(tools["xrdcp"]), "-f", "-s", url, dest], xrd_env(environ))
    if code != 0:
        raise TransferError(classify(err), "xrdcp: " + (last_line(err) or f"exit code {code}"))
    return {"adler32": file_adler32(dest)}


def xrootd_put(path, url, tools, environ):
    # type: (str, str, Mapping[str, Optional[str]], Mapping[str, str]) -> Dict[str, Any]
    local = file_adler32(path)
    if mover_for(url, tools) == "gfal-copy":
        return gfal_copy("file://" + os.path.abspath(path), url, tools, environ, local)
    env = xrd_env(environ)
    code, _out, err = run_tool([str(tools["xrdcp"]), "-f", "-s", "-p", path, url], env)
    if code != 0:
        raise TransferError(classify(err), "xrdcp: " + (last_line(err) or f"exit code {code}"))
    host, remote = split_xroot(url)
    code, out, err = run_tool([str(tools["xrdfs"]), host, "query", "checksum", remote], env)
    if code != 0:
        raise TransferError(classify(err), "xrdfs query checksum: " + (last_line(err) or f"exit {code}"))
    reported = out.replace("\x00", " ").split()
    value = reported[1].lower() if len(reported) >= 2 and reported[0].lower() == "adler32" else out.strip()
    result = {"algorithm": "adler32", "local": local, "remote": value}  # type: Dict[str, Any]
    code, out, _err = run_tool([str(tools["xrdfs"]), host, "stat", remote], env)
    for line in out.splitlines() if code == 0 else []:
        name, _, size = line.partition(":")
        if name.strip() == "Size" and size.strip().isdigit():
            result["remote_size"] = int(size)
    return result


def gfal_copy(src, dst, tools, environ, local):
    # type: (str, str, Mapping[str, Optional[str]], Mapping[str, str], Optional[str]) -> Dict[str, Any]
    """gfal2's copy with its own adler32 comparison (``-K adler32``) on uploads."""
    argv = [str(tools["gfal-copy"]), "-f", "-p"]
    argv += ["-K", "adler32"] if local else []
    code, _out, err = run_tool(argv + [src, dst], xrd_env(environ))  # gfal2's xrootd plugin is XrdCl
    if code != 0:
        low = err.lower()
        kind = "mismatch" if "checksum" in low and ("mismatch" in low or "error" in low) else classify(err)
        raise TransferError(kind, "gfal-copy: " + (last_line(err) or f"exit code {code}"))
    if local is None:
        return {"adler32": file_adler32(dst[len("file://") :])}
    return {"algorithm": "adler32", "local": local, "remote": local, "checked_by": "gfal-copy -K adler32"}


# ----------------------------------------------------------------------------- WebDAV / HTTPS


def https_url(url):
    # type: (str) -> str
    kind = scheme(url)
    if kind in ("davs", "dav"):
        return ("https" if kind == "davs" else "http") + url[len(kind) :]
    return url


def curl_auth(environ, scratch):
    # type: (Mapping[str, str], str) -> List[str]
    """curl options for the node's credentials: CA directory, X.509 proxy, bearer token (in a
    0600 header file, never on the command line)."""
    argv = []  # type: List[str]
    if environ.get("X509_CERT_DIR"):
        argv += ["--capath", environ["X509_CERT_DIR"]]
    if environ.get("COPS_PILOT_CA_FILE"):
        argv += ["--cacert", environ["COPS_PILOT_CA_FILE"]]
    proxy = environ.get("X509_USER_PROXY") or "/tmp/x509up_u{}".format(os.geteuid())  # noqa: S108 - the grid's default
    if os.path.isfile(proxy):
        argv += ["--cert", proxy, "--key", proxy]
    token = bearer_token(environ)
    if token:
        header = os.path.join(scratch, HEADER_FILE)  # removed after each request (curl())
        fd = os.open(header, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("Authorization: Bearer " + token + "\n")
        argv += ["-H", "@" + header]
    return argv


def bearer_token(environ):
    # type: (Mapping[str, str]) -> str
    """The WLCG bearer token discovery: $BEARER_TOKEN, $BEARER_TOKEN_FILE, $XDG_RUNTIME_DIR/bt_u<uid>."""
    if environ.get("BEARER_TOKEN"):
        return environ["BEARER_TOKEN"].strip()
    candidates = [environ.get("BEARER_TOKEN_FILE", "")]
    if environ.get("XDG_RUNTIME_DIR"):
        candidates.append(os.path.join(environ["XDG_RUNTIME_DIR"], "bt_u{}".format(os.geteuid())))
    for path in candidates:
        if path and os.path.isfile(path):
            with open(path) as handle:
                return handle.read().strip()
    return ""


def curl(tools, environ, scratch, args, out):
    # type: (Mapping[str, Optional[str]], Mapping[str, str], str, List[str], str) -> str
    """One curl request (the node's credentials added); its output in ``out``; the HTTP status
    read with ``-w`` (not ``-f``, which hides the server's explanation of a refusal)."""
    argv = [str(tools["curl"]), "-sS", "-L", "-o", out, "-w", "%{http_code}"]
    try:
        code, status, err = run_tool(argv + curl_auth(environ, scratch) + args, dict(environ))
    finally:
        if os.path.exists(os.path.join(scratch, HEADER_FILE)):  # the token never stays in the sandbox
            os.unlink(os.path.join(scratch, HEADER_FILE))
    if code != 0:
        raise TransferError(classify(curl_text(code, err)), "curl: " + (last_line(err) or f"exit code {code}"))
    if not status.strip().isdigit() or int(status) >= 400:
        body = ""
        if os.path.isfile(out):
            with open(out, "rb") as handle:
                body = handle.read(400).decode("utf-8", "replace")
            os.unlink(out)
        why = " ".join(body.split())
        raise TransferError(classify(f"http {status} {why}"), f"HTTP {status}" + (f": {why}" if why else ""))
    return status


def curl_get(url, dest, tools, environ, scratch):
    # type: (str, str, Mapping[str, Optional[str]], Mapping[str, str], str) -> Dict[str, Any]
    curl(tools, environ, scratch, [https_url(url)], dest)
    return {"adler32": file_adler32(dest)}


def curl_text(code, err):
    # type: (int, str) -> str
    """curl's exit code as words classify() reads (7: no connection, 28: timeout)."""
    words = {6: "name or service not known", 7: "could not connect", 28: "timed out", 35: "unreachable"}
    return err + " " + words.get(code, "")


def curl_put(path, url, tools, environ, scratch):
    # type: (str, str, Mapping[str, Optional[str]], Mapping[str, str], str) -> Dict[str, Any]
    """PUT, then HEAD with ``Want-Digest: adler32`` (RFC 3230): the storage's own checksum."""
    local = file_adler32(path)
    target = https_url(url)
    answer = os.path.join(scratch, ".cops-curl-answer")
    try:
        curl(tools, environ, scratch, ["-T", path, target], answer)
        curl(tools, environ, scratch, ["-I", "-H", "Want-Digest: adler32", target], answer)
        with open(answer, "rb") as handle:
            head = handle.read(65536).decode("latin-1")
    finally:
        if os.path.exists(answer):
            os.unlink(answer)
    remote = ""
    for line in head.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "digest":
            for item in value.split(","):
                algo, _, digest = item.strip().partition("=")
                if algo.lower() == "adler32":
                    remote = digest.strip().lower()
    return {"algorithm": "adler32", "local": local, "remote": remote or "(none reported)"}


def python_get(url, dest, environ):
    # type: (str, str, Mapping[str, str]) -> Dict[str, Any]
    """HTTPS download with the standard library (nodes without curl)."""
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context(
        cafile=environ.get("COPS_PILOT_CA_FILE") or None, capath=environ.get("X509_CERT_DIR") or None
    )
    try:
        with urllib.request.urlopen(https_url(url), timeout=60, context=context) as answer:  # noqa: S310
            with open(dest, "wb") as handle:
                for chunk in iter(lambda: answer.read(CHUNK), b""):
                    handle.write(chunk)
    except urllib.error.HTTPError as exc:
        raise TransferError(classify(f"http {exc.code}"), f"HTTP {exc.code} {exc.reason}") from None
    except (OSError, urllib.error.URLError) as exc:
        raise TransferError("unreachable", str(exc)) from None
    return {"adler32": file_adler32(dest)}


# ----------------------------------------------------------------------------- S3 (SigV4)


class S3Config:
    """Where S3 is and the keys for it: the site's settings and the node's environment."""

    def __init__(self, endpoint, region, keys_file, environ):
        # type: (str, str, str, Mapping[str, str]) -> None
        self.endpoint = (endpoint or environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
                         or "https://s3.amazonaws.com").rstrip("/")  # fmt: skip
        self.region = region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.access, self.secret, self.session = keys(keys_file, environ)


def keys(keys_file, environ):
    # type: (str, Mapping[str, str]) -> Tuple[str, str, str]
    """S3 keys: $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY, else a shared-credentials file (the
    site's ``s3_keys``, $AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials), profile $AWS_PROFILE."""
    if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        return (
            environ["AWS_ACCESS_KEY_ID"],
            environ["AWS_SECRET_ACCESS_KEY"],
            environ.get("AWS_SESSION_TOKEN", ""),
        )
    home = environ.get("HOME", "")
    for path in (keys_file, environ.get("AWS_SHARED_CREDENTIALS_FILE", ""),
                 os.path.join(home, ".aws", "credentials") if home else ""):  # fmt: skip
        if path and os.path.isfile(path):
            import configparser

            parser = configparser.ConfigParser()
            parser.read(path)
            profile = environ.get("AWS_PROFILE", "default")
            if parser.has_section(profile):
                section = parser[profile]
                return (section.get("aws_access_key_id", ""), section.get("aws_secret_access_key", ""),
                        section.get("aws_session_token", ""))  # fmt: skip
    return "", "", ""


def s3_split(url):
    # type: (str) -> Tuple[str, str]
    bucket, _, key = url.split("://", 1)[1].partition("/")
    return bucket, key


def s3_request(config, method, url, body_path=None, headers=None):
    # type: (S3Config, str, str, Optional[str], Optional[Dict[str, str]]) -> Any
    """One signed request (path-style); returns the http.client response (unread)."""
    import hashlib
    import hmac
    import http.client
    import urllib.parse

    if not config.access or not config.secret:
        raise TransferError("refused", "no S3 keys on this node (AWS_ACCESS_KEY_ID or the site's s3_keys)")
    bucket, key = s3_split(url)
    parts = urllib.parse.urlsplit(config.endpoint)
    path = urllib.parse.quote("/{}/{}".format(bucket, key), safe="/-_.~")
    payload = file_digest(body_path, "sha256") if body_path else hashlib.sha256(b"").hexdigest()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    head = {"host": parts.netloc, "x-amz-content-sha256": payload, "x-amz-date": stamp}
    head.update({k.lower(): v for k, v in (headers or {}).items()})
    if config.session:
        head["x-amz-security-token"] = config.session
    names = sorted(head)
    canonical = "\n".join([method, path, "", "".join(f"{n}:{head[n].strip()}\n" for n in names),
                           ";".join(names), payload])  # fmt: skip
    scope = "{}/{}/s3/aws4_request".format(stamp[:8], config.region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signing = ("AWS4" + config.secret).encode()
    for part in (stamp[:8], config.region, "s3", "aws4_request"):
        signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    head["authorization"] = "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}".format(
        config.access, scope, ";".join(names), signature
    )
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.netloc, timeout=60)
    try:
        if body_path:
            head["content-length"] = str(os.path.getsize(body_path))
            with open(body_path, "rb") as body:
                connection.request(method, path, body=body, headers=head)
                return connection.getresponse()
        connection.request(method, path, headers=head)
        return connection.getresponse()
    except OSError as exc:
        connection.close()
        raise TransferError("unreachable", "S3 endpoint {}: {}".format(config.endpoint, exc)) from None


def s3_failure(answer):
    # type: (Any) -> TransferError
    body = answer.read(4096).decode("utf-8", "replace")
    code = body.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in body else ""
    text = "http {} {}".format(answer.status, code or answer.reason)
    return TransferError(classify(text + " " + code), "S3 answered " + text.replace("http ", "HTTP "))


def s3_get(url, dest, config):
    # type: (str, str, S3Config) -> Dict[str, Any]
    answer = s3_request(config, "GET", url)
    if answer.status != 200:
        raise s3_failure(answer)
    with open(dest, "wb") as handle:
        for chunk in iter(lambda: answer.read(CHUNK), b""):
            handle.write(chunk)
    etag = (answer.getheader("ETag") or "").strip('"')
    if etag and "-" not in etag and etag != file_digest(dest, "md5"):
        raise TransferError("mismatch", f"downloaded bytes do not match the ETag {etag}")
    return {"adler32": file_adler32(dest)}


def s3_put(path, url, config):
    # type: (str, str, S3Config) -> Dict[str, Any]
    import base64
    import binascii

    local = file_digest(path, "md5")
    content_md5 = base64.b64encode(binascii.unhexlify(local)).decode()
    answer = s3_request(config, "PUT", url, body_path=path, headers={"Content-MD5": content_md5})
    answer.read()
    if answer.status not in (200, 201):
        raise s3_failure(answer)
    check = s3_request(config, "HEAD", url)
    check.read()
    if check.status != 200:
        raise s3_failure(check)
    remote = (check.getheader("ETag") or "").strip('"').lower()
    return {"algorithm": "md5 (ETag)", "local": local, "remote": remote}


# ----------------------------------------------------------------------------- the stager


class Stager:
    """Moves a job's URL inputs in before its payload, its outputs out after it, with retries."""

    def __init__(self, workdir, environ, s3=None, retries=3, backoff=2.0, log=None):
        # type: (str, Mapping[str, str], Optional[Tuple[str, str, str]], int, float, Any) -> None
        self.workdir = workdir
        self.environ = environ
        self.tools = probe_tools(environ.get("PATH", os.defpath))
        self.s3_settings = s3 or ("", "", "")
        self.retries = max(1, retries)
        self.backoff = backoff
        self.log = log or (lambda message, *args: None)

    def describe(self):
        # type: () -> Dict[str, Any]
        """For the report: which tools this node has."""
        return {"tools": dict(self.tools), "retries": self.retries, "backoff_s": self.backoff}

    def _with_retries(self, move, entry):
        # type: (Callable[[], Dict[str, Any]], Dict[str, Any]) -> Dict[str, Any]
        started = time.time()
        attempt = 0
        while True:
            attempt += 1
            entry["attempts"] = attempt
            try:
                result = move()
                entry["seconds"] = round(time.time() - started, 4)
                return result
            except TransferError as exc:
                entry["seconds"] = round(time.time() - started, 4)
                if not exc.transient or attempt >= self.retries:
                    raise
                self.log(
                    "transfer %s failed (%s), try %d of %d", entry["url"], exc.message, attempt, self.retries
                )
                time.sleep(self.backoff * 2 ** (attempt - 1))

    def _get(self, url, dest):
        # type: (str, str) -> Dict[str, Any]
        mover = mover_for(url, self.tools)
        if mover in ("xrdcp", "gfal-copy"):
            return xrootd_get(url, dest, self.tools, self.environ)
        if mover == "curl":
            return curl_get(url, dest, self.tools, self.environ, self.workdir)
        if mover == "python-https":
            return python_get(url, dest, self.environ)
        if mover == "python-s3":
            return s3_get(url, dest, S3Config(*self.s3_settings, environ=self.environ))
        raise TransferError("no-tool", "no mover for {} on this node (tools: {})".format(url, self.found()))

    def _put(self, path, url):
        # type: (str, str) -> Dict[str, Any]
        mover = mover_for(url, self.tools)
        if mover in ("xrdcp", "gfal-copy"):
            return xrootd_put(path, url, self.tools, self.environ)
        if mover == "curl":
            return curl_put(path, url, self.tools, self.environ, self.workdir)
        if mover == "python-s3":
            return s3_put(path, url, S3Config(*self.s3_settings, environ=self.environ))
        raise TransferError(
            "no-tool", "no uploader for {} on this node (tools: {})".format(url, self.found())
        )

    def found(self):
        # type: () -> str
        return ", ".join(name for name, path in self.tools.items() if path) or "none"

    def stage_in(self, items):
        # type: (List[Tuple[str, str]]) -> Tuple[List[Dict[str, Any]], Optional[TransferError]]
        """Download each (name, url) into the workdir; stops at the first failure."""
        entries = []  # type: List[Dict[str, Any]]
        for name, url in items:
            entry = {"url": url, "name": name, "mover": mover_for(url, self.tools), "status": "failed"}
            entries.append(entry)
            dest = os.path.join(self.workdir, name)
            part = dest + ".cops-part"
            try:
                result = self._with_retries(lambda: self._get(url, part), entry)
                os.replace(part, dest)
            except TransferError as exc:
                if os.path.exists(part):
                    os.unlink(part)
                entry.update(kind=exc.kind, error=exc.message)
                return entries, TransferError(exc.kind, exc.message, name, url)
            entry.update(status="ok", size=os.path.getsize(dest), checksum={"adler32": result["adler32"]})
        return entries, None

    def stage_out(self, items):
        # type: (List[Tuple[str, str]]) -> Tuple[List[Dict[str, Any]], Optional[TransferError]]
        """Upload each output matching a glob to its URL (a directory when it ends with /), then
        compare checksums; every file is tried, the first failure is returned."""
        import glob

        entries = []  # type: List[Dict[str, Any]]
        first = None  # type: Optional[TransferError]
        for pattern, url in items:
            matches = sorted(m for m in glob.glob(os.path.join(self.workdir, pattern)) if os.path.isfile(m))
            if not matches or (len(matches) > 1 and not url.endswith("/")):
                why = "matched no file" if not matches else "matched {} files".format(len(matches))
                problem = "output {} {} (to {}: a single file, or a URL ending in /)".format(
                    pattern, why, url
                )
                entries.append(
                    {"path": pattern, "url": url, "status": "failed", "kind": "missing", "error": problem}
                )
                first = first or TransferError("missing", problem, pattern, url)
                continue
            for match in matches:
                relative = os.path.relpath(match, self.workdir)
                target = url + os.path.basename(match) if url.endswith("/") else url
                failure = self._upload(match, relative, target, entries)
                first = first or failure
        return entries, first

    def _upload(self, path, relative, url, entries):
        # type: (str, str, str, List[Dict[str, Any]]) -> Optional[TransferError]
        entry = {"path": relative, "url": url, "mover": mover_for(url, self.tools), "status": "failed",
                 "size": os.path.getsize(path), "verified": False}  # type: Dict[str, Any]  # fmt: skip
        entries.append(entry)

        def move():
            # type: () -> Dict[str, Any]
            result = self._put(path, url)
            stored = result.pop("remote_size", None)
            if stored is not None and stored != entry["size"]:
                raise TransferError(
                    "mismatch",
                    "the storage holds {} of the {} bytes sent (full disk or quota? "
                    "the tool reported success)".format(stored, entry["size"]),
                )
            if result["remote"] != result["local"]:
                raise TransferError(
                    "mismatch",
                    "{} checksum mismatch: local {}, storage reports {}".format(
                        result["algorithm"], result["local"], result["remote"]
                    ),
                )
            return result

        try:
            checksum = self._with_retries(move, entry)
        except TransferError as exc:
            entry.update(kind=exc.kind, error=exc.message)
            return TransferError(exc.kind, exc.message, relative, url)
        entry.update(status="ok", verified=True, checksum=checksum)
        return None


HINTS = {
    "missing": "check the URL (or the output's name): nothing is there",
    "unreachable": "the storage did not answer after the retries: check host and port, or retry later",
    "refused": "the storage refused: check the node's credentials (X.509 proxy, bearer token, S3 keys) "
    "and the path's permissions",
    "no-space": "the storage is full or over quota: free space or pick another destination",
    "mismatch": "the storage holds other bytes than the job wrote: retry, or report it to the storage's site",
    "no-tool": "install xrootd-client (xrdcp, xrdfs), gfal2-util or curl on the node",
    "failed": "see the message; retry later or report it to the storage's site",
}


def split_pair(text, option):
    # type: (str, str) -> Tuple[str, str]
    """``NAME=URL`` / ``GLOB=URL`` -> (left, url); ValueError naming the option when malformed."""
    left, eq, url = text.partition("=")
    if not eq or not left or "://" not in url:
        raise ValueError(
            "bad {} {!r}: use {}".format(option, text, "NAME=URL" if option == "--stage-in" else "GLOB=URL")
        )
    if option == "--stage-in" and ("/" in left or left in (".", "..")):
        raise ValueError("bad {} {!r}: NAME is a plain file name in the job's directory".format(option, text))
    if option == "--stage-out" and (left.startswith("/") or ".." in left.split("/")):
        raise ValueError("bad {} {!r}: GLOB is relative, inside the job's directory".format(option, text))
    return left, url
