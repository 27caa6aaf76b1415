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
STATE="${STATE%/}" # the process checks match command lines that name it
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

# ---------------------------------------------------------------- recorded processes
#
# $PIDS/NAME.pid holds the PID alone (other tools read it); $PIDS/NAME.started holds that
# process's start time (field 22 of /proc/PID/stat). A PID is trusted only while the process
# behind it is the one we started: same start time when recorded, and a command line naming
# what we launched (component_marker). After a reboot or a crash the PID may belong to anything
# else; such a PID file is stale: `status` says so, `down` removes it without signalling.

pid_of() { if [ -f "$PIDS/$1.pid" ]; then head -1 "$PIDS/$1.pid"; fi; }

proc_start() { # pid -> start time in clock ticks since boot
  local stat
  stat=$( { cat "/proc/$1/stat"; } 2>/dev/null) || return 1
  stat=${stat##*) } # drop "pid (comm) ": comm may hold spaces and parentheses
  # shellcheck disable=SC2086 # split the numeric fields on purpose
  set -- $stat
  [ -n "${20:-}" ] && echo "${20}"
}

# A fixed part of the command line each component runs with (checked with a plain substring).
component_marker() {
  case $1 in
    postgres) echo "-D $STATE/postgres" ;;
    redis) echo "redis-server" ;; # Redis rewrites its title to "redis-server HOST:PORT"
    kafka) echo "kafka.Kafka $STATE/kafka/server.properties" ;;
    ferretdb) echo "--state-dir=$STATE/ferretdb" ;;
    mailpit) echo "--database $STATE/mailpit/mailpit.db" ;;
    localstripe) echo "--state-file $STATE/localstripe/store.pickle" ;;
    gateway) echo "uvicorn gateway.app:app" ;;
    *) echo "uvicorn ${1}_service.app:app" ;;
  esac
}

is_ours() { # name pid: the process is the one recorded for name
  local name=$1 pid=$2 want got
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  if [ -s "$PIDS/$name.started" ]; then
    want=$(cat "$PIDS/$name.started"); got=$(proc_start "$pid") || return 1
    [ "$want" = "$got" ] || return 1
  fi
  local command
  command=$( { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) || return 1 # it may exit meanwhile
  [[ $command == *"$(component_marker "$name")"* ]]
}

alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && is_ours "$1" "$pid"; }

# A PID file whose process is gone or is someone else's.
stale() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && ! alive "$1"; }

record_pid() { # name pid
  mkdir -p "$PIDS"
  echo "$2" >"$PIDS/$1.pid"
  proc_start "$2" >"$PIDS/$1.started" 2>/dev/null || rm -f "$PIDS/$1.started"
}

forget_pid() { rm -f "$PIDS/$1.pid" "$PIDS/$1.started"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# PIDs listening on a port, when ss can tell (it cannot see other users' processes unless root).
# Prints nothing (and succeeds) without ss: the script runs with `set -e -o pipefail`.
port_holders() {
  command -v ss >/dev/null || return 0
  { ss -ltnpH "sport = :$1" 2>/dev/null || true; } | { grep -o 'pid=[0-9]*' || true; } | cut -d= -f2 | sort -u
}

# The server a Debian package started by itself: a cluster configured in /etc/postgresql, or the
# process in redis-server's own PID file.
distro_server() { # pid package
  [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] || return 1
  case $2 in
    postgresql) [[ $( { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null) == *"config_file=/etc/postgresql/"* ]] ;;
    redis-server) [ "$(head -1 /run/redis/redis-server.pid 2>/dev/null)" = "$1" ] ;;
  esac
}

