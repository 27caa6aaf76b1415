#!/bin/sh
# Entry point of every shop image (see the root Dockerfile). SHOP_SERVICE names the component.
#
#   serve        run the service with uvicorn on its port (default)
#   healthcheck [live|ready]  exit 0 when /health/<live|ready> answers 200 (default live)
#   anything else is run as a command, e.g. `shop db upgrade --all` in the migrations image
set -eu

service=${SHOP_SERVICE:?SHOP_SERVICE is not set}

# The platform's port table (shopkit.settings.SERVICE_PORTS); PORT overrides it.
case $service in
  gateway) default_port=8000 module=gateway.app:app ;;
  auth) default_port=8001 ;;
  users) default_port=8002 ;;
  catalog) default_port=8003 ;;
  inventory) default_port=8004 ;;
  orders) default_port=8005 ;;
  payments) default_port=8006 ;;
  shipping) default_port=8007 ;;
  notifications) default_port=8008 ;;
  cli) default_port= ;;
  *) echo "error: unknown SHOP_SERVICE '$service'" >&2; exit 64 ;;
esac
port=${PORT:-$default_port}
module=${module:-${service}_service.app:app}

command=${1:-serve}
case $command in
  serve)
    [ -n "$port" ] || { echo "error: '$service' is not a server; give it a command" >&2; exit 64; }
    # --no-proxy-headers: the apps decide themselves whose X-Forwarded-For to believe
    # (settings trusted_proxies); uvicorn must not rewrite the peer address before they see it.
    exec uvicorn "$module" --host "${SHOP_HOST:-0.0.0.0}" --port "$port" --no-access-log \
      --no-proxy-headers --timeout-graceful-shutdown "${SHOP_GRACEFUL_SHUTDOWN_SECONDS:-20}"
    ;;
  healthcheck)
    [ -n "$port" ] || exit 0
    probe=${2:-live}
    case $probe in live|ready) ;; *) echo "error: healthcheck takes live or ready" >&2; exit 64 ;; esac
    exec python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$port/health/$probe', timeout=3).status == 200 else 1)"
    ;;
  *)
    exec "$@"
    ;;
esac
