"""Start localstripe, then register the shop's Stripe webhook with it (it keeps webhooks in memory,
so every start registers again, as infra/local/stack.sh does on the local stack).

    run.py              serve on $LOCALSTRIPE_PORT (8420) and register $STRIPE_WEBHOOK_URL
    run.py healthcheck  exit 0 when the API answers
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

PORT = int(os.environ.get("LOCALSTRIPE_PORT", "8420"))
BASE = f"http://127.0.0.1:{PORT}"
WEBHOOK_URL = os.environ.get(
    "STRIPE_WEBHOOK_URL", "http://gateway:8000/api/payments/webhooks/stripe"
)
WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_local_development_only")


def _answers() -> bool:
    request = urllib.request.Request(f"{BASE}/v1/customers?limit=1")  # noqa: S310 - loopback
    token = base64.b64encode(b"sk_test_local:").decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except OSError:
        return False


def _register_webhook() -> None:
    body = urllib.parse.urlencode({"url": WEBHOOK_URL, "secret": WEBHOOK_SECRET}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{BASE}/_config/webhooks/shop", data=body, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        response.read()


def main() -> int:
    if sys.argv[1:] == ["healthcheck"]:
        return 0 if _answers() else 1
    server = subprocess.Popen(  # noqa: S603 - fixed argv
        [
            sys.executable,
            "/srv/localstripe_server.py",
            "--port",
            str(PORT),
            "--host",
            "0.0.0.0",  # noqa: S104 - inside the container, published on loopback by compose
            "--state-file",
            "/data/store.pickle",
        ]
    )
    deadline = time.monotonic() + 60
    while not _answers():
        if server.poll() is not None or time.monotonic() > deadline:
            print("localstripe did not start", file=sys.stderr)
            server.kill()
            return 1
        time.sleep(0.3)
    _register_webhook()
    print(f"localstripe on :{PORT}, webhook -> {WEBHOOK_URL}", flush=True)
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        return server.wait()


if __name__ == "__main__":
    sys.exit(main())
