"""HTTP(S) front end of the simulated BMCs: one ThreadingHTTPServer per node, each in a thread."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import shutil
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.sim.bmc.config import ConfigInput, NodeConfig, load_config
from agent.sim.bmc.messages import error_body, message, vendor_message
from agent.sim.bmc.node import BmcNode

log = logging.getLogger("agent.sim.bmc")

HOST = "127.0.0.1"
MAX_BODY = 1 << 20
_SESSIONS = "/redfish/v1/SessionService/Sessions"
_PUBLIC_GET = {"/redfish", "/redfish/v1", "/redfish/v1/odata", "/redfish/v1/$metadata"}

_METADATA_NAMESPACES = {
    "ServiceRoot": "v1_20_0",
    "ComputerSystemCollection": None,
    "ComputerSystem": "v1_27_0",
    "Bios": "v1_2_3",
    "Settings": "v1_4_0",
    "MessageRegistryFileCollection": None,
    "MessageRegistryFile": "v1_1_5",
    "AttributeRegistry": "v1_4_0",
    "SessionService": "v1_2_0",
    "SessionCollection": None,
    "Session": "v1_8_0",
    "Message": "v1_3_0",
    "Resource": "v1_23_0",
    "RedfishExtensions": "v1_0_0",
}


def _metadata_xml() -> str:
    refs = []
    for ns, ver in _METADATA_NAMESPACES.items():
        incl = f'    <edmx:Include Namespace="{ns}"/>\n'
        if ver:
            incl += f'    <edmx:Include Namespace="{ns}.{ver}"/>\n'
        refs.append(
            f'  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/{ns}_v1.xml">\n'
            f"{incl}  </edmx:Reference>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">\n'
        + "".join(refs)
        + "  <edmx:DataServices>\n"
        '    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Service">\n'
        '      <EntityContainer Name="Service" Extends="ServiceRoot.v1_20_0.ServiceContainer"/>\n'
        "    </Schema>\n"
        "  </edmx:DataServices>\n"
        "</edmx:Edmx>\n"
    )


def _odata_document() -> dict[str, Any]:
    return {
        "@odata.context": "/redfish/v1/$metadata",
        "value": [
            {"name": "Service", "kind": "Singleton", "url": "/redfish/v1/"},
            {"name": "Systems", "kind": "Singleton", "url": "/redfish/v1/Systems"},
            {"name": "Registries", "kind": "Singleton", "url": "/redfish/v1/Registries"},
            {"name": "SessionService", "kind": "Singleton", "url": "/redfish/v1/SessionService"},
            {"name": "Sessions", "kind": "Singleton", "url": _SESSIONS},
        ],
    }


def generate_self_signed(directory: Path, common_name: str = "127.0.0.1") -> tuple[Path, Path]:
    """Create a self-signed cert/key pair for 127.0.0.1/localhost with the openssl CLI."""
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    directory.mkdir(parents=True, exist_ok=True)
    cert = directory / "bmc-cert.pem"
    key = directory / "bmc-key.pem"
    cmd = [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "30",
        "-subj", f"/CN={common_name}",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    key.chmod(0o600)
    return cert, key


class _Response:
    def __init__(
        self,
        status: int,
        body: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


class _NodeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], bmc: BmcServer) -> None:
        self.bmc = bmc
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def server_bind(self) -> None:
        # skip HTTPServer's getfqdn() reverse lookup
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("%s: connection error from %s", self.bmc.name, client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _NodeHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "SimBMC/1.0"
    timeout = 120  # idle keep-alive connections are dropped after this many seconds
    sys_version = ""

    # quiet: the request log is written by BmcServer.log_request
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ plumbing
    def _dispatch(self, method: str) -> None:
        bmc = self.server.bmc
        node = bmc.node
        started = time.monotonic()
        if node.faults.down:
            self.close_connection = True
            return
        cut = node.faults.take_cut()
        if cut == "drop":
            self.close_connection = True
            return
        self._extra: dict[str, Any] = {}
        self._auth_kind = "none"
        self._user: str | None = None
        raw = self._read_body()
        try:
            resp = self._handle(method, raw)
        except Exception:
            log.exception("%s: error handling %s %s", bmc.name, method, self.path)
            resp = _Response(500, error_body([message("InternalError")]))
        slow = node.faults.slow
        if slow > 0:
            time.sleep(slow)
        # log before answering, so a client that got its answer also finds the log line
        bmc.log_request(
            method=method,
            path=urlsplit(self.path).path,
            status=resp.status,
            duration_ms=round((time.monotonic() - started) * 1000, 2),
            auth=self._auth_kind,
            user=self._user,
            extra=self._extra,
        )
        if cut == "last":  # handled, never answered
            self.close_connection = True
            return
        self._send(method, resp)

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            return None
        if n <= 0:
            return b""
        if n > MAX_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(n)

    def _send(self, method: str, resp: _Response) -> None:
        body: bytes = b""
        ctype = "application/json; charset=utf-8"
        if isinstance(resp.body, str):
            body = resp.body.encode()
            ctype = "application/xml; charset=utf-8"
        elif resp.body is not None:
            body = json.dumps(resp.body, indent=1).encode()
        self.send_response(resp.status)
        self.send_header("OData-Version", "4.0")
        if resp.status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if method != "HEAD" and resp.status != 204 and body:
            self.wfile.write(body)

    @staticmethod
    def _json(raw: bytes | None) -> tuple[Any, bool]:
        if not raw:
            return None, False
        try:
            return json.loads(raw), True
        except (ValueError, UnicodeDecodeError):
            return None, False

    def _authenticate(self) -> bool:
        node = self.server.bmc.node
        token = self.headers.get("X-Auth-Token")
        if token:
            s = node.session_for_token(token)
            if s is not None:
                self._auth_kind, self._user = "session", s.user
                return True
            self._auth_kind = "invalid"
            return False
        header = self.headers.get("Authorization")
        if header and header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                self._auth_kind = "invalid"
                return False
            user, sep, password = decoded.partition(":")
            if sep and node.check_password(user, password):
                self._auth_kind, self._user = "basic", user
                return True
            self._auth_kind = "invalid"
            return False
        return False

    # ------------------------------------------------------------------ routing
    def _handle(self, method: str, raw: bytes | None) -> _Response:
        bmc = self.server.bmc
        node = bmc.node
        p = node.personality
        if node.faults.error500:
            return _Response(500, error_body([message("InternalError")]))
        path = urlsplit(self.path).path
        if len(path) > 1:
            path = path.rstrip("/")
        get = method in ("GET", "HEAD")

        # ---- unauthenticated resources
        if get and path in _PUBLIC_GET:
            self._authenticate()
            if path == "/redfish":
                return _Response(200, {"v1": "/redfish/v1/"})
            if path == "/redfish/v1":
                return _Response(200, node.service_root())
            if path == "/redfish/v1/odata":
                return _Response(200, _odata_document())
            return _Response(200, _metadata_xml())
        if method == "POST" and path == _SESSIONS:
            return self._login(raw)

        if not self._authenticate():
            return _Response(
                401,
                error_body([message("NoValidSession")]),
                {"WWW-Authenticate": 'Basic realm="Redfish"'},
            )
        if node.faults.take_busy():
            # the vendor's "busy, retry later" answer (iDRAC SYS518, iLO during POST)
            return _Response(
                503, error_body([vendor_message(p.busy_message)]), {"Retry-After": "1"}
            )

        routes: dict[str, Any] = {
            "/redfish/v1/Systems": node.systems,
            p.system_path: node.system,
            p.bios_path: node.bios,
            p.settings_path: node.settings,
            "/redfish/v1/Registries": node.registries,
            node.registry_file_path: node.registry_file,
            p.registry_path: node.attribute_registry,
            "/redfish/v1/SessionService": node.session_service,
            _SESSIONS: node.sessions_collection,
        }
        for extra in p.extra_systems:
            routes[f"/redfish/v1/Systems/{extra}"] = lambda x=extra: node.extra_system(x)
        reset_path = f"{p.system_path}/Actions/ComputerSystem.Reset"

        if path == p.settings_path and method == "PATCH":
            body, ok = self._json(raw)
            if not ok:
                return _Response(400, error_body([message("MalformedJSON")]))
            if isinstance(body, dict) and isinstance(body.get("Attributes"), dict):
                self._extra["attributes"] = sorted(str(k) for k in body["Attributes"])
            status, payload = node.patch_settings(body, self.headers.get("If-Match"))
            headers: dict[str, str] = {}
            if status == 200:
                headers["ETag"] = f'"{node.settings_etag()}"'
            if status == 202 and payload:
                jid = str(payload["job"])
                self._extra["job"] = jid
                return _Response(202, None, {"Location": node.job_path(jid)})
            return _Response(status, payload, headers)
        if get and p.jobs and path == "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs":
            return _Response(200, node.job_collection())
        if get and path.startswith("/redfish/v1/Managers/iDRAC.Embedded.1/Jobs/"):
            job = node.job(path.rsplit("/", 1)[-1])
            if job is not None:
                return _Response(200, job)
        if (
            method == "DELETE"
            and p.jobs
            and path.startswith("/redfish/v1/Managers/iDRAC.Embedded.1/Jobs/")
        ):
            status, payload = node.delete_job(path.rsplit("/", 1)[-1])
            return _Response(status, payload)
        if (
            method == "POST"
            and p.clear_pending
            and path == p.settings_path + "/Actions/Oem/DellManager.ClearPending"
        ):
            status, payload = node.clear_pending_values()
            return _Response(status, payload)
        if path == reset_path and method == "POST":
            body, ok = self._json(raw)
            if not ok:
                return _Response(400, error_body([message("MalformedJSON")]))
            if isinstance(body, dict) and "ResetType" in body:
                self._extra["reset_type"] = str(body["ResetType"])
            status, payload = node.reset(body)
            return _Response(status, payload)
        if path.startswith(_SESSIONS + "/"):
            sid = path[len(_SESSIONS) + 1 :]
            if method == "DELETE":
                if node.delete_session(sid):
                    return _Response(204)
                return _Response(404, error_body([message("ResourceMissingAtURI", [path])]))
            if get:
                res = node.session_resource(sid)
                if res is None:
                    return _Response(404, error_body([message("ResourceMissingAtURI", [path])]))
                return _Response(200, res)
        if get and path == p.registry_path and node.faults.bad_registry:
            # a registry body cut short (a BMC that ran out of memory building it)
            return _Response(200, '{"@odata.id": "' + path + '", "RegistryEntries": {"Attri')
        if get and path not in routes and node.captured_doc(path) is not None:
            return _Response(200, node.captured_doc(path))  # any other captured resource
        if path in routes:
            if get:
                headers = {}
                if path == p.bios_path:
                    headers["ETag"] = f'"{node.bios_etag()}"'
                elif path == p.settings_path:
                    headers["ETag"] = f'"{node.settings_etag()}"'
                return _Response(200, routes[path](), headers)
            allow = "GET, HEAD"
            if path == p.settings_path:
                allow = "GET, HEAD, PATCH"
            elif path == _SESSIONS:
                allow = "GET, HEAD, POST"
            return _Response(405, error_body([message("OperationNotAllowed")]), {"Allow": allow})
        if path == reset_path:
            return _Response(405, error_body([message("OperationNotAllowed")]), {"Allow": "POST"})
        return _Response(404, error_body([message("ResourceMissingAtURI", [path])]))

    def _login(self, raw: bytes | None) -> _Response:
        node = self.server.bmc.node
        body, ok = self._json(raw)
        if not ok or not isinstance(body, dict):
            return _Response(400, error_body([message("MalformedJSON")]))
        missing = [k for k in ("UserName", "Password") if not isinstance(body.get(k), str)]
        if missing:
            return _Response(
                400, error_body([message("PropertyMissing", [missing[0]], [f"/{missing[0]}"])])
            )
        user = str(body["UserName"])
        if not node.check_password(user, str(body["Password"])):
            self._auth_kind = "invalid"
            return _Response(
                401, error_body([message("ResourceAtUriUnauthorized", [_SESSIONS, "Unauthorized"])])
            )
        s = node.create_session(user)
        self._auth_kind, self._user = "login", user
        location = f"{_SESSIONS}/{s.id}"
        res = node.session_resource(s.id)
        return _Response(201, res, {"X-Auth-Token": s.token, "Location": location})


class BmcServer:
    """One simulated BMC node: its state plus its listening HTTP(S) server thread."""

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.node = BmcNode(cfg, cfg.read_password())
        self._httpd: _NodeHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = cfg.port
        self._log_lock = threading.Lock()
        self._life_lock = threading.Lock()
        self._tmpdir: Path | None = None
        self._ssl: ssl.SSLContext | None = None
        if cfg.tls:
            cert, key = cfg.tls_cert, cfg.tls_key
            if cert is None or key is None:
                self._tmpdir = Path(tempfile.mkdtemp(prefix=f"simbmc-{cfg.name}-"))
                cert, key = generate_self_signed(self._tmpdir)
            self.cert_path: Path | None = cert
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(str(cert), str(key))
            self._ssl = ctx
        else:
            self.cert_path = None
        if cfg.request_log is not None:
            cfg.request_log.parent.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ properties
    @property
    def port(self) -> int:
        return self._port

    @property
    def scheme(self) -> str:
        return "https" if self._ssl else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{HOST}:{self._port}"

    @property
    def listening(self) -> bool:
        return self._httpd is not None

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        """Bind the port and serve (no-op when already listening)."""
        with self._life_lock:
            if self._httpd is not None:
                return
            httpd = _NodeHTTPServer((HOST, self._port), self)
            if self._ssl is not None:
                httpd.socket = self._ssl.wrap_socket(
                    httpd.socket, server_side=True, do_handshake_on_connect=False
                )
            self._port = httpd.server_address[1]
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"simbmc-{self.name}",
                daemon=True,
            )
            self._httpd, self._thread = httpd, thread
            thread.start()
            log.info(
                "%s: %s BMC listening on %s", self.name, self.node.personality.vendor, self.url
            )

    def close(self) -> None:
        """Close the port (and any open connection); state is kept."""
        with self._life_lock:
            httpd, thread = self._httpd, self._thread
            self._httpd, self._thread = None, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def start(self) -> None:
        if not self.node.faults.down:
            self.open()
        else:
            # reserve the actual port number for later even when starting "down"
            if self._port == 0:
                with socket.socket() as s:
                    s.bind((HOST, 0))
                    self._port = s.getsockname()[1]

    def stop(self) -> None:
        self.node.stop()
        self.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def set_fault(self, name: str, value: Any) -> None:
        self.node.faults.set(name, value)
        if name == "down":
            if value:
                self.close()
            else:
                self.open()
        log.info("%s: fault %s=%r", self.name, name, value)

    # ------------------------------------------------------------------ request log
    def log_request(
        self,
        *,
        method: str,
        path: str,
        status: int,
        duration_ms: float,
        auth: str,
        user: str | None,
        extra: dict[str, Any],
    ) -> None:
        if self.cfg.request_log is None:
            return
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "node": self.name,
            "method": method,
            "path": path,
            "status": status,
            "reason": _reason(status),
            "duration_ms": duration_ms,
            "auth": auth,
            "user": user,
        }
        entry.update(extra)
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self._log_lock, open(self.cfg.request_log, "a", encoding="utf-8") as fh:
            fh.write(line)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class BmcHandle:
    """Handle on a running fleet of simulated BMCs (returned by :func:`start_bmcs`)."""

    def __init__(self, servers: list[BmcServer]) -> None:
        self.servers: dict[str, BmcServer] = {s.name: s for s in servers}
        self._stopped = False

    def __enter__(self) -> BmcHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def names(self) -> list[str]:
        return list(self.servers)

    def server(self, name: str) -> BmcServer:
        return self.servers[name]

    def node(self, name: str) -> BmcNode:
        return self.servers[name].node

    def url(self, name: str) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8443`` (https when TLS is on)."""
        return self.servers[name].url

    def port(self, name: str) -> int:
        return self.servers[name].port

    def cert_path(self, name: str) -> Path | None:
        return self.servers[name].cert_path

    def set_fault(self, name: str, fault: str, value: Any = True) -> None:
        """Set a fault at runtime: down, slow (seconds), error500, reject_patch, fail_at_reset."""
        self.servers[name].set_fault(fault, value)

    def clear_faults(self, name: str) -> None:
        srv = self.servers[name]
        for fault, value in srv.node.faults.as_dict().items():
            if value:
                srv.set_fault(fault, 0.0 if fault == "slow" else False)

    def faults(self, name: str) -> dict[str, Any]:
        return self.servers[name].node.faults.as_dict()

    def state(self, name: str) -> dict[str, Any]:
        """Snapshot: power_state, current, pending, messages, time, boot_count, topology."""
        return self.servers[name].node.snapshot()

    def wait_power(self, name: str, state: str = "On", timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.servers[name].node.power_state == state:
                return True
            time.sleep(0.02)
        return self.servers[name].node.power_state == state

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for srv in self.servers.values():
            try:
                srv.stop()
            except Exception:  # pragma: no cover
                log.exception("%s: stop failed", srv.name)


def start_bmcs(config: ConfigInput) -> BmcHandle:
    """Start one simulated BMC per node of ``config`` and return a handle.

    ``config`` is a dict ``{"nodes": [...]}``, a path to a JSON file with that content, or
    a list of :class:`NodeConfig`. Ports are bound on 127.0.0.1; port 0 picks a free one
    (see ``handle.url(name)``). Call ``handle.stop()`` (or use it as a context manager).
    """
    nodes = load_config(config)
    servers: list[BmcServer] = []
    try:
        for cfg in nodes:
            srv = BmcServer(cfg)
            servers.append(srv)
            srv.start()
    except BaseException:
        for srv in servers:
            srv.stop()
        raise
    return BmcHandle(servers)
