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

Usage: python standin.py STATE_DIR ACCESS_KEY SECRET_KEY
Prints one JSON line {"ec2": port, "eic": port} when both listen, then serves
until standard input closes. Control (plain HTTP on the EIC port):
  POST /_control {"queue": [codes...], "ttl": secs}
  GET  /_pushes  -> [{"time", "instance_id", "key", "signature_ok", "error"}]
"""

import fcntl
import json
import os
import sys
import threading
import time
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
STATE = {"queue": [], "ttl": 60, "pushes": [], "access": {}}

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


def main():
    os.makedirs(LOCK_DIR, exist_ok=True)
    open(KEYS_FILE, "a").close()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    eic = ThreadingHTTPServer(("127.0.0.1", 0), InstanceConnect)
    threading.Thread(target=eic.serve_forever, daemon=True).start()
    print(json.dumps({"ec2": moto.get_host_and_port()[1], "eic": eic.server_address[1]}), flush=True)
    sys.stdin.read()
    eic.shutdown()
    moto.stop()


if __name__ == "__main__":
    main()
