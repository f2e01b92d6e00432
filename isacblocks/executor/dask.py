"""Tasks on a Dask distributed cluster: an existing one (``tls://host:8786`` with a security
file, or ``tcp://host:8786``) or a `LocalCluster` of worker processes started for the run.

A `LocalCluster` listens on loopback over TLS with temporary credentials made for the run
(`Security.temporary`, in memory only): no other client, not even another process of this
user, can connect to it and run code on its workers.  An existing cluster is reached over TLS
with the credentials named in a security file (`load_security`); a ``tcp://`` scheduler
beyond loopback is used with a warning: anyone who reaches it can run code on its workers.

Every worker must have isacblocks and its dependencies installed (``pip install
'isacblocks[cluster]'``); the executor checks the version on each worker when it connects.
Dask's scheduler runs again the tasks of a worker that dies (up to its
``distributed.scheduler.allowed-failures``, default 3); results already finished are kept.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
import tomllib
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..validation import is_integer, is_loopback_host
from .base import Executor, ExecutorError, run_task
from .journal import warn_if_open_to_others
from .local import task_failed

#: The keys of a ``--dask-security`` file: the CA that signed the cluster's certificates, and
#: this client's certificate and key (PEM files; the key may be appended to the certificate).
SECURITY_KEYS = {"tls_ca_file": True, "tls_client_cert": True, "tls_client_key": False}  # name: required
SCHEMES = ("tcp", "tls")


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ExecutorError("the Dask executor needs the 'distributed' package: "
                            "pip install 'isacblocks[cluster]' (or pip install 'distributed')") from None
    return distributed


def _worker_version() -> str:
    import isacblocks

    return isacblocks.__version__


def scheduler_address(address: str) -> str:
    """`address` checked: ``tcp://HOST:PORT`` or ``tls://HOST:PORT`` (no scheme means tcp://)."""
    text = str(address).strip()
    if "://" not in text:
        text = f"tcp://{text}"
    parts = urlsplit(text)
    try:
        host, _ = parts.hostname, parts.port  # a port that is not a number in 0..65535 raises
    except ValueError:
        host = None
    if parts.scheme not in SCHEMES or not host or parts.path not in ("", "/"):
        raise ConfigError(f"--scheduler {address!r}: expected tls://HOST:PORT (with --dask-security FILE) or "
                          "tcp://HOST:PORT")
    return text


def is_loopback(address: str) -> bool:
    """Whether a scheduler address stays on this machine."""
    return is_loopback_host(urlsplit(address).hostname or "")


def load_security(path, warn: bool = True):
    """The `distributed.security.Security` a ``--dask-security`` TOML file describes::

        tls_ca_file = "ca.pem"            # the CA that signed the scheduler's and workers' certificates
        tls_client_cert = "client.pem"    # this client's certificate
        tls_client_key = "client-key.pem" # its key (leave out when the certificate file holds it)

    Relative paths are read from the file's folder.  Every mistake (no such file, not TOML,
    an unknown or missing key, a credential file that is missing or not a usable PEM
    certificate / key) raises `ConfigError` before any connection; with `warn`, a key file
    open to other users is said in one line."""
    where = f"--dask-security {str(path)!r}"
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc}); expected {_security_example()}") from None
    for key, value in values.items():
        if key not in SECURITY_KEYS:
            near = difflib.get_close_matches(key, SECURITY_KEYS, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"expected {', '.join(SECURITY_KEYS)}"
            raise ConfigError(f"{where}: unknown key {key!r}; {hint}")
        if not isinstance(value, str) or not value or "\n" in value:
            raise ConfigError(f"{where}: {key} = {value!r}: must be the name of a PEM file (a string)")
    missing = [key for key, required in SECURITY_KEYS.items() if required and key not in values]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}; expected {_security_example()}")
    files = {key: path.parent / value for key, value in values.items()}
    for key, file in files.items():
        if not file.is_file():
            raise ConfigError(f"{where}: {key} = {values[key]!r}: no such file ({file})")
    distributed = _distributed()
    try:
        security = distributed.Security(require_encryption=True, **{k: str(f) for k, f in files.items()})
        security.get_connection_args("client")  # loads the CA, the certificate and the key
    except Exception as exc:  # ssl.SSLError, OSError, ValueError: say which file set it off
        raise ConfigError(f"{where}: cannot use the credentials {values} ({type(exc).__name__}: {exc}); "
                          "expected PEM files: the CA certificate, this client's certificate and its key") from None
    if warn:
        warn_if_open_to_others(files.get("tls_client_key", files["tls_client_cert"]), "the Dask client key")
    return security


def _security_example() -> str:
    return ('tls_ca_file = "ca.pem", tls_client_cert = "client.pem" and optionally tls_client_key = "key.pem" '
            "(PEM files, relative to the file's folder)")


