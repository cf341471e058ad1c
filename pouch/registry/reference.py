"""Image references as Docker reads them: parse, normalise, validate, display.

``busybox`` -> ``docker.io/library/busybox:latest``; ``127.0.0.1:5000/a/b:tag``;
``name@sha256:<hex>``; ``name:tag@sha256:<hex>`` (the digest wins when pulling).
Grammar from distribution/reference (regexp.go, normalize.go).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"^{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$")
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_SHA256_HEX_RE = re.compile(r"^[a-f0-9]{64}$")


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is a well-formed ``algo:hex`` digest, else raise InvalidReference."""
    if not _DIGEST_RE.match(digest or ""):
        raise InvalidReference(f"invalid digest {digest!r}")
    algo, _, hexpart = digest.partition(":")
    if algo == "sha256" and not _SHA256_HEX_RE.match(hexpart):
        raise InvalidReference(f"invalid sha256 digest {digest!r}: want 64 lowercase hex digits")
    if algo not in ("sha256", "sha384", "sha512"):
        raise InvalidReference(f"unsupported digest algorithm {algo!r}")
    return digest


@dataclass(frozen=True)
class Reference:
    """A normalised reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Full repository name with domain: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def object(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest if any, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def familiar_name(self) -> str:
        """Repository name as Docker shows it: ``busybox``, ``user/app``, ``127.0.0.1:5000/a``."""
        if self.domain == _defaults["domain"]:
            prefix = _defaults["namespace"] + "/"
            if self.path.startswith(prefix) and self.path.count("/") == prefix.count("/"):
                return self.path[len(prefix):]
            return self.path
        return self.name

    def familiar(self) -> str:
        """Whole reference in display form: ``busybox:latest``."""
        out = self.familiar_name()
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str) -> "Reference":
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid tag {tag!r}")
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> "Reference":
        return Reference(self.domain, self.path, self.tag, validate_digest(digest))


# pouchd's --default-registry and --default-registry-namespace (set once at start-up):
# where a name without a registry goes, and the namespace of a one-component name there
_defaults = {"domain": DEFAULT_DOMAIN, "namespace": OFFICIAL_PREFIX.rstrip("/")}


def validate_defaults(domain: str, namespace: str = "") -> None:
    """InvalidReference unless ``domain`` is a registry host and ``namespace`` a path."""
    if not _DOMAIN_RE.match(domain or ""):
        raise InvalidReference(f"invalid default registry {domain!r}: want host[:port]")
    for comp in (namespace or "library").split("/"):
        if not _PATH_COMPONENT_RE.match(comp):
            raise InvalidReference(f"invalid default registry namespace {namespace!r}")


def set_defaults(domain: str = "", namespace: str = "") -> None:
    """Make ``name`` mean ``domain/namespace/name`` (pouchd's --default-registry[-namespace])."""
    validate_defaults(domain or DEFAULT_DOMAIN, namespace)
    _defaults["domain"] = LEGACY_DOMAIN_MAP.get(domain, domain) or DEFAULT_DOMAIN
    _defaults["namespace"] = namespace or "library"


LEGACY_DOMAIN_MAP = {LEGACY_DOMAIN: DEFAULT_DOMAIN, "registry.hub.docker.com": DEFAULT_DOMAIN,
                     "registry-1.docker.io": DEFAULT_DOMAIN}


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        domain, path = _defaults["domain"], name
        if "/" not in path:
            path = f"{_defaults['namespace']}/{path}"
    else:
        domain, path = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def parse_reference(text: str, default_tag: bool = True) -> Reference:
    """Parse and normalise an image reference, Docker style.

    Args:
        text: what the user typed (``busybox``, ``host:5000/a/b:v1``, ``a@sha256:...``).
        default_tag: add ``:latest`` when neither tag nor digest is given.
    Raises:
        InvalidReference: the text is not a valid reference.
    """
    if not text or text != text.strip():
        raise InvalidReference(f"invalid reference format: {text!r}")
    if _SHA256_HEX_RE.match(text):
        raise InvalidReference(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    remainder, _, digest = text.partition("@")
    digest = validate_digest(digest) if digest else None
    tag = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid tag {tag!r} in reference {text!r}")
    domain, path = _split_domain(remainder)
    if not _DOMAIN_RE.match(domain):
        raise InvalidReference(f"invalid registry host {domain!r} in reference {text!r}")
    components = path.split("/")
    for comp in components:
        if not _PATH_COMPONENT_RE.match(comp):
            if comp.lower() != comp and _PATH_COMPONENT_RE.match(comp.lower()):
                raise InvalidReference(f"invalid reference format: repository name must be lowercase: {text!r}")
            raise InvalidReference(f"invalid reference format: {text!r}")
    if len(f"{domain}/{path}") > NAME_MAX:
        raise InvalidReference(f"repository name must not be more than {NAME_MAX} characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def registry_key(domain: str) -> str:
    """Key under which credentials for a registry are stored (Docker's for docker.io)."""
    if domain in (DEFAULT_DOMAIN, LEGACY_DOMAIN, "registry-1.docker.io", "https://index.docker.io/v1/"):
        return "https://index.docker.io/v1/"
    for prefix in ("https://", "http://"):
        if domain.startswith(prefix):
            domain = domain[len(prefix):]
    return domain.rstrip("/")
