"""Local stand-in for the AWS side of the EC2 Serial Console, for tests.

Runs in one process (so both services see the same EC2 state):

* moto in server mode as the EC2 Query API, plus what moto 5 lacks:
  GetSerialConsoleAccessStatus / EnableSerialConsoleAccess /
  DisableSerialConsoleAccess (per account and Region, off by default as on AWS);
* an EC2 Instance Connect endpoint (awsJson1_1) answering
  SendSerialConsoleSSHPublicKey the way AWS documents it: the SigV4 signature
  is verified with botocore, the instance is looked up in moto (not found,
  not running, not Nitro), serial console access is checked, one session per
  instance is enforced through the lock the sshd's console command holds, and
  errors can be queued on demand. Every accepted key is appended to
  KEYS_FILE as `epoch instance-id key-type key-base64`, which the real
  OpenSSH sshd's AuthorizedKeysCommand reads.

* a front for the EC2 Query API that the tool talks to: it records each
  request's action and User-Agent, answers queued errors (throttling, 5xx)
  the way EC2 does, and forwards the rest to moto.

Usage: python standin.py STATE_DIR ACCESS_KEY SECRET_KEY
Prints one JSON line {"ec2": port, "ec2front": port, "eic": port} when all
listen, then serves until standard input closes. Control (plain HTTP on the
EIC port):
  POST /_control {"queue": [codes...], "ttl": secs, "ec2_queue": [codes...],
                  "on_reboot": {"i-...": [argv...]}}
  (on_reboot: after moto accepts RebootInstances for that instance, the
  stand-in runs argv, e.g. `ec2-serial-expect lab reset --name N`, so the
  instance's console really restarts, as AWS's does)
  GET  /_pushes  -> [{"time", "instance_id", "key", "signature_ok", "error"}]
  GET  /_ec2_requests -> [{"time", "action", "user_agent", "error"}]
"""

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.instance_types import INSTANCE_TYPES
from moto.ec2.responses import EC2Response
from moto.server import ThreadedMotoServer

STATE_DIR, ACCESS_KEY, SECRET_KEY = sys.argv[1], sys.argv[2], sys.argv[3]
KEYS_FILE = os.path.join(STATE_DIR, "pushed_keys")
LOCK_DIR = os.path.join(STATE_DIR, "locks")
LOCK = threading.Lock()
STATE = {"queue": [], "ttl": 60, "pushes": [], "access": {}, "ec2_queue": [], "ec2_requests": [], "on_reboot": {}}
MOTO_URL = None  # set in main()

# --- moto additions: serial console access per account and Region ----------


def _access_enabled(region):
    return STATE["access"].get(region, False)


def _access_xml(action, value):
    return (
        f'<{action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        f"<requestId>standin</requestId><serialConsoleAccessEnabled>{value}</serialConsoleAccessEnabled>"
        + ("<managedBy>account</managedBy>" if action == "GetSerialConsoleAccessStatus" else "")
        + f"</{action}Response>"
    )


def get_serial_console_access_status(self):
    return _access_xml("GetSerialConsoleAccessStatus", str(_access_enabled(self.region)).lower())


def enable_serial_console_access(self):
    # DryRun=true: moto answers DryRunOperation (412), as EC2 does.
    self.error_on_dryrun()
    STATE["access"][self.region] = True
    return _access_xml("EnableSerialConsoleAccess", "true")


def disable_serial_console_access(self):
    STATE["access"][self.region] = False
    return _access_xml("DisableSerialConsoleAccess", "false")


EC2Response.get_serial_console_access_status = get_serial_console_access_status
EC2Response.enable_serial_console_access = enable_serial_console_access
EC2Response.disable_serial_console_access = disable_serial_console_access

# --- EC2 Instance Connect ----------------------------------------------------


def signature_ok(handler, body):
    """Recomputes the SigV4 signature of the request with botocore."""
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False, "no SigV4 Authorization header"
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    scope = parts["Credential"].split("/")
    if scope[0] != ACCESS_KEY or scope[3] != "ec2-instance-connect":
        return False, f"unexpected credential scope {parts['Credential']}"
    signed = parts["SignedHeaders"].split(";")
    headers = {h: handler.headers.get(h, "") for h in signed}
    url = f"http://{handler.headers.get('host')}{handler.path}"
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    request.context["timestamp"] = handler.headers.get("x-amz-date")
    token = handler.headers.get("x-amz-security-token")
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token), "ec2-instance-connect", scope[2])
    signer.headers_to_sign = lambda req: _only(req, signed)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return expected == parts["Signature"], "signature mismatch"


def _only(request, names):
    from botocore.compat import HTTPHeaders

    out = HTTPHeaders()
    for name in names:
        out[name] = request.headers[name]
    return out


