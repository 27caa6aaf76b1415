#!/usr/bin/env bash
# The local stack without Docker: installs and runs PostgreSQL, Redis, Kafka (KRaft), FerretDB,
# Mailpit, localstripe and every shop service on 127.0.0.1.
#
#   stack.sh up [component...]     install what is missing, start what is not running, wait healthy
#   stack.sh down [component...]   stop by recorded PID (never by name pattern)
#   stack.sh status                what runs where
#   stack.sh logs NAME             tail one component's log
#   stack.sh install               install tools only
#   stack.sh install-python        the Python workspace only (uv sync)
#
# Every step is idempotent: a second `up` reports what is already running and starts nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${SHOP_STATE_DIR:-$ROOT/.state}"
TOOLS="${SHOP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shop-tools}"
PIDS="$STATE/pids"
LOGS="$STATE/logs"
VENV="$ROOT/.venv"

KAFKA_VERSION=4.4.0
FERRETDB_VERSION=v1.24.2
MAILPIT_VERSION=v1.33.1

PG_PORT=${SHOP_PG_PORT:-5432}
REDIS_PORT=${SHOP_REDIS_PORT:-6379}
KAFKA_PORT=${SHOP_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${SHOP_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_FAULTS_PORT=${SHOP_KAFKA_FAULTS_PORT:-19092}
KAFKA_FAULTS_PROXY_PORT=${SHOP_KAFKA_FAULTS_PROXY_PORT:-29092}
MONGO_PORT=${SHOP_MONGO_PORT:-27017}
FERRETDB_DEBUG_PORT=${SHOP_FERRETDB_DEBUG_PORT:-8088}
SMTP_PORT=${SHOP_SMTP_PORT:-1025}
MAILPIT_UI_PORT=${SHOP_MAILPIT_UI_PORT:-8025}
STRIPE_PORT=${SHOP_STRIPE_PORT:-8420}
PG_USER=shop
PG_PASSWORD=shop
# Shared local signing secret between localstripe and the payments service (development only).
STRIPE_WEBHOOK_SECRET=${SHOP_STRIPE_WEBHOOK_SECRET:-whsec_local_development_only}

INFRA=(postgres redis kafka ferretdb mailpit localstripe)
# name:port, in start order (gateway last: it aggregates the others' readiness).
SERVICES=(auth:8001 users:8002 catalog:8003 inventory:8004 orders:8005 payments:8006 shipping:8007
  notifications:8008 gateway:8000)
DATABASES=(auth users catalog inventory orders payments shipping notifications ferretdb)

STARTED=0

die() { echo "error: $*" >&2; exit 1; }
say() { echo "  $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pid_of() { [ -f "$PIDS/$1.pid" ] && cat "$PIDS/$1.pid" || true; }
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Fails with one line when a port we need is held by a process we did not start.
require_free_port() {
  local name=$1 port=$2 holder
  if port_open "$port"; then
    holder=$(ss -ltnpH "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\),pid=\([0-9]*\).*/\1 pid \2/p' | head -1)
    die "port $port needed by $name is already taken${holder:+ by $holder}; stop it or set SHOP_${name^^}_PORT"
  fi
}

wait_until() { # description timeout-seconds command...
  local what=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      die "$what did not become healthy within ${timeout}s (see $LOGS)"
    fi
    sleep 0.3
  done
}

launch() { # name command... : start detached, record PID, log to $LOGS/name.log
  local name=$1; shift
  mkdir -p "$PIDS" "$LOGS"
  nohup setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
  STARTED=$((STARTED + 1))
}

stop_pid() { # name [timeout]
  local name=$1 timeout=${2:-20} pid
  pid=$(pid_of "$name")
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then rm -f "$PIDS/$name.pid"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
  rm -f "$PIDS/$name.pid"
  say "$name stopped (pid $pid)"
}

# ---------------------------------------------------------------- prerequisites and installs

apt_install() { # package...
  command -v apt-get >/dev/null || die "apt-get not found: install $* yourself"
  if [ ! -f "$TOOLS/.apt-updated" ]; then as_root apt-get update -qq >/dev/null; mkdir -p "$TOOLS"; touch "$TOOLS/.apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

install_postgres() {
  [ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/postgres" ] && return 0
  say "installing PostgreSQL (Debian package)"
  apt_install postgresql
  # The Debian package may start its own cluster on 5432; ours lives under $STATE instead.
  as_root pg_ctlcluster --help >/dev/null 2>&1 && for c in $(ls /etc/postgresql 2>/dev/null); do
    as_root pg_ctlcluster "$c" main stop 2>/dev/null || true
  done
}

install_redis() {
  command -v redis-server >/dev/null && return 0
  say "installing Redis (Debian package)"
  apt_install redis-server
}

# The JVM: $JAVA_HOME/bin/java when JAVA_HOME is set, otherwise java on PATH.
java_bin() { if [ -n "${JAVA_HOME:-}" ]; then echo "$JAVA_HOME/bin/java"; else echo java; fi; }

require_java() {
  command -v "$(java_bin)" >/dev/null \
    || die "Java 17+ is required to run Kafka: $(java_bin) not found (apt-get install openjdk-17-jre-headless, or set JAVA_HOME)"
  local major
  major=$("$(java_bin)" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [ "${major:-0}" -ge 17 ] || die "Java 17+ is required to run Kafka: found Java ${major:-unknown} at $(java_bin)"
}

install_kafka() {
  require_java
  local dir="$TOOLS/kafka-$KAFKA_VERSION"
  [ -f "$dir/.complete" ] && return 0
  command -v mvn >/dev/null || die "Maven is required to fetch Kafka $KAFKA_VERSION: mvn not found (apt-get install maven)"
  say "fetching Kafka $KAFKA_VERSION jars from Maven Central"
  rm -rf "$dir" && mkdir -p "$dir"
  mvn -q -B -f "$ROOT/infra/local/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir/libs" >"$dir/mvn.log" 2>&1 \
    || die "fetching Kafka jars with Maven failed (see $dir/mvn.log)"
  touch "$dir/.complete"
}

require_go() { command -v go >/dev/null || die "Go is required to build $1: go not found"; }

install_ferretdb() {
  local bin="$TOOLS/ferretdb-$FERRETDB_VERSION/ferretdb"
  [ -x "$bin" ] && return 0
  require_go FerretDB
  say "building FerretDB $FERRETDB_VERSION from the Go module proxy"
  local src
  src=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -n "$src" ] || die "go mod download github.com/FerretDB/FerretDB@$FERRETDB_VERSION failed"
  local work="$TOOLS/ferretdb-$FERRETDB_VERSION/src"
  rm -rf "$work" && mkdir -p "$work" && cp -r "$src/." "$work/" && chmod -R u+w "$work"
  # The module ships without its generated version file; `go install` therefore panics at start.
  echo "$FERRETDB_VERSION" >"$work/build/version/version.txt"
  (cd "$work" && go build -o "$bin" ./cmd/ferretdb) || die "building FerretDB failed"
  rm -rf "$work"
}

install_mailpit() {
  local bin="$TOOLS/mailpit-$MAILPIT_VERSION/mailpit"
  [ -x "$bin" ] && return 0
  require_go Mailpit
  say "building Mailpit $MAILPIT_VERSION from the Go module proxy"
  mkdir -p "$(dirname "$bin")"
  GOBIN="$(dirname "$bin")" go install "github.com/axllent/mailpit@$MAILPIT_VERSION" || die "building Mailpit failed"
}

install_python() {
  if ! command -v uv >/dev/null; then
    say "installing uv (PyPI)"
    python3 -m pip install -q uv || die "pip install uv failed"
  fi
  # Python comes from the machine; uv must not try to download one.
  UV_PYTHON_DOWNLOADS=never uv sync -q --all-packages --frozen || die "uv sync failed"
}

install_all() {
  install_python
  install_postgres
  install_redis
  install_kafka
  install_ferretdb
  install_mailpit
}

# ---------------------------------------------------------------- infrastructure components

pg() { # run a PostgreSQL binary as the postgres OS user when we are root (initdb refuses root)
  local cmd=$1; shift
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$(pg_bin)/$cmd" "$@"; else "$(pg_bin)/$cmd" "$@"; fi
}
pg_ready() { PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc 'select 1' | grep -q 1; }

start_postgres() {
  local data="$STATE/postgres"
  if alive postgres && pg_ready; then say "postgres    already running (pid $(pid_of postgres), port $PG_PORT)"; return; fi
  require_free_port postgres "$PG_PORT"
  install_postgres
  mkdir -p "$STATE"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    local pwfile="$STATE/.pgpass.tmp"
    echo "$PG_PASSWORD" >"$pwfile"
    if [ "$(id -u)" = 0 ]; then chown postgres "$data" "$pwfile"; fi
    chmod 700 "$data"
    pg initdb -D "$data" -U "$PG_USER" --pwfile="$pwfile" --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOGS/postgres-initdb.log" 2>&1 \
      || { rm -f "$pwfile"; die "initdb failed (see $LOGS/postgres-initdb.log)"; }
    rm -f "$pwfile"
    cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = ''
max_connections = 400
shared_buffers = 256MB
max_prepared_transactions = 0
log_min_messages = warning
EOF
  fi
  mkdir -p "$LOGS" && touch "$LOGS/postgres.log"
  [ "$(id -u)" = 0 ] && chown postgres "$LOGS/postgres.log"
  mkdir -p "$PIDS"
  # pg_ctl daemonises postgres itself; postmaster.pid is the recorded PID.
  pg pg_ctl -D "$data" -l "$LOGS/postgres.log" -w -t 60 start >/dev/null || die "PostgreSQL did not start (see $LOGS/postgres.log)"
  head -1 "$data/postmaster.pid" >"$PIDS/postgres.pid"
  STARTED=$((STARTED + 1))
  wait_until postgres 30 pg_ready
  local db
  for db in "${DATABASES[@]}"; do
    PGPASSWORD=$PG_PASSWORD psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
      "select 1 from pg_database where datname='$db'" | grep -q 1 \
      || PGPASSWORD=$PG_PASSWORD psql -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -c "create database $db" >/dev/null
  done
  say "postgres    started (pid $(pid_of postgres), port $PG_PORT, databases: ${DATABASES[*]})"
}

stop_postgres() {
  alive postgres || { rm -f "$PIDS/postgres.pid"; return 0; }
  pg pg_ctl -D "$STATE/postgres" -m fast -w stop >/dev/null 2>&1 || stop_pid postgres
  rm -f "$PIDS/postgres.pid"
  say "postgres stopped"
}

redis_ready() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG; }

start_redis() {
  if alive redis && redis_ready; then say "redis       already running (pid $(pid_of redis), port $REDIS_PORT)"; return; fi
  require_free_port redis "$REDIS_PORT"
  install_redis
  mkdir -p "$STATE/redis"
  launch redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE/redis" \
    --appendonly yes --save "" --daemonize no --protected-mode yes
  wait_until redis 20 redis_ready
  say "redis       started (pid $(pid_of redis), port $REDIS_PORT)"
}

kafka_ready() { port_open "$KAFKA_PORT" && "$VENV/bin/python" -m shopkit.kafka_admin ping --bootstrap "127.0.0.1:$KAFKA_PORT"; }

start_kafka() {
  if alive kafka && port_open "$KAFKA_PORT"; then say "kafka       already running (pid $(pid_of kafka), port $KAFKA_PORT)"; return; fi
  require_free_port kafka "$KAFKA_PORT"
  require_free_port kafka-controller "$KAFKA_CONTROLLER_PORT"
  require_free_port kafka-faults "$KAFKA_FAULTS_PORT"
  install_kafka
  local home="$STATE/kafka" libs="$TOOLS/kafka-$KAFKA_VERSION/libs"
  mkdir -p "$home/data"
  sed -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" -e "s#@DATA_DIR@#$home/data#g" \
    -e "s#@FAULTS_PORT@#$KAFKA_FAULTS_PORT#g" -e "s#@FAULTS_PROXY_PORT@#$KAFKA_FAULTS_PROXY_PORT#g" \
    "$ROOT/infra/local/kafka/server.properties.in" >"$home/server.properties"
  if [ ! -f "$home/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$("$(java_bin)" -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    "$(java_bin)" -cp "$libs/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$home/server.properties" >"$LOGS/kafka-format.log" 2>&1 \
      || die "formatting Kafka storage failed (see $LOGS/kafka-format.log)"
  fi
  launch kafka "$(java_bin)" -Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/infra/local/kafka/log4j2.yaml" -cp "$libs/*" kafka.Kafka "$home/server.properties"
  wait_until kafka 90 kafka_ready
  "$VENV/bin/python" -m shopkit.kafka_admin ensure-topics --bootstrap "127.0.0.1:$KAFKA_PORT" \
    || die "creating Kafka topics failed"
  say "kafka       started (pid $(pid_of kafka), port $KAFKA_PORT, KRaft, data in $home/data)"
}

mongo_ready() { "$VENV/bin/python" -m shopkit.mongo ping "mongodb://127.0.0.1:$MONGO_PORT/"; }

start_ferretdb() {
  if alive ferretdb && port_open "$MONGO_PORT"; then say "ferretdb    already running (pid $(pid_of ferretdb), port $MONGO_PORT)"; return; fi
  require_free_port ferretdb "$MONGO_PORT"
  install_ferretdb
  mkdir -p "$STATE/ferretdb"
  launch ferretdb "$TOOLS/ferretdb-$FERRETDB_VERSION/ferretdb" --handler=postgresql \
    --postgresql-url="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/ferretdb" \
    --listen-addr="127.0.0.1:$MONGO_PORT" --debug-addr="127.0.0.1:$FERRETDB_DEBUG_PORT" \
    --state-dir="$STATE/ferretdb" --telemetry=disable --log-level=warn
  wait_until ferretdb 30 mongo_ready
  say "ferretdb    started (pid $(pid_of ferretdb), port $MONGO_PORT, MongoDB wire on PostgreSQL)"
}

mailpit_ready() { curl -fsS "http://127.0.0.1:$MAILPIT_UI_PORT/api/v1/info"; }

start_mailpit() {
  if alive mailpit && mailpit_ready >/dev/null 2>&1; then say "mailpit     already running (pid $(pid_of mailpit), smtp $SMTP_PORT, ui $MAILPIT_UI_PORT)"; return; fi
  require_free_port mailpit "$SMTP_PORT"
  require_free_port mailpit-ui "$MAILPIT_UI_PORT"
  install_mailpit
  mkdir -p "$STATE/mailpit"
  launch mailpit "$TOOLS/mailpit-$MAILPIT_VERSION/mailpit" --listen "127.0.0.1:$MAILPIT_UI_PORT" \
    --smtp "127.0.0.1:$SMTP_PORT" --database "$STATE/mailpit/mailpit.db" --max 5000 \
    --smtp-auth-accept-any --smtp-auth-allow-insecure
  wait_until mailpit 30 mailpit_ready
  say "mailpit     started (pid $(pid_of mailpit), smtp $SMTP_PORT, ui http://127.0.0.1:$MAILPIT_UI_PORT)"
}

stripe_ready() { curl -fsS -u "sk_test_local:" "http://127.0.0.1:$STRIPE_PORT/v1/customers?limit=1"; }

start_localstripe() {
  if alive localstripe && stripe_ready >/dev/null 2>&1; then say "localstripe already running (pid $(pid_of localstripe), port $STRIPE_PORT)"; return; fi
  require_free_port localstripe "$STRIPE_PORT"
  launch localstripe "$VENV/bin/python" "$ROOT/infra/local/localstripe_server.py" --port "$STRIPE_PORT" \
    --state-file "$STATE/localstripe/store.pickle"
  wait_until localstripe 30 stripe_ready
  # localstripe keeps webhooks in memory: register ours on every start.
  curl -fsS -X POST "http://127.0.0.1:$STRIPE_PORT/_config/webhooks/shop" \
    -d "url=http://127.0.0.1:8000/api/payments/webhooks/stripe" -d "secret=$STRIPE_WEBHOOK_SECRET" >/dev/null \
    || die "registering the Stripe webhook with localstripe failed"
  say "localstripe started (pid $(pid_of localstripe), port $STRIPE_PORT, webhook -> gateway /api/payments/webhooks/stripe)"
}

# ---------------------------------------------------------------- shop services

service_ready() { curl -fsS "http://127.0.0.1:$1/health/ready" >/dev/null; }

start_service() { # name port
  local name=$1 port=$2 module
  if alive "$name" && service_ready "$port" 2>/dev/null; then say "$(printf '%-11s' "$name") already running (pid $(pid_of "$name"), http://127.0.0.1:$port)"; return; fi
  stop_pid "$name" 5 >/dev/null
  require_free_port "$name" "$port"
  if [ "$name" = gateway ]; then module=gateway.app:app; else module=${name}_service.app:app; fi
  # Every local client shares 127.0.0.1 and Stripe's few test cards, so the gateway's per-IP
  # budgets and the payments' IP and card velocity rules would throttle the demo and the load
  # tests: the local stack relaxes exactly those; per-user velocity, amount and country rules
  # stay on, and deployments keep every default. `--no-proxy-headers`: each app decides whose
  # X-Forwarded-For to believe (trusted proxies), so a local client cannot pick its own IP.
  launch "$name" env SHOP_ENVIRONMENT="${SHOP_ENVIRONMENT:-development}" \
    SHOP_STRIPE_WEBHOOK_SECRET="$STRIPE_WEBHOOK_SECRET" \
    GATEWAY_RATE_LIMIT_SCALE="${GATEWAY_RATE_LIMIT_SCALE:-1000}" \
    PAYMENTS_RISK_IP_ATTEMPTS_MEDIUM="${PAYMENTS_RISK_IP_ATTEMPTS_MEDIUM:-1000000}" \
    PAYMENTS_RISK_IP_ATTEMPTS_HIGH="${PAYMENTS_RISK_IP_ATTEMPTS_HIGH:-1000000}" \
    PAYMENTS_RISK_CARD_ATTEMPTS_MEDIUM="${PAYMENTS_RISK_CARD_ATTEMPTS_MEDIUM:-1000000}" \
    PAYMENTS_RISK_CARD_ATTEMPTS_HIGH="${PAYMENTS_RISK_CARD_ATTEMPTS_HIGH:-1000000}" \
    "$VENV/bin/uvicorn" "$module" --host 127.0.0.1 --port "$port" --no-access-log --no-proxy-headers \
    --log-level warning --timeout-graceful-shutdown 10
}

start_services() {
  "$VENV/bin/shop" db upgrade --all >"$LOGS/migrations.log" 2>&1 || die "database migrations failed (see $LOGS/migrations.log)"
  local entry name port
  for entry in "${SERVICES[@]}"; do start_service "${entry%%:*}" "${entry##*:}"; done
  for entry in "${SERVICES[@]}"; do
    name=${entry%%:*}; port=${entry##*:}
    wait_until "$name" 60 service_ready "$port"
  done
  say "services    ready: $(for e in "${SERVICES[@]}"; do printf '%s ' "${e%%:*}"; done)"
}

stop_services() {
  local i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do stop_pid "${SERVICES[i]%%:*}" 20; done
}

# ---------------------------------------------------------------- commands

cmd_up() {
  local t0=$SECONDS targets=("$@")
  mkdir -p "$STATE" "$PIDS" "$LOGS"
  [ ${#targets[@]} -gt 0 ] || targets=(infra services)
  echo "shop stack: starting (state in $STATE)"
  install_python
  local t
  for t in "${targets[@]}"; do
    case $t in
      infra) start_postgres; start_redis; start_kafka; start_ferretdb; start_mailpit; start_localstripe ;;
      services) start_services ;;
      postgres|redis|kafka|ferretdb|mailpit|localstripe) "start_$t" ;;
      *) local port; port=$(service_port "$t") || die "unknown component: $t"; start_service "$t" "$port"; wait_until "$t" 60 service_ready "$port" ;;
    esac
  done
  local elapsed=$((SECONDS - t0)) kind=warm
  [ "$STARTED" -gt 0 ] && kind=cold
  echo "shop stack: up in ${elapsed}s ($kind start: $STARTED process(es) started)"
}

service_port() { local e; for e in "${SERVICES[@]}"; do [ "${e%%:*}" = "$1" ] && { echo "${e##*:}"; return 0; }; done; return 1; }

cmd_down() {
  local targets=("$@")
  [ ${#targets[@]} -gt 0 ] || targets=(services localstripe mailpit ferretdb kafka redis postgres)
  local t
  for t in "${targets[@]}"; do
    case $t in
      services) stop_services ;;
      postgres) stop_postgres ;;
      kafka) stop_pid kafka 60 ;;
      redis|ferretdb|mailpit|localstripe) stop_pid "$t" 20 ;;
      *) service_port "$t" >/dev/null || die "unknown component: $t"; stop_pid "$t" 20 ;;
    esac
  done
}

row() { printf '%-12s %-8s %-8s %s\n' "$@"; }

cmd_status() {
  row COMPONENT PID STATE WHERE
  local pid state
  status_row() { # name where
    pid=$(pid_of "$1"); state=stopped
    if alive "$1"; then state=running; fi
    row "$1" "${pid:--}" "$state" "$2"
  }
  status_row postgres "postgresql://$PG_USER:***@127.0.0.1:$PG_PORT (one database per service)"
  status_row redis "redis://127.0.0.1:$REDIS_PORT"
  status_row kafka "127.0.0.1:$KAFKA_PORT (KRaft controller $KAFKA_CONTROLLER_PORT)"
  status_row ferretdb "mongodb://127.0.0.1:$MONGO_PORT"
  status_row mailpit "smtp://127.0.0.1:$SMTP_PORT, http://127.0.0.1:$MAILPIT_UI_PORT"
  status_row localstripe "http://127.0.0.1:$STRIPE_PORT"
  local e
  for e in "${SERVICES[@]}"; do status_row "${e%%:*}" "http://127.0.0.1:${e##*:}/docs"; done
}

cmd_logs() {
  local name=${1:-}
  [ -n "$name" ] || die "usage: stack.sh logs NAME (e.g. make logs SERVICE=orders)"
  [ -f "$LOGS/$name.log" ] || die "no log for '$name' in $LOGS"
  exec tail -n 200 -F "$LOGS/$name.log"
}

main() {
  local cmd=${1:-status}; shift || true
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    logs) cmd_logs "$@" ;;
    install) install_all ;;
    install-python) install_python ;;
    *) die "unknown command '$cmd' (up, down, status, logs, install)" ;;
  esac
}

main "$@"