# Fails with one line when a port we need is held by a process we did not start.
require_free_port() { # name port variable-that-moves-it
  local name=$1 port=$2 variable=${3:-} holder hint
  if port_open "$port"; then
    holder=$(ss -ltnpH "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\),pid=\([0-9]*\).*/\1 pid \2/p' | head -1)
    hint=""
    if distro_server "${holder##* }" postgresql; then
      hint=" (the postgresql package's own cluster: sudo systemctl disable --now postgresql)"
    elif distro_server "${holder##* }" redis-server; then
      hint=" (the redis-server package's own server: sudo systemctl disable --now redis-server)"
    fi
    if [ -n "$variable" ]; then
      die "port $port needed by $name is already taken${holder:+ by $holder}${hint}; stop it or set $variable"
    fi
    die "port $port needed by $name is already taken${holder:+ by $holder}${hint}; stop it (the service ports 8000-8008 are fixed)"
  fi
}

# Every probe below bounds itself (curl --max-time, timeout(1), PGCONNECT_TIMEOUT), so the
# deadline is checked at least every few seconds.
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

# Like wait_until for a process we launched: fails at once when it exits (a port it could not
# bind, a bad flag), so another server answering the probe on that port cannot pass for it.
wait_started() { # name timeout-seconds command...
  local name=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || die "$name exited right after starting (see $LOGS/$name.log: $(tail -n 1 "$LOGS/$name.log" 2>/dev/null))"
    if [ $SECONDS -ge $deadline ]; then
      die "$name did not become healthy within ${timeout}s (see $LOGS)"
    fi
    sleep 0.3
  done
  confirm_ours "$name"
}

# After a start: the recorded process is alive, is ours, and holds the ports we gave it.
confirm_ours() { # name [port...]
  local name=$1 pid port holders; shift
  alive "$name" || die "$name exited right after starting (see $LOGS/$name.log: $(tail -n 1 "$LOGS/$name.log" 2>/dev/null))"
  pid=$(pid_of "$name")
  case $name in
    postgres) set -- "$PG_PORT" ;;
    redis) set -- "$REDIS_PORT" ;;
    kafka) set -- "$KAFKA_PORT" ;;
    ferretdb) set -- "$MONGO_PORT" ;;
    mailpit) set -- "$SMTP_PORT" "$MAILPIT_UI_PORT" ;;
    localstripe) set -- "$STRIPE_PORT" ;;
    *) set -- "$(service_port "$name")" ;;
  esac
  for port in "$@"; do
    holders=$(port_holders "$port")
    [ -n "$holders" ] || continue # ss unavailable or not allowed to tell: readiness has to do
    grep -qx "$pid" <<<"$holders" \
      || die "port $port answers, but from pid ${holders//$'\n'/ }, not the $name we started (pid $pid, see $LOGS/$name.log)"
  done
}

launch() { # name command... : start detached, record PID, log to $LOGS/name.log
  local name=$1; shift
  mkdir -p "$PIDS" "$LOGS"
  nohup setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  record_pid "$name" $!
  STARTED=$((STARTED + 1))
}

