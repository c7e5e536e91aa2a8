#!/usr/bin/env bash
# Start the real servers farad's integration tests need, on loopback only:
#   Kafka 3.9.1 (KRaft, single node)  127.0.0.1:9092 (controller on 127.0.0.1:9093)
#   Redis                            127.0.0.1:6379
#
# Idempotent: a server that already answers on its port is reused, whoever started it.
# Only what this script starts gets a pid file in .services/ (scripts/services-down.sh
# stops exactly those).
#
# Kafka jars are fetched once with Maven into
#   ${FARAD_CACHE_DIR:-$HOME/.cache/farad}/kafka-3.9.1/lib
# and reused from there on later runs.
#
# Env:
#   FARAD_CACHE_DIR              cache root (default $HOME/.cache/farad)
#   FARAD_KAFKA_START_TIMEOUT    seconds to wait for the broker (default 90)
#   FARAD_KAFKA_HEAP             JVM heap (default 512m)
#
# Last two lines of output on success:
#   KAFKA_BROKERS=127.0.0.1:9092
#   REDIS_URL=redis://127.0.0.1:6379
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES_DIR="$ROOT/.services"
KAFKA_VERSION=3.9.1
KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
REDIS_HOST=127.0.0.1
REDIS_PORT=6379

CACHE_ROOT="${FARAD_CACHE_DIR:-${HOME:-/root}/.cache/farad}"
KAFKA_LIB="$CACHE_ROOT/kafka-$KAFKA_VERSION/lib"
KAFKA_DATA="$SERVICES_DIR/kafka-data"
KAFKA_CONF="$SERVICES_DIR/kafka-server.properties"
KAFKA_LOG="$SERVICES_DIR/kafka.log"
KAFKA_OUT="$SERVICES_DIR/kafka.out"
KAFKA_PID="$SERVICES_DIR/kafka.pid"
KAFKA_TIMEOUT="${FARAD_KAFKA_START_TIMEOUT:-90}"
KAFKA_HEAP="${FARAD_KAFKA_HEAP:-512m}"
REDIS_PID="$SERVICES_DIR/redis.pid"
REDIS_LOG="$SERVICES_DIR/redis.log"

