#!/usr/bin/env bash
# Local Azure Storage (Azurite, from ./node_modules) for running the app or poking at state by hand.
#
#   scripts/azurite.sh [start] [--blob-port N] [--queue-port N] [--table-port N]
#       Starts Azurite on 127.0.0.1 (given ports, else the standard 10000-10002 when free,
#       else free ones), data under .azurite/data, waits until it listens, and prints its
#       connection string on stdout (alone, so: export REMEDIATOR_STORAGE="$(scripts/azurite.sh)").
#       Already running: prints the running one's connection string.
#   scripts/azurite.sh stop      Stops the Azurite this script started (by its recorded pid).
#   scripts/azurite.sh status    Says whether it runs, and its connection string.
#
# Ports may also come from AZURITE_BLOB_PORT / AZURITE_QUEUE_PORT / AZURITE_TABLE_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=.azurite
PIDFILE="$DIR/azurite.pid"
PORTFILE="$DIR/ports"
LOG="$DIR/azurite.log"
BIN=./node_modules/.bin/azurite
ACCOUNT=devstoreaccount1
# Azurite's well-known development key (public, documented by Microsoft; opens only the emulator).
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

say() { echo "azurite: $*" >&2; }
die() { say "$*"; exit 1; }

connection_string() {  # blob queue table
  printf 'DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=http://127.0.0.1:%s/%s;QueueEndpoint=http://127.0.0.1:%s/%s;TableEndpoint=http://127.0.0.1:%s/%s;\n' \
    "$ACCOUNT" "$KEY" "$1" "$ACCOUNT" "$2" "$ACCOUNT" "$3" "$ACCOUNT"
}

running_pid() {  # the recorded pid, if that process is alive and is Azurite
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q azurite || return 1
  echo "$pid"
}

answers() {  # port: true when something listens on 127.0.0.1:port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

resolve_ports() {  # blob queue table (0 = any free): prints the ports, or fails naming a busy one
  node - "$@" <<'JS'
const net = require("net");
const listen = (port) => new Promise((resolve) => {
  const server = net.createServer();
  server.once("error", () => resolve([port, null]));
  server.listen(port, "127.0.0.1", () => resolve([server.address().port, server]));
});
(async () => {
  const held = [];
  for (const arg of process.argv.slice(2)) held.push(await listen(Number(arg)));
  held.forEach(([, server]) => server && server.close());
  const busy = held.filter(([, server]) => !server).map(([port]) => port);
  if (busy.length) { console.error(`ports in use: ${busy.join(" ")}`); process.exit(1); }
  console.log(held.map(([port]) => port).join(" "));
})();
JS
}

start() {
  local blob="${AZURITE_BLOB_PORT:-}" queue="${AZURITE_QUEUE_PORT:-}" table="${AZURITE_TABLE_PORT:-}"
  while [ $# -gt 0 ]; do
    case "$1" in
      --blob-port) blob="${2:?--blob-port needs a value}"; shift 2 ;;
      --queue-port) queue="${2:?--queue-port needs a value}"; shift 2 ;;
      --table-port) table="${2:?--table-port needs a value}"; shift 2 ;;
      *) die "unknown option $1 (see the header of $0)" ;;
    esac
  done
  for port in $blob $queue $table; do
    if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -gt 65535 ]; then die "not a port: $port"; fi
  done

  if pid="$(running_pid)"; then
    say "already running (pid $pid)"
    # shellcheck disable=SC2046
    connection_string $(cat "$PORTFILE")
    return 0
  fi

  command -v node >/dev/null 2>&1 || die "Node.js is required (run ./scripts/setup.sh)"
  [ -x "$BIN" ] || die "$BIN is missing: run ./scripts/setup.sh (npm ci)"

  local ports
  if [ -z "$blob$queue$table" ] && ports="$(resolve_ports 10000 10001 10002 2>/dev/null)"; then
    :  # the standard ports are free: UseDevelopmentStorage=true works too
  else
    ports="$(resolve_ports "${blob:-0}" "${queue:-0}" "${table:-0}")" || die "cannot use the requested ports"
  fi
  read -r blob queue table <<<"$ports"

  mkdir -p "$DIR/data"
  [ -f "$DIR/.gitignore" ] || echo '*' >"$DIR/.gitignore"
  : >"$LOG"
  nohup "$BIN" \
    --blobHost 127.0.0.1 --blobPort "$blob" \
    --queueHost 127.0.0.1 --queuePort "$queue" \
    --tableHost 127.0.0.1 --tablePort "$table" \
    --location "$DIR/data" --skipApiVersionCheck --loose --silent --disableTelemetry \
    >>"$LOG" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PIDFILE"
  echo "$blob $queue $table" >"$PORTFILE"

  local deadline=$((SECONDS + 30))
  until [ "$(grep -c 'service is successfully listening' "$LOG")" -ge 3 ] \
        && answers "$blob" && answers "$queue" && answers "$table"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      tail -n 20 "$LOG" >&2
      die "Azurite exited while starting (log: $LOG)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$LOG" >&2
      stop >/dev/null
      die "Azurite did not listen within 30s (log: $LOG)"
    fi
    sleep 0.1
  done
  say "running (pid $pid): blob $blob, queue $queue, table $table; data in $DIR/data, log $LOG"
  connection_string "$blob" "$queue" "$table"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PIDFILE"
    say "not running"
    return 0
  fi
  kill -TERM "$pid"  # lets Azurite flush its data to disk
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid did not stop within 10s: killing it"
    kill -KILL "$pid"
  fi
  rm -f "$PIDFILE"
  say "stopped (pid $pid)"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    say "running (pid $pid)"
    # shellcheck disable=SC2046
    connection_string $(cat "$PORTFILE")
  else
    say "not running"
    return 1
  fi
}

case "${1:-start}" in
  -h|--help|help) sed -n '2,13p' "$0" ;;
  start) [ $# -gt 0 ] && shift; start "$@" ;;
  --*) start "$@" ;;
  stop) stop ;;
  status) status ;;
  *) die "unknown command $1 (start, stop, status)" ;;
esac
