"""CURVE keys for the ZeroMQ blocks: an authenticated, encrypted link (ZeroMQ's CurveZMQ).

A block given ``curve=CurveKeys(DIR)`` speaks CURVE; GNU Radio's gr-zeromq has no CURVE, so
such a link has isacblocks at both ends.  Roles: **the binding side is the CURVE server**,
the connecting side the client (``isac tx`` binds, ``isac rx`` connects).  `create_keys`
(``isac keys DIR``) writes two keypairs in pyzmq's certificate format, owner-only (files
0600 in a folder 0700):

=====================  ===========================================  ==================
file                   holds                                        read by
=====================  ===========================================  ==================
``server.key_secret``  the server's keypair                         the binding side
``client.key``         the client's public key (the one admitted)   the binding side
``client.key_secret``  the client's keypair                         the connecting side
``server.key``         the server's public key                      the connecting side
=====================  ===========================================  ==================

So a machine that only connects needs only ``client.key_secret`` and ``server.key``.  The
server proves it holds the server's secret key (a client refuses any other server), and a
ZAP handler (pyzmq's `ThreadAuthenticator`, one thread per context) admits only the client
public key of ``client.key``: a peer without the keys completes no handshake, so it can
neither feed nor read the stream, and the source counts nothing received.  Every session
uses fresh ephemeral keys (perfect forward secrecy), so bytes captured from one session and
replayed into another do not decrypt.  Key files readable by group or others are loaded
with a `ZmqWarning`; missing or malformed ones raise `ConfigError` naming the file.
"""

from __future__ import annotations

import datetime
import itertools
import os
import stat
import threading
import warnings
from pathlib import Path

import zmq
from zmq.auth import load_certificate
from zmq.utils import z85

from ..errors import ConfigError
from ..validation import is_loopback_host
from .warning import ZmqWarning

__all__ = ["KEY_FILES", "CurveKeys", "create_keys", "is_loopback"]

#: The files `create_keys` writes, and which of them each role reads (its keypair, the peer's key).
KEY_FILES = ("server.key", "server.key_secret", "client.key", "client.key_secret")
_ROLE_FILES = {True: ("server.key_secret", "client.key"), False: ("client.key_secret", "server.key")}
_MAX_KEY_FILE_BYTES = 65536