stop_pid() { # name [timeout]
  local name=$1 timeout=${2:-20} pid
  pid=$(pid_of "$name")
  if [ -z "$pid" ]; then forget_pid "$name"; return 0; fi
  if ! alive "$name"; then
    if kill -0 "$pid" 2>/dev/null; then say "$name: stale PID file (pid $pid is another process now), not signalling it"; fi
    forget_pid "$name"; return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while is_ours "$name" "$pid"; do
    if [ $SECONDS -ge $deadline ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
  forget_pid "$name"
  say "$name stopped (pid $pid)"
}

# ---------------------------------------------------------------- prerequisites and installs

apt_install() { # package...
  command -v apt-get >/dev/null || die "apt-get not found: install $* yourself"
  if [ ! -f "$TOOLS/.apt-updated" ]; then as_root apt-get update -qq >/dev/null; mkdir -p "$TOOLS"; touch "$TOOLS/.apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# On a normal Debian machine, installing postgresql or redis-server starts the package's own
# server on 5432/6379 and enables it at boot (a container's policy-rc.d usually prevents that).
# Ours run from $STATE on the same ports, so the package's ones are stopped and disabled. Only
# the package's own units and clusters are touched, and nothing happens where none runs.
disable_distro_postgres() {
  if systemd_running; then
    if systemctl cat postgresql.service >/dev/null 2>&1; then
      say "stopping and disabling the postgresql package's own service (ours runs from $STATE)"
      # postgresql@<version>-<cluster> units are PartOf postgresql.service: they stop with it.
      as_root systemctl disable --now postgresql.service >/dev/null 2>&1 || true
    fi
  fi
  # Without systemd (or if a cluster outlived the unit): the package's clusters that are online.
  command -v pg_lsclusters >/dev/null || return 0
  local version cluster status
  while read -r version cluster _ status _; do
    [ "$status" = online ] || continue
    say "stopping the postgresql package's own cluster $version/$cluster"
    as_root pg_ctlcluster "$version" "$cluster" stop >/dev/null 2>&1 || true
    if ! systemd_running && command -v update-rc.d >/dev/null; then
      as_root update-rc.d postgresql disable >/dev/null 2>&1 || true
    fi
  done < <(pg_lsclusters -h 2>/dev/null)
}

disable_distro_redis() {
  if systemd_running; then
    if systemctl cat redis-server.service >/dev/null 2>&1; then
      say "stopping and disabling the redis-server package's own service (ours runs from $STATE)"
      as_root systemctl disable --now redis-server.service >/dev/null 2>&1 || true
    fi
    return 0
  fi
  # Without systemd: the init script's server, identified by the package's own PID file.
  local pidfile=/run/redis/redis-server.pid pid
  [ -r "$pidfile" ] || return 0
  pid=$(head -1 "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  say "stopping the redis-server package's own server (pid $pid)"
  as_root service redis-server stop >/dev/null 2>&1 || true
  if command -v update-rc.d >/dev/null; then as_root update-rc.d redis-server disable >/dev/null 2>&1 || true; fi
}

install_postgres() {
  [ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/postgres" ] && return 0
  say "installing PostgreSQL (Debian package)"
  apt_install postgresql
  disable_distro_postgres
}

install_redis() {
  command -v redis-server >/dev/null && return 0
  say "installing Redis (Debian package)"
  apt_install redis-server
  disable_distro_redis
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

# The `go` lines of their go.mod: FerretDB v1.24.2 needs Go 1.24, Mailpit v1.33.1 Go 1.26.0.
# (Debian 12's golang-go is 1.19: install Go from https://go.dev/dl/ and put it on PATH.)
FERRETDB_GO_MIN=1.24
MAILPIT_GO_MIN=1.26

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

require_go() { # what minimum-version
  command -v go >/dev/null \
    || die "Go $2+ is required to build $1: go not found (Debian 12's golang-go is too old; install Go from https://go.dev/dl/)"
  local have
  have=$(go env GOVERSION 2>/dev/null | sed -n 's/^go\([0-9][0-9.]*\).*/\1/p')
  [ -n "$have" ] || have=$(go version 2>/dev/null | sed -n 's/.* go\([0-9][0-9.]*\).*/\1/p')
  [ -n "$have" ] || die "Go $2+ is required to build $1: cannot tell the version of $(command -v go)"
  version_ge "$have" "$2" && return 0
  # Go 1.21+ fetches the toolchain a module's go line asks for (through the module proxy),
  # unless told to use only its own.
  if version_ge "$have" 1.21 && [ "$(go env GOTOOLCHAIN 2>/dev/null)" != local ]; then
    say "Go $have will fetch the Go $2 toolchain $1 needs"
    return 0
  fi
  die "Go $2+ is required to build $1: found Go $have at $(command -v go) (Debian 12's golang-go is 1.19; install Go from https://go.dev/dl/)"
}

install_ferretdb() {
  local bin="$TOOLS/ferretdb-$FERRETDB_VERSION/ferretdb"
  [ -x "$bin" ] && return 0
  require_go FerretDB "$FERRETDB_GO_MIN"
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
  require_go Mailpit "$MAILPIT_GO_MIN"
  say "building Mailpit $MAILPIT_VERSION from the Go module proxy"
  mkdir -p "$(dirname "$bin")"
  GOBIN="$(dirname "$bin")" go install "github.com/axllent/mailpit@$MAILPIT_VERSION" || die "building Mailpit failed"
}

# uv from PATH; otherwise from PyPI into a private virtual environment under $TOOLS (Debian 12
# has no pip by default and refuses `pip install` into its own Python, PEP 668), linked as
# ~/.local/bin/uv for `uv run` and the tests that call uv.
UV=""
install_uv() {
  UV=$(command -v uv || true)
  [ -n "$UV" ] && return 0
  local venv="$TOOLS/uv-venv"
  if [ ! -x "$venv/bin/uv" ]; then
    command -v python3 >/dev/null || die "Python 3.11 is required: python3 not found (apt-get install python3)"
    say "installing uv (PyPI) into $venv"
    rm -rf "$venv"
    # Debian's python3 makes no venv with pip until python3-venv (ensurepip) is installed.
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"
      apt_install python3-venv
      python3 -m venv "$venv" >/dev/null || die "python3 -m venv $venv failed"
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check uv \
      || die "installing uv into $venv failed"
  fi
  UV="$venv/bin/uv"
  local link="$HOME/.local/bin/uv"
  if [ ! -e "$link" ] && mkdir -p "$(dirname "$link")" 2>/dev/null && ln -s "$UV" "$link" 2>/dev/null; then
    case ":$PATH:" in *":$HOME/.local/bin:"*) ;; *) say "uv is in $link: add $HOME/.local/bin to PATH for 'uv run'" ;; esac
  fi
}

install_python() {
  install_uv
  # Python comes from the machine; uv must not try to download one.
  UV_PYTHON_DOWNLOADS=never "$UV" sync -q --all-packages --frozen || die "uv sync failed"
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
psql_shop() { # psql as the shop user, bounded: a server that accepts and never answers cannot hang us
  PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=3 timeout -k 2 20 \
    psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres "$@"
}
pg_ready() { psql_shop -tAc 'select 1' 2>/dev/null | grep -q 1; }

# As root, initdb and postgres run as the postgres OS user: it must be able to enter every
# directory above the state dir. A checkout under a private home (/root is mode 0700) is not.
require_postgres_can_reach() { # data-dir log-file
  [ "$(id -u)" = 0 ] || return 0
  # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
  runuser -u postgres -- sh -c 'test -w "$1" && test -x "$1" && test -w "$2"' _ "$1" "$2" 2>/dev/null && return 0
  local dir=$1 blocking=""
  while [ "$dir" != / ] && [ -n "$dir" ]; do
    runuser -u postgres -- test -x "$dir" 2>/dev/null || blocking=$dir
    dir=$(dirname "$dir")
  done
  die "the postgres OS user (PostgreSQL runs as it when stack.sh runs as root) cannot reach $1${blocking:+: $blocking is private (mode $(stat -c %a "$blocking"))}; set SHOP_STATE_DIR to a directory it can reach (e.g. SHOP_STATE_DIR=/var/lib/shop-state) or move the checkout"
}

start_postgres() {
  local data="$STATE/postgres"
  if alive postgres; then
    if pg_ready; then say "postgres    already running (pid $(pid_of postgres), port $PG_PORT)"; return; fi
    die "postgres (pid $(pid_of postgres)) runs but does not answer on port $PG_PORT (SHOP_PG_PORT changed? run: stack.sh down postgres)"
  fi
  forget_pid postgres
  require_free_port postgres "$PG_PORT" SHOP_PG_PORT
  install_postgres
  mkdir -p "$STATE" "$LOGS" "$PIDS"
  touch "$LOGS/postgres.log"
  if [ "$(id -u)" = 0 ]; then chown postgres "$LOGS/postgres.log"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    if [ "$(id -u)" = 0 ]; then chown postgres "$data"; fi
    chmod 700 "$data"
    require_postgres_can_reach "$data" "$LOGS/postgres.log"
    local pwfile="$STATE/.pgpass.tmp"
    echo "$PG_PASSWORD" >"$pwfile"
    if [ "$(id -u)" = 0 ]; then chown postgres "$pwfile"; fi
    pg initdb -D "$data" -U "$PG_USER" --pwfile="$pwfile" --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOGS/postgres-initdb.log" 2>&1 \
      || { rm -f "$pwfile"; die "initdb failed (see $LOGS/postgres-initdb.log)"; }
    rm -f "$pwfile"
    # The port is not written here: every start passes SHOP_PG_PORT (-p below).
    cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 400
shared_buffers = 256MB
max_prepared_transactions = 0
log_min_messages = warning
EOF
  fi
  require_postgres_can_reach "$data" "$LOGS/postgres.log"
  require_free_port postgres "$PG_PORT" SHOP_PG_PORT # again: installing may have taken a while
  # pg_ctl daemonises postgres itself; postmaster.pid is the recorded PID. The port is given on
  # every start (it wins over postgresql.conf), so a changed SHOP_PG_PORT takes effect.
  pg pg_ctl -D "$data" -l "$LOGS/postgres.log" -o "-p $PG_PORT" -w -t 60 start >/dev/null || die "PostgreSQL did not start (see $LOGS/postgres.log)"
  record_pid postgres "$(head -1 "$data/postmaster.pid")"
  STARTED=$((STARTED + 1))
  wait_until postgres 30 pg_ready
  confirm_ours postgres
  local db
  for db in "${DATABASES[@]}"; do
    psql_shop -tAc "select 1 from pg_database where datname='$db'" | grep -q 1 \
      || psql_shop -q -c "create database $db" >/dev/null
  done
  say "postgres    started (pid $(pid_of postgres), port $PG_PORT, databases: ${DATABASES[*]})"
}

stop_postgres() {
  if ! alive postgres; then stop_pid postgres; return 0; fi
  pg pg_ctl -D "$STATE/postgres" -m fast -w stop >/dev/null 2>&1 || stop_pid postgres
  forget_pid postgres
  say "postgres stopped"
}

redis_ready() { timeout -k 2 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

start_redis() {
  if alive redis && redis_ready; then say "redis       already running (pid $(pid_of redis), port $REDIS_PORT)"; return; fi
  require_free_port redis "$REDIS_PORT" SHOP_REDIS_PORT
  install_redis
  mkdir -p "$STATE/redis"
  require_free_port redis "$REDIS_PORT" SHOP_REDIS_PORT
  launch redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE/redis" \
    --appendonly yes --save "" --daemonize no --protected-mode yes
  wait_started redis 20 redis_ready
  say "redis       started (pid $(pid_of redis), port $REDIS_PORT)"
}

kafka_ready() {
  port_open "$KAFKA_PORT" \
    && timeout -k 2 20 "$VENV/bin/python" -m shopkit.kafka_admin ping --bootstrap "127.0.0.1:$KAFKA_PORT"
}

require_kafka_ports() {
  require_free_port kafka "$KAFKA_PORT" SHOP_KAFKA_PORT
  require_free_port kafka-controller "$KAFKA_CONTROLLER_PORT" SHOP_KAFKA_CONTROLLER_PORT
  require_free_port kafka-faults "$KAFKA_FAULTS_PORT" SHOP_KAFKA_FAULTS_PORT
}

start_kafka() {
  if alive kafka && port_open "$KAFKA_PORT"; then say "kafka       already running (pid $(pid_of kafka), port $KAFKA_PORT)"; return; fi
  require_kafka_ports
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
  require_kafka_ports
  launch kafka "$(java_bin)" -Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/infra/local/kafka/log4j2.yaml" -cp "$libs/*" kafka.Kafka "$home/server.properties"
  wait_started kafka 90 kafka_ready
  timeout -k 5 120 "$VENV/bin/python" -m shopkit.kafka_admin ensure-topics --bootstrap "127.0.0.1:$KAFKA_PORT" \
    || die "creating Kafka topics failed"
  say "kafka       started (pid $(pid_of kafka), port $KAFKA_PORT, KRaft, data in $home/data)"
}

mongo_ready() { timeout -k 2 15 "$VENV/bin/python" -m shopkit.mongo ping "mongodb://127.0.0.1:$MONGO_PORT/"; }

require_ferretdb_ports() {
  require_free_port ferretdb "$MONGO_PORT" SHOP_MONGO_PORT
  require_free_port ferretdb-debug "$FERRETDB_DEBUG_PORT" SHOP_FERRETDB_DEBUG_PORT
}

start_ferretdb() {
  if alive ferretdb && port_open "$MONGO_PORT"; then say "ferretdb    already running (pid $(pid_of ferretdb), port $MONGO_PORT)"; return; fi
  require_ferretdb_ports
  install_ferretdb
  mkdir -p "$STATE/ferretdb"
  require_ferretdb_ports
  # --debug-addr: FerretDB's own debug HTTP handler (metrics, pprof), on loopback only.
  launch ferretdb "$TOOLS/ferretdb-$FERRETDB_VERSION/ferretdb" --handler=postgresql \
    --postgresql-url="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/ferretdb" \
    --listen-addr="127.0.0.1:$MONGO_PORT" --debug-addr="127.0.0.1:$FERRETDB_DEBUG_PORT" \
    --state-dir="$STATE/ferretdb" --telemetry=disable --log-level=warn
  wait_started ferretdb 30 mongo_ready
  say "ferretdb    started (pid $(pid_of ferretdb), port $MONGO_PORT, MongoDB wire on PostgreSQL)"
}

# Every HTTP probe: connect within 3 s, whole answer within 5 s.
http_get() { curl -fsS --connect-timeout 3 --max-time 5 "$@"; }

mailpit_ready() { http_get "http://127.0.0.1:$MAILPIT_UI_PORT/api/v1/info"; }

require_mailpit_ports() {
  require_free_port mailpit "$SMTP_PORT" SHOP_SMTP_PORT
  require_free_port mailpit-ui "$MAILPIT_UI_PORT" SHOP_MAILPIT_UI_PORT
}

start_mailpit() {
  if alive mailpit && mailpit_ready >/dev/null 2>&1; then say "mailpit     already running (pid $(pid_of mailpit), smtp $SMTP_PORT, ui $MAILPIT_UI_PORT)"; return; fi
  require_mailpit_ports
  install_mailpit
  mkdir -p "$STATE/mailpit"
  require_mailpit_ports
  launch mailpit "$TOOLS/mailpit-$MAILPIT_VERSION/mailpit" --listen "127.0.0.1:$MAILPIT_UI_PORT" \
    --smtp "127.0.0.1:$SMTP_PORT" --database "$STATE/mailpit/mailpit.db" --max 5000 \
    --smtp-auth-accept-any --smtp-auth-allow-insecure
  wait_started mailpit 30 mailpit_ready
  say "mailpit     started (pid $(pid_of mailpit), smtp $SMTP_PORT, ui http://127.0.0.1:$MAILPIT_UI_PORT)"
}

stripe_ready() { http_get -u "sk_test_local:" "http://127.0.0.1:$STRIPE_PORT/v1/customers?limit=1"; }

start_localstripe() {
  if alive localstripe && stripe_ready >/dev/null 2>&1; then say "localstripe already running (pid $(pid_of localstripe), port $STRIPE_PORT)"; return; fi
  require_free_port localstripe "$STRIPE_PORT" SHOP_STRIPE_PORT
  launch localstripe "$VENV/bin/python" "$ROOT/infra/local/localstripe_server.py" --port "$STRIPE_PORT" \
    --state-file "$STATE/localstripe/store.pickle"
  wait_started localstripe 30 stripe_ready
  # localstripe keeps webhooks in memory: register ours on every start.
  curl -fsS --connect-timeout 3 --max-time 10 -X POST "http://127.0.0.1:$STRIPE_PORT/_config/webhooks/shop" \
    -d "url=http://127.0.0.1:8000/api/payments/webhooks/stripe" -d "secret=$STRIPE_WEBHOOK_SECRET" >/dev/null \
    || die "registering the Stripe webhook with localstripe failed"
  say "localstripe started (pid $(pid_of localstripe), port $STRIPE_PORT, webhook -> gateway /api/payments/webhooks/stripe)"
}

# ---------------------------------------------------------------- shop services

# Bounded, yet generous: on a warm `up` a service that misses it is restarted.
service_ready() { curl -fsS --connect-timeout 3 --max-time 15 "http://127.0.0.1:$1/health/ready" >/dev/null; }

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
    wait_started "$name" 60 service_ready "$port"
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
      *) local port; port=$(service_port "$t") || die "unknown component: $t"; start_service "$t" "$port"; wait_started "$t" 60 service_ready "$port" ;;
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
    if alive "$1"; then state=running; elif stale "$1"; then state=stale; fi
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

# Run when executed; sourcing the file only defines the functions (to test them one by one).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