class DaskExecutor(Executor):
    """Dask distributed: connect to the scheduler at `address` (``tls://`` with `security`, a
    `Security` or a security file for `load_security`; ``tcp://``), or start a loopback
    `LocalCluster` of `local_workers` single-threaded workers (processes unless
    ``processes=False``) that only this executor's client can reach (TLS, temporary credentials)."""

    name = "dask"

    def __init__(self, address: str | None = None, local_workers: int | None = None, threads_per_task: int = 1,
                 connect_timeout_s: float = 30.0, security=None, processes: bool = True):
        if (address is None) == (local_workers is None):
            raise ConfigError("DaskExecutor: give exactly one of address='tls://host:8786' or local_workers=N")
        if local_workers is not None and (not is_integer(local_workers) or local_workers < 1):
            raise ConfigError(f"DaskExecutor: local_workers = {local_workers!r}: must be a positive integer")
        if local_workers is not None and security is not None:
            raise ConfigError("--dask-security: only for --scheduler tls://HOST:PORT; --dask-local makes its own "
                              "temporary credentials")
        if address is not None:
            address = scheduler_address(address)
            if address.startswith("tls://") and security is None:
                raise ConfigError(f"--scheduler {address!r}: a tls:// scheduler needs --dask-security FILE (the CA "
                                  "certificate, this client's certificate and key)")
            if address.startswith("tcp://") and security is not None:
                raise ConfigError(f"--dask-security: needs a tls:// scheduler; got --scheduler {address!r}")
        distributed = _distributed()
        if isinstance(security, (str, os.PathLike)):
            security = load_security(security)
        self.threads = threads_per_task
        self.cluster = None
        if local_workers is not None:
            security = _temporary_security(distributed)
            self.cluster = distributed.LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=processes,
                                                    host="127.0.0.1", protocol="tls://", security=security,
                                                    dashboard_address=None, silence_logs=logging.CRITICAL)
            address = self.cluster.scheduler_address
        elif address.startswith("tcp://") and not is_loopback(address):
            print(f"dask: warning: the connection to {address} is neither authenticated nor encrypted: anyone who "
                  "reaches that port can run code on the workers (use tls:// with --dask-security FILE)",
                  file=sys.stderr)
        self.address = address
        try:
            self.client = distributed.Client(address, timeout=connect_timeout_s, set_as_default=False,
                                             security=security)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ExecutorError(f"dask: cannot reach the scheduler at {address!r} within {connect_timeout_s:g} s "
                                f"({exc})") from None
        self._check_workers()

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info()["workers"])

    def describe(self) -> str:
        kind = "LocalCluster (TLS, temporary credentials)" if self.cluster is not None else "cluster"
        return f"Dask {kind} at {self.address}, {self.workers} worker(s)"

    def _check_workers(self) -> None:
        from isacblocks import __version__

        try:
            versions = self.client.run(_worker_version)
        except Exception as exc:  # a worker without isacblocks raises ImportError there
            raise ExecutorError(f"dask: a worker at {self.address} cannot import isacblocks ({exc}); install it "
                                "on every worker") from None
        wrong = {w: v for w, v in versions.items() if v != __version__}
        if wrong:
            raise ExecutorError(f"dask: workers run other isacblocks versions than this process ({__version__}): "
                                f"{wrong}")

    def _run(self, tasks, results, progress):
        distributed = _distributed()
        run_id = uuid.uuid4().hex[:8]
        futures = {self.client.submit(run_task, t.fn, t.kwargs, self.threads, key=f"{t.key} [{run_id}]",
                                      pure=False, retries=0): t for t in tasks}
        try:
            for future in distributed.as_completed(list(futures), loop=self.client.loop):
                task = futures[future]
                if future.status == "error":
                    exc = future.exception()
                    if isinstance(exc, distributed.KilledWorker):
                        raise ExecutorError(f"dask: task {task.key!r} was running on workers that died too "
                                            f"often ({exc})") from None
                    raise task_failed(task.key, exc) from exc
                results[task.key] = future.result()
                future.release()
                progress(len(results), len(tasks), task.key)
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        client, cluster = getattr(self, "client", None), getattr(self, "cluster", None)
        if client is not None:
            client.close()
            self.client = None
        if cluster is not None:
            cluster.close()
            self.cluster = None



def _temporary_security(distributed):
    """TLS credentials made for one LocalCluster, in memory only (needs `cryptography`)."""
    try:
        return distributed.Security.temporary()
    except ImportError:
        raise ExecutorError("--dask-local: the cluster's TLS credentials need the 'cryptography' package: "
                            "pip install 'isacblocks[cluster]' (or pip install cryptography)") from None