log() { printf '[services-up] %s\n' "$*" >&2; }
die() { printf '[services-up] ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$SERVICES_DIR"

# --- helpers ---------------------------------------------------------------

# port_open HOST PORT: something accepts TCP connections there.
port_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# pid_alive PIDFILE PATTERN: the pid in PIDFILE is running and its command line
# contains PATTERN (guards against pid reuse). Prints the pid.
pid_alive() {
  local file="$1" pattern="$2" pid
  [[ -s "$file" ]] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
  printf '%s' "$pid"
}

redis_ping() {
  timeout 2 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "PING\r\n" >&3
    IFS= read -r -t 2 line <&3 || exit 1
    [[ "$line" == "+PONG"* ]]
  ' _ "$REDIS_HOST" "$REDIS_PORT" 2>/dev/null
}

# Wait until the broker answers a metadata request (not just a TCP accept).
# Uses kafkajs from the project's node_modules, else kcat, else a bare port check.
# $1: pid of the broker we started, or empty when reusing; the wait stops early if it dies.
kafka_wait_ready() {
  local pid="${1:-}" timeout_s="$KAFKA_TIMEOUT"
  if (cd "$ROOT" && node -e 'require.resolve("kafkajs")') >/dev/null 2>&1; then
    (cd "$ROOT" && FARAD_WAIT_PID="$pid" FARAD_WAIT_TIMEOUT="$timeout_s" \
      FARAD_WAIT_BROKER="$KAFKA_HOST:$KAFKA_PORT" node -e '
      const { Kafka, logLevel } = require("kafkajs");
      const pid = Number(process.env.FARAD_WAIT_PID || 0);
      const deadline = Date.now() + Number(process.env.FARAD_WAIT_TIMEOUT) * 1000;
      const alive = () => {
        if (!pid) return true;
        try { return require("fs").readFileSync("/proc/" + pid + "/stat", "utf8").split(" ")[2] !== "Z"; }
        catch { return false; }
      };
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      (async () => {
        let lastErr = "not tried";
        while (Date.now() < deadline) {
          if (!alive()) { console.error("broker process " + pid + " exited"); process.exit(2); }
          const kafka = new Kafka({
            clientId: "farad-services-up",
            brokers: [process.env.FARAD_WAIT_BROKER],
            logLevel: logLevel.NOTHING,
            connectionTimeout: 1000,
            requestTimeout: 3000,
            retry: { retries: 0 },
          });
          const admin = kafka.admin();
          try {
            await admin.connect();
            await admin.listTopics();
            const { brokers } = await admin.describeCluster();
            if (brokers.length > 0) { await admin.disconnect(); process.exit(0); }
            lastErr = "no brokers in metadata";
          } catch (e) {
            lastErr = e && e.message ? e.message : String(e);
          }
          await admin.disconnect().catch(() => {});
          await sleep(500);
        }
        console.error("timed out; last error: " + lastErr);
        process.exit(1);
      })();
    ')
    return $?
  fi
  local deadline=$((SECONDS + timeout_s))
  while ((SECONDS < deadline)); do
    if [[ -n "$pid" ]] && { ! kill -0 "$pid" 2>/dev/null || [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]]; }; then
      log "broker process $pid exited"; return 2
    fi
    if command -v kcat >/dev/null 2>&1; then
      kcat -b "$KAFKA_HOST:$KAFKA_PORT" -L -m 2 >/dev/null 2>&1 && return 0
    elif port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
      log "kafkajs not installed (npm ci?) and no kcat: only checked that the port accepts connections"
      return 0
    fi
    sleep 0.5
  done
  return 1
}

kafka_fail() {
  local msg="$1"
  printf '[services-up] ERROR: %s\n' "$msg" >&2
  for f in "$KAFKA_OUT" "$KAFKA_LOG"; do
    if [[ -s "$f" ]]; then
      printf '[services-up] ---- last 40 lines of %s ----\n' "$f" >&2
      tail -n 40 "$f" >&2 || true
    fi
  done
  exit 1
}

# --- Kafka -----------------------------------------------------------------

fetch_kafka_jars() {
  if [[ -f "$KAFKA_LIB/.complete" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is needed once to fetch the Kafka jars into $KAFKA_LIB; install it (apt-get install -y maven)"
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIB (one time)"
  local parent tmp
  parent="$(dirname "$KAFKA_LIB")"
  mkdir -p "$parent"
  tmp="$(mktemp -d "$parent/lib.tmp.XXXXXX")"
  if ! mvn -q -B -f "$ROOT/services/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" >"$tmp.mvn.log" 2>&1; then
    cat "$tmp.mvn.log" >&2
    rm -rf "$tmp" "$tmp.mvn.log"
    die "mvn dependency:copy-dependencies failed"
  fi
  rm -f "$tmp.mvn.log"
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"; }
  touch "$tmp/.complete"
  rm -rf "$KAFKA_LIB"
  mv "$tmp" "$KAFKA_LIB"
}

start_kafka() {
  local pid=""
  pid="$(pid_alive "$KAFKA_PID" kafka.Kafka)" || { pid=""; rm -f "$KAFKA_PID"; }

  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    if [[ -n "$pid" ]]; then
      log "Kafka started earlier by services-up (pid $pid) listens on $KAFKA_HOST:$KAFKA_PORT; reusing it"
    else
      log "something already listens on $KAFKA_HOST:$KAFKA_PORT; reusing it"
    fi
    kafka_wait_ready "$pid" || die "$KAFKA_HOST:$KAFKA_PORT is taken but does not answer as a Kafka broker"
    return 0
  fi
  if [[ -n "$pid" ]]; then
    # Ours and still starting (or hung): wait for it rather than start a second one.
    log "Kafka started earlier by services-up (pid $pid) is not listening yet; waiting"
    kafka_wait_ready "$pid" || kafka_fail "Kafka (pid $pid) did not become ready within ${KAFKA_TIMEOUT}s"
    return 0
  fi
  if port_open "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT"; then
    die "$KAFKA_HOST:$KAFKA_CONTROLLER_PORT (Kafka controller port) is taken by another process"
  fi

  command -v java >/dev/null 2>&1 || die "java not found; Kafka $KAFKA_VERSION needs a JDK/JRE 11+ (apt-get install -y default-jdk-headless)"
  fetch_kafka_jars

  sed "s#@DATA_DIR@#$KAFKA_DATA#g" "$ROOT/services/kafka/server.properties.template" >"$KAFKA_CONF"

  if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
    local cluster_id
    # 16 random bytes, URL-safe base64 without padding: a valid Kafka Uuid.
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    log "formatting $KAFKA_DATA (cluster id $cluster_id)"
    mkdir -p "$KAFKA_DATA"
    java -Xmx256m -cp "$KAFKA_LIB/*" \
      -Dlog4j.configuration="file:$ROOT/services/kafka/log4j.properties" \
      -Dkafka.logs.dir="$SERVICES_DIR" \
      kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" -c "$KAFKA_CONF" \
      >"$SERVICES_DIR/kafka-format.log" 2>&1 \
      || { cat "$SERVICES_DIR/kafka-format.log" >&2; die "kafka StorageTool format failed"; }
  fi

  log "starting Kafka $KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT (log: $KAFKA_LOG)"
  # Fresh logs per start (previous start's kept as *.prev), so a failure's tail is this run's.
  [[ -s "$KAFKA_LOG" ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.prev"
  [[ -s "$KAFKA_OUT" ]] && mv -f "$KAFKA_OUT" "$KAFKA_OUT.prev"
  : >"$KAFKA_OUT"
  # setsid: own session, so Ctrl-C in the terminal that ran us does not reach it.
  # The inner sh writes its own pid and then execs java, so the pid file is java's.
  setsid nohup sh -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PID" \
    java -Xmx"$KAFKA_HEAP" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$ROOT/services/kafka/log4j.properties" \
      -Dkafka.logs.dir="$SERVICES_DIR" \
      -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_CONF" \
    </dev/null >>"$KAFKA_OUT" 2>&1 &

  local i=0
  until [[ -s "$KAFKA_PID" ]]; do
    ((i++ < 50)) || kafka_fail "Kafka launcher did not write $KAFKA_PID"
    sleep 0.1
  done
  pid="$(tr -dc '0-9' <"$KAFKA_PID")"

  local t0=$SECONDS rc=0
  kafka_wait_ready "$pid" || rc=$?
  if ((rc != 0)); then
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping the Kafka process this script started (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$KAFKA_PID"
    if ((rc == 2)); then
      kafka_fail "Kafka exited during startup"
    fi
    kafka_fail "Kafka did not become ready within ${KAFKA_TIMEOUT}s"
  fi
  log "Kafka ready after $((SECONDS - t0))s (pid $pid)"
  add_scram_users
}

# SCRAM credentials for the SASL listener's tests (idempotent: re-adding replaces them).
# One mechanism per request: the broker refuses to alter a user's credentials twice in one.
add_scram_users() {
  local mechanism
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    java -Xmx256m -cp "$KAFKA_LIB/*" \
      -Dlog4j.configuration="file:$ROOT/services/kafka/log4j.properties" \
      -Dkafka.logs.dir="$SERVICES_DIR" \
      kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" --alter \
      --add-config "$mechanism=[iterations=4096,password=farad-secret]" \
      --entity-type users --entity-name farad >"$SERVICES_DIR/kafka-scram.log" 2>&1 \
      || { cat "$SERVICES_DIR/kafka-scram.log" >&2; die "could not add the $mechanism test user"; }
  done
  log "SCRAM-SHA-256/512 user farad ready on $KAFKA_HOST:9094"
}

# --- Redis -----------------------------------------------------------------

start_redis() {
  local pid=""
  pid="$(pid_alive "$REDIS_PID" redis-server)" || { pid=""; rm -f "$REDIS_PID"; }
  if redis_ping; then
    if [[ -n "$pid" ]]; then
      log "Redis started earlier by services-up (pid $pid) answers on $REDIS_HOST:$REDIS_PORT; reusing it"
    else
      log "Redis already answers on $REDIS_HOST:$REDIS_PORT; reusing it"
    fi
    return 0
  fi
  if [[ -n "$pid" ]]; then
    log "Redis started earlier by services-up (pid $pid) does not answer PING yet; waiting"
  else
    if port_open "$REDIS_HOST" "$REDIS_PORT"; then
      die "$REDIS_HOST:$REDIS_PORT is taken by something that does not answer PING with +PONG (password-protected Redis?)"
    fi
    command -v redis-server >/dev/null 2>&1 \
      || die "redis-server not found. Install it, e.g.: apt-get install -y redis-server"
    log "starting redis-server on $REDIS_HOST:$REDIS_PORT (log: $REDIS_LOG)"
    redis-server --bind "$REDIS_HOST" --port "$REDIS_PORT" --save '' --appendonly no \
      --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" --dir "$SERVICES_DIR" \
      </dev/null || die "redis-server failed to start; see $REDIS_LOG"
  fi
  for _ in $(seq 1 100); do
    redis_ping && return 0
    sleep 0.1
  done
  tail -n 20 "$REDIS_LOG" >&2 2>/dev/null || true
  die "Redis did not answer PING within 10s"
}

start_redis
start_kafka

echo "KAFKA_BROKERS=$KAFKA_HOST:$KAFKA_PORT"
echo "REDIS_URL=redis://$REDIS_HOST:$REDIS_PORT"
echo "KAFKA_SASL_BROKERS=$KAFKA_HOST:9094"