class CurveKeys:
    """The CURVE keys in `directory` (see the module documentation); validated when a block
    loads its role's keys (`load`), which raises `ConfigError` naming the file."""

    def __init__(self, directory) -> None:
        try:
            self.directory = Path(os.fspath(directory))
        except TypeError:
            raise ConfigError(f"curve = {directory!r}: expected a key directory (a str or path) or "
                              "CurveKeys") from None
        self._loaded: dict[bool, tuple[bytes, bytes, bytes]] = {}

    def __repr__(self) -> str:
        return f"CurveKeys({str(self.directory)!r})"

    def load(self, server: bool, owner: str = "curve") -> tuple[bytes, bytes, bytes]:
        """``(public, secret, peer public)`` (Z85) of the server (binding) or client side; read
        once, then kept.  Raises `ConfigError` for a missing folder or file, or a bad key."""
        if server not in self._loaded:
            if not self.directory.is_dir():
                raise ConfigError(f"{owner}: curve key directory {str(self.directory)!r} does not exist (create "
                                  "the keys with `isac keys DIR`)")
            own, peer = _ROLE_FILES[server]
            public, secret = self._read(own, owner, secret=True)
            peer_public, _ = self._read(peer, owner, secret=False)
            self._loaded[server] = (public, secret, peer_public)
        return self._loaded[server]

    def _read(self, name: str, owner: str, secret: bool) -> tuple[bytes, bytes | None]:
        path = self.directory / name
        where = f"{owner}: curve key file {str(path)!r}"
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_KEY_FILE_BYTES:
                raise ConfigError(f"{where}: not a key file (a regular file of at most {_MAX_KEY_FILE_BYTES} "
                                  "bytes)")
            public, secret_key = load_certificate(path)
        except FileNotFoundError:
            raise ConfigError(f"{where} is missing (create the keys with `isac keys DIR`)") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{where}: cannot read it: {exc}") from None
        if info.st_mode & 0o077:
            warnings.warn(f"{where} is readable by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                          f"make it owner-only: chmod 600 {path}", ZmqWarning, stacklevel=4)
        _check_key(public, where, "public-key")
        if secret:
            if secret_key is None:
                raise ConfigError(f"{where}: holds no secret-key (expected the {name} that `isac keys` writes)")
            _check_key(secret_key, where, "secret-key")
            if zmq.curve_public(secret_key) != public:
                raise ConfigError(f"{where}: its public-key does not belong to its secret-key")
        return public, secret_key


def _check_key(key: bytes, where: str, field: str) -> None:
    try:
        ok = len(key) == 40 and len(z85.decode(key)) == 32
    except (ValueError, KeyError, TypeError, IndexError, OverflowError):
        ok = False
    if not ok:
        raise ConfigError(f"{where}: {field} {key[:48]!r} is not a Z85 CURVE key (40 characters)")


def create_keys(directory, force: bool = False) -> list[Path]:
    """Write a server and a client keypair into `directory` (created 0700), files 0600; refuse
    (`ConfigError`) to replace existing key files unless `force`.  Returns the files."""
    folder = Path(os.fspath(directory))
    existing = [name for name in KEY_FILES if (folder / name).exists()]
    if existing and not force:
        raise ConfigError(f"{str(folder)!r} already holds CURVE key files ({', '.join(existing)}); give --force "
                          "to replace them (every side of the link then needs the new files)")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not folder.is_dir():
            raise ConfigError(f"{str(folder)!r} is not a directory")
        if folder.stat().st_mode & 0o077:
            warnings.warn(f"curve key directory {str(folder)!r} is open to group or others; the key files are "
                          f"owner-only, but consider chmod 700 {folder}", ZmqWarning, stacklevel=2)
        now = datetime.datetime.now().isoformat(timespec="seconds")
        paths = []
        for role in ("server", "client"):
            public, secret = zmq.curve_keypair()
            for name, keys in ((f"{role}.key", {"public-key": public}),
                               (f"{role}.key_secret", {"public-key": public, "secret-key": secret})):
                paths.append(_write_key_file(folder / name, role, keys, now))
    except OSError as exc:
        raise ConfigError(f"cannot write CURVE keys into {str(folder)!r}: {exc}") from None
    return paths


def _write_key_file(path: Path, role: str, keys: dict, now: str) -> Path:
    """One certificate in pyzmq's format (`zmq.auth.load_certificate` reads it), owner-only."""
    kind = "Secret" if "secret-key" in keys else "Public"
    text = (f"#   ZeroMQ CURVE {kind} Certificate: the {role} of an isacblocks link, made by isac keys on {now}\n"
            + ("#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n" if kind == "Secret" else "")
            + "\nmetadata\ncurve\n" + "".join(f'    {k} = "{v.decode()}"\n' for k, v in keys.items()))
    if path.is_symlink():
        path.unlink()  # never write through a link someone placed here
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # also when the file existed (--force) with wider permissions
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return path


def is_loopback(address: str) -> bool:
    """Whether a ZeroMQ address stays on this machine: ipc://, inproc://, or tcp:// on a loopback
    address (127.0.0.0/8, ::1, localhost)."""
    scheme, _, rest = address.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    return is_loopback_host(rest.rsplit(";", 1)[-1].rsplit(":", 1)[0])


# ------------------------------------------------------------------------------------ ZAP
_ZAP_LOCK = threading.Lock()
# context -> (its authenticator, the domains using it); the authenticator holds the context until the last
# domain is released, so the entry never outlives it
_ZAP: dict[zmq.Context, tuple[object, set[str]]] = {}
_DOMAINS = itertools.count()


class _Admit:
    """pyzmq's CURVE credentials callback: admit the one client key."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def callback(self, domain: str, key: bytes) -> bool:
        return key == self.key


def configure(sock: zmq.Socket, context: zmq.Context, keys: CurveKeys, server: bool, owner: str) -> str | None:
    """Make `sock` a CURVE server (with a ZAP domain admitting the client key; returned, for
    `release`) or client, before it binds or connects."""
    public, secret, peer = keys.load(server, owner)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    if not server:
        sock.curve_serverkey = peer
        return None
    from zmq.auth.thread import ThreadAuthenticator

    domain = f"isacblocks.{next(_DOMAINS)}"
    with _ZAP_LOCK:
        entry = _ZAP.get(context)
        if entry is None:
            auth = ThreadAuthenticator(context)
            try:
                auth.start()
            except zmq.ZMQError as exc:
                raise ConfigError(f"{owner}: cannot start the CURVE authenticator on this context (does it run a "
                                  f"ZAP handler of its own?): {exc}") from None
            entry = _ZAP[context] = (auth, set())
        auth, domains = entry
        auth.configure_curve_callback(domain, _Admit(peer))
        domains.add(domain)
    sock.curve_server = True
    sock.zap_domain = domain.encode()
    return domain


def release(context: zmq.Context, domain: str) -> None:
    """Forget a server socket's ZAP domain; stop the context's authenticator after its last one."""
    with _ZAP_LOCK:
        entry = _ZAP.get(context)
        if entry is None:
            return
        auth, domains = entry
        domains.discard(domain)
        auth.credentials_providers.pop(domain, None)
        if not domains:
            del _ZAP[context]
            auth.stop()
