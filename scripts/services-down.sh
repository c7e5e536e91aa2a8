#!/usr/bin/env bash
# Stop the servers that scripts/services-up.sh started (those with a pid file in
# .services/), SIGTERM first, SIGKILL after a timeout. Servers that services-up
# merely reused have no pid file and are left alone.
#
# Usage: services-down.sh [kafka] [kafka39] [redis]     (default: all three)
#   kafka = the Kafka 4.x broker, kafka39 = the Kafka 3.9 broker (see services-up.sh)
# Env:   FARAD_SERVICES_STOP_TIMEOUT  seconds between SIGTERM and SIGKILL (default 30)
#        FARAD_SERVICES_DIR           the directory services-up was given (default .services): stops
#                                     the servers whose pid files are there, e.g. a private broker
# The test TLS material (.services/tls) is kept: the next services-up reuses it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES_DIR="${FARAD_SERVICES_DIR:-$ROOT/.services}"
STOP_TIMEOUT="${FARAD_SERVICES_STOP_TIMEOUT:-30}"

log() { printf '[services-down] %s\n' "$*" >&2; }

# alive PID: running and not a zombie (a zombie left behind by a non-reaping
# init in a container would otherwise look alive forever).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
  [[ "$state" != Z ]]
}

# stop NAME PATTERN: PATTERN must occur in the process's command line, so a
# recycled pid belonging to something else is never signalled.
stop() {
  local name="$1" pattern="$2" file="$SERVICES_DIR/$1.pid" pid
  if [[ ! -e "$file" ]]; then
    log "$name: no pid file, nothing to stop"
    return 0
  fi
  pid="$(tr -dc '0-9' <"$file" 2>/dev/null || true)"
  if [[ -z "$pid" ]] || ! alive "$pid"; then
    log "$name: not running (stale pid file removed)"
    rm -f "$file"
    return 0
  fi
  if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"; then
    log "$name: pid $pid is not $pattern any more (stale pid file removed)"
    rm -f "$file"
    return 0
  fi
  log "$name: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if alive "$pid"; then
    log "$name: still running after ${STOP_TIMEOUT}s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
  fi
  rm -f "$file"
  log "$name: stopped"
}

targets=("$@")
((${#targets[@]})) || targets=(kafka kafka39 redis)
rc=0
for t in "${targets[@]}"; do
  case "$t" in
    kafka | kafka39) stop "$t" kafka.Kafka ;;
    redis) stop redis redis-server ;;
    *) log "unknown service '$t' (expected kafka, kafka39 or redis)"; rc=2 ;;
  esac
done
exit "$rc"