def session_open(instance_id):
    """True while the console command of a session holds the instance's lock."""
    path = os.path.join(LOCK_DIR, instance_id + ".lock")
    if not os.path.exists(path):
        return False
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def push_error(region, instance_id):
    """The error AWS would answer for this push, or None."""
    if STATE["queue"]:
        return STATE["queue"].pop(0)
    if not _access_enabled(region):
        return "SerialConsoleAccessDisabledException"
    try:
        instance = ec2_backends[DEFAULT_ACCOUNT_ID][region].get_instance(instance_id)
    except Exception:
        return "EC2InstanceNotFoundException"
    if instance.state != "running":
        return "EC2InstanceStateInvalidException"
    if INSTANCE_TYPES.get(instance.instance_type, {}).get("Hypervisor") != "nitro":
        return "EC2InstanceTypeInvalidException"
    if session_open(instance_id):
        return "SerialConsoleSessionLimitExceededException"
    return None


class InstanceConnect(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, status, obj, extra=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_pushes":
            with LOCK:
                return self._reply(200, STATE["pushes"])
        if self.path == "/_ec2_requests":
            with LOCK:
                return self._reply(200, STATE["ec2_requests"])
        self._reply(404, {})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/_control":
            with LOCK:
                STATE.update(json.loads(body))
            return self._reply(200, {})
        target = self.headers.get("X-Amz-Target", "")
        if target != "AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey":
            return self._reply(400, {"__type": "InvalidArgsException", "Message": f"unknown target {target}"})
        ok, why = signature_ok(self, body)
        request = json.loads(body)
        instance_id = request.get("InstanceId", "")
        key = request.get("SSHPublicKey", "")
        region = self.headers["Authorization"].split("Credential=")[1].split("/")[2] if ok else "?"
        with LOCK:
            error = None if ok else "AuthException"
            error = error or push_error(region, instance_id)
            if error is None and (request.get("SerialPort") != 0 or not 80 <= len(key) <= 4096):
                error = "InvalidArgsException"
            STATE["pushes"].append(
                {"time": time.time(), "instance_id": instance_id, "key": key, "signature_ok": ok, "error": error}
            )
            if error is None:
                fields = key.split()
                with open(KEYS_FILE, "a") as f:
                    f.write(f"{int(time.time())} {STATE['ttl']} {instance_id} {fields[0]} {fields[1]}\n")
        if error:
            status = 429 if error == "ThrottlingException" else 400
            return self._reply(status, {"__type": error, "Message": f"stand-in: {error}" if ok else why})
        self._reply(200, {"RequestId": "standin", "Success": True})


class Ec2Front(BaseHTTPRequestHandler):
    """The EC2 Query endpoint as the tool sees it: queued errors, else moto."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        form = urllib.parse.parse_qs(body.decode())
        with LOCK:
            error = STATE["ec2_queue"].pop(0) if STATE["ec2_queue"] else None
            STATE["ec2_requests"].append({
                "time": time.time(),
                "action": form.get("Action", ["?"])[0],
                "user_agent": self.headers.get("User-Agent", ""),
                "error": error,
            })
        if error:
            # EC2 answers throttling with 503 RequestLimitExceeded.
            status = 503 if error in ("RequestLimitExceeded", "Unavailable", "ServiceUnavailable") else 400
            xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{error}</Code>"
                   f"<Message>stand-in: {error}</Message></Error></Errors><RequestID>standin</RequestID></Response>")
            return self._send(status, xml.encode(), "text/xml")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        request = urllib.request.Request(MOTO_URL + self.path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request) as answer:
                status, data, kind = answer.status, answer.read(), answer.headers.get("Content-Type", "text/xml")
        except urllib.error.HTTPError as e:
            status, data, kind = e.code, e.read(), e.headers.get("Content-Type", "text/xml")
        if status == 200 and form.get("Action", [""])[0] == "RebootInstances":
            with LOCK:
                hook = STATE["on_reboot"].get(form.get("InstanceId.1", [""])[0])
            if hook:
                done = subprocess.run(hook, stdin=subprocess.DEVNULL, capture_output=True, text=True)
                if done.returncode != 0:
                    xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>InternalError</Code>"
                           f"<Message>stand-in reboot hook failed: {done.stderr.strip()}</Message></Error></Errors>"
                           "<RequestID>standin</RequestID></Response>")
                    return self._send(500, xml.encode(), "text/xml")
        self._send(status, data, kind)


def main():
    global MOTO_URL
    os.makedirs(LOCK_DIR, exist_ok=True)
    open(KEYS_FILE, "a").close()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    MOTO_URL = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    eic = ThreadingHTTPServer(("127.0.0.1", 0), InstanceConnect)
    threading.Thread(target=eic.serve_forever, daemon=True).start()
    front = ThreadingHTTPServer(("127.0.0.1", 0), Ec2Front)
    threading.Thread(target=front.serve_forever, daemon=True).start()
    ports = {"ec2": moto.get_host_and_port()[1], "ec2front": front.server_address[1], "eic": eic.server_address[1]}
    print(json.dumps(ports), flush=True)
    sys.stdin.read()
    eic.shutdown()
    front.shutdown()
    moto.stop()


if __name__ == "__main__":
    main()
