#!/usr/bin/env bash
# Start the real servers farad's integration tests need, on loopback only:
#   kafka    Kafka 4.x (KRaft combined mode, single node)  127.0.0.1:9092, SASL 127.0.0.1:9094
#            (controller on 127.0.0.1:9093); the broker the whole suite runs against. Also
#            TLS: 127.0.0.1:9095 (SSL, server verification) and 127.0.0.1:9096 (MTLS, client
#            certificate required), for test/integration/tls.test.ts
#   kafka39  Kafka 3.9.x, same configuration               127.0.0.1:9192, SASL 127.0.0.1:9194
#            (controller on 127.0.0.1:9193); test/integration/voter-kafka.test.ts runs its
#            cases against this one as well (KAFKA39_BROKERS)
#   redis    Redis                                         127.0.0.1:6379
#
# Usage: services-up.sh [kafka] [kafka39] [redis]     (default: all three)
#
# Idempotent: a server that already answers on its port is reused, whoever started it (a
# foreign broker's version and listeners are not checked). Only what this script starts gets a
# pid file in .services/ (kafka.pid, kafka39.pid, redis.pid; scripts/services-down.sh stops
# exactly those). A broker this script started earlier from other jars (another version), or
# with another configuration (services/kafka/*.template changed since: new listeners, say) or
# other TLS material, is stopped and replaced. Each broker keeps its files in .services/<name>/
# (data-<version>/, logs, the server.properties it was started with).
#
# TLS material for the tests is generated once with openssl into .services/tls/ and reused while
# it verifies and has more than a day left (valid ten years): ca.pem + ca-key.pem (the test CA),
# server.pem + server-key.pem (SAN IP:127.0.0.1, DNS:localhost; the Kafka broker's, in
# server-keystore.pem, and the test Redis servers'), client.pem + client-key.pem (a client
# certificate signed by the CA), other-ca.pem (an unrelated CA, for the wrong-CA cases) and
# other-client.pem + other-client-key.pem (a client certificate signed by that one).
#
# The versions are those in services/kafka/4/pom.xml and services/kafka/3.9/pom.xml. The jars
# are fetched once with Maven (mvn dependency:copy-dependencies) into
#   ${FARAD_CACHE_DIR:-$HOME/.cache/farad}/kafka-<version>-<pom hash>/lib
# and reused from there on later runs. The two brokers start in parallel.
#
# Env:
#   FARAD_CACHE_DIR              cache root (default $HOME/.cache/farad)
#   FARAD_KAFKA_START_TIMEOUT    seconds to wait for a broker (default 90)
#   FARAD_KAFKA_HEAP             JVM heap per broker (default 512m)
#   FARAD_SERVICES_DIR           where pid files, broker files and TLS material go (default
#                                .services); with FARAD_KAFKA_PORT_OFFSET, a private pair of
#                                brokers beside the usual ones, e.g. to try a broker configuration
#                                without touching the brokers others are testing against:
#                                  FARAD_SERVICES_DIR=/tmp/farad-try FARAD_KAFKA_PORT_OFFSET=1000 \
#                                    scripts/services-up.sh kafka     (10092..10096)
#                                  FARAD_SERVICES_DIR=/tmp/farad-try scripts/services-down.sh kafka
#   FARAD_KAFKA_PORT_OFFSET      added to every Kafka port above (default 0); not to Redis's
#
# Output on success: KEY=VALUE lines on stdout, one per server started or reused:
#   REDIS_URL=redis://127.0.0.1:6379
#   KAFKA_BROKERS=127.0.0.1:9092
#   KAFKA_SASL_BROKERS=127.0.0.1:9094
#   KAFKA_TLS_BROKERS=127.0.0.1:9095
#   KAFKA_MTLS_BROKERS=127.0.0.1:9096
#   KAFKA39_BROKERS=127.0.0.1:9192
#   FARAD_TEST_TLS_DIR=<repository>/.services/tls
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES_DIR="${FARAD_SERVICES_DIR:-$ROOT/.services}"
KAFKA_HOST=127.0.0.1
KAFKA_PORT_OFFSET="${FARAD_KAFKA_PORT_OFFSET:-0}"
REDIS_HOST=127.0.0.1
REDIS_PORT=6379

CACHE_ROOT="${FARAD_CACHE_DIR:-${HOME:-/root}/.cache/farad}"
KAFKA_TIMEOUT="${FARAD_KAFKA_START_TIMEOUT:-90}"
KAFKA_HEAP="${FARAD_KAFKA_HEAP:-512m}"
REDIS_PID="$SERVICES_DIR/redis.pid"
REDIS_LOG="$SERVICES_DIR/redis.log"
SCRAM_USER=farad
SCRAM_PASSWORD=farad-secret

# KAFKA_NAME is set by kafka_instance (below) while one broker is handled.
KAFKA_NAME=""
log() { printf '[services-up]%s %s\n' "${KAFKA_NAME:+ $KAFKA_NAME:}" "$*" >&2; }
die() { printf '[services-up]%s ERROR: %s\n' "${KAFKA_NAME:+ $KAFKA_NAME:}" "$*" >&2; exit 1; }

[[ "$KAFKA_PORT_OFFSET" =~ ^[0-9]+$ ]] && ((KAFKA_PORT_OFFSET <= 50000)) \
  || die "FARAD_KAFKA_PORT_OFFSET must be a whole number from 0 to 50000, not '$KAFKA_PORT_OFFSET'"
mkdir -p "$SERVICES_DIR"
SERVICES_DIR="$(cd "$SERVICES_DIR" && pwd)"
TLS_DIR="$SERVICES_DIR/tls"

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
  log "ERROR: $msg"
  for f in "$KAFKA_OUT" "$KAFKA_LOG"; do
    if [[ -s "$f" ]]; then
      log "---- last 40 lines of $f ----"
      tail -n 40 "$f" >&2 || true
    fi
  done
  exit 1
}

# --- Kafka -----------------------------------------------------------------

# kafka_instance NAME: sets the KAFKA_* globals for one broker (kafka = 4.x, kafka39 = 3.9).
kafka_instance() {
  KAFKA_NAME="$1"
  local base
  case "$1" in
    kafka)
      KAFKA_LINE=4
      base=9092
      KAFKA_LOG_OPT="-Dlog4j2.configurationFile=$ROOT/services/kafka/4/log4j2.properties"
      ;;
    kafka39)
      KAFKA_LINE=3.9
      base=9192
      KAFKA_LOG_OPT="-Dlog4j.configuration=file:$ROOT/services/kafka/3.9/log4j.properties"
      ;;
    *) die "unknown Kafka instance $1" ;;
  esac
  base=$((base + KAFKA_PORT_OFFSET))
  KAFKA_PORT=$base KAFKA_CONTROLLER_PORT=$((base + 1)) KAFKA_SASL_PORT=$((base + 2))
  # TLS listeners: the Kafka 4.x broker only (empty: none).
  KAFKA_SSL_PORT="" KAFKA_MTLS_PORT=""
  if [[ "$1" == kafka ]]; then KAFKA_SSL_PORT=$((base + 3)) KAFKA_MTLS_PORT=$((base + 4)); fi
  KAFKA_POM="$ROOT/services/kafka/$KAFKA_LINE/pom.xml"
  [[ -f "$KAFKA_POM" ]] || die "$KAFKA_POM is missing"
  KAFKA_VERSION="$(sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' "$KAFKA_POM" | head -n 1)"
  [[ -n "$KAFKA_VERSION" ]] || die "no <kafka.version> in $KAFKA_POM"
  # The cache key has the pom's hash: a changed dependency list fetches anew.
  KAFKA_LIB="$CACHE_ROOT/kafka-$KAFKA_VERSION-$(sha256sum "$KAFKA_POM" | cut -c1-12)/lib"
  KAFKA_DIR="$SERVICES_DIR/$KAFKA_NAME"
  # Per version: a directory formatted by a newer Kafka must not be opened by an older one.
  KAFKA_DATA="$KAFKA_DIR/data-$KAFKA_VERSION"
  KAFKA_CONF="$KAFKA_DIR/server.properties"
  KAFKA_LOG="$KAFKA_DIR/kafka.log"
  KAFKA_OUT="$KAFKA_DIR/kafka.out"
  KAFKA_PID="$SERVICES_DIR/$KAFKA_NAME.pid"
  # Fingerprint of the TLS material the running broker loaded (written when it starts).
  KAFKA_TLS_LOADED="$KAFKA_DIR/tls.sha256"
}

# The instance's server.properties, on stdout.
render_kafka_conf() {
  local tls_listeners="" tls_protocols=""
  if [[ -n "$KAFKA_SSL_PORT" ]]; then
    tls_listeners=",SSL://$KAFKA_HOST:$KAFKA_SSL_PORT,MTLS://$KAFKA_HOST:$KAFKA_MTLS_PORT"
    tls_protocols=",SSL:SSL,MTLS:SSL"
  fi
  sed -e "s#@DATA_DIR@#$KAFKA_DATA#g" -e "s#@PORT@#$KAFKA_PORT#g" \
    -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" -e "s#@SASL_PORT@#$KAFKA_SASL_PORT#g" \
    -e "s#@TLS_LISTENERS@#$tls_listeners#g" -e "s#@TLS_PROTOCOLS@#$tls_protocols#g" \
    "$ROOT/services/kafka/server.properties.template"
  if [[ -n "$KAFKA_SSL_PORT" ]]; then
    sed -e "s#@SSL_PORT@#$KAFKA_SSL_PORT#g" -e "s#@MTLS_PORT@#$KAFKA_MTLS_PORT#g" -e "s#@TLS_DIR@#$TLS_DIR#g" \
      "$ROOT/services/kafka/tls.properties.template"
  fi
}

# effective_props: the property lines of a server.properties on stdin (comments and blank lines dropped).
effective_props() {
  sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d'
}

# Fingerprint of the TLS material a broker with TLS listeners loads (empty for one without).
kafka_tls_fingerprint() {
  [[ -n "$KAFKA_SSL_PORT" ]] || return 0
  cat "$TLS_DIR/server-keystore.pem" "$TLS_DIR/ca.pem" | sha256sum | cut -c1-64
}

# Why the broker this script started earlier (still running) must be replaced; empty when it
# need not: it runs other jars, or was started with another configuration or TLS material.
kafka_outdated() {
  local pid="$1"
  if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$KAFKA_LIB/"; then
    echo "runs other jars than Kafka $KAFKA_VERSION's"
  elif [[ ! -f "$KAFKA_CONF" ]] || [[ "$(effective_props <"$KAFKA_CONF")" != "$(render_kafka_conf | effective_props)" ]]; then
    echo "was started with another configuration than $KAFKA_CONF would now have (a changed services/kafka template)"
  elif [[ "$(cat "$KAFKA_TLS_LOADED" 2>/dev/null)" != "$(kafka_tls_fingerprint)" ]]; then
    echo "loaded other TLS material than $TLS_DIR holds"
  fi
}

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
  if ! mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies \
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

# stop_own_kafka PID: stops a broker this script started (SIGTERM, then SIGKILL after 10 s).
stop_own_kafka() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$KAFKA_PID"
}

start_kafka() {
  kafka_instance "$1"
  local pid="" outdated=""
  pid="$(pid_alive "$KAFKA_PID" kafka.Kafka)" || { pid=""; rm -f "$KAFKA_PID"; }
  [[ -z "$pid" ]] || outdated="$(kafka_outdated "$pid")"
  if [[ -n "$outdated" ]]; then
    log "the broker services-up started earlier (pid $pid) $outdated; replacing it"
    stop_own_kafka "$pid"
    pid=""
    for _ in $(seq 1 50); do port_open "$KAFKA_HOST" "$KAFKA_PORT" || break; sleep 0.2; done
  fi

  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    if [[ -n "$pid" ]]; then
      log "Kafka $KAFKA_VERSION started earlier by services-up (pid $pid) listens on $KAFKA_HOST:$KAFKA_PORT; reusing it"
    else
      log "something already listens on $KAFKA_HOST:$KAFKA_PORT; reusing it (its version is not checked)"
    fi
    kafka_wait_ready "$pid" || die "$KAFKA_HOST:$KAFKA_PORT is taken but does not answer as a Kafka broker"
    if [[ -n "$KAFKA_SSL_PORT" ]] && { ! port_open "$KAFKA_HOST" "$KAFKA_SSL_PORT" || ! port_open "$KAFKA_HOST" "$KAFKA_MTLS_PORT"; }; then
      log "WARNING: this broker has no TLS listeners on $KAFKA_HOST:$KAFKA_SSL_PORT/$KAFKA_MTLS_PORT; test/integration/tls.test.ts will fail against it"
    fi
    return 0
  fi
  if [[ -n "$pid" ]]; then
    # Ours and still starting (or hung): wait for it rather than start a second one.
    log "Kafka started earlier by services-up (pid $pid) is not listening yet; waiting"
    kafka_wait_ready "$pid" || kafka_fail "Kafka (pid $pid) did not become ready within ${KAFKA_TIMEOUT}s"
    return 0
  fi
  local port
  for port in "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT" $KAFKA_SSL_PORT $KAFKA_MTLS_PORT; do
    if port_open "$KAFKA_HOST" "$port"; then
      die "$KAFKA_HOST:$port (a port of this Kafka instance) is taken by another process"
    fi
  done

  command -v java >/dev/null 2>&1 || die "java not found; Kafka $KAFKA_VERSION needs a JDK/JRE 17+ (apt-get install -y default-jdk-headless)"
  [[ -f "$KAFKA_LIB/.complete" ]] || die "the Kafka $KAFKA_VERSION jars are not in $KAFKA_LIB"

  mkdir -p "$KAFKA_DIR"
  render_kafka_conf >"$KAFKA_CONF"
  kafka_tls_fingerprint >"$KAFKA_TLS_LOADED"

  if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
    local cluster_id
    # 16 random bytes, URL-safe base64 without padding: a valid Kafka Uuid. One that starts with
    # '-' would be read as an option by StorageTool's argument parser (1 time in 64): draw again.
    cluster_id=-
    while [[ "$cluster_id" == -* ]]; do
      cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    log "formatting $KAFKA_DATA (cluster id $cluster_id) with SCRAM-SHA-256/512 user $SCRAM_USER"
    rm -rf "$KAFKA_DATA"
    mkdir -p "$KAFKA_DATA"
    # The SASL listener's SCRAM credentials go straight into the metadata log (KRaft bootstrap
    # records), so they exist before the broker serves its first request.
    java -Xmx256m -cp "$KAFKA_LIB/*" "$KAFKA_LOG_OPT" -Dkafka.logs.dir="$KAFKA_DIR" \
      kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" -c "$KAFKA_CONF" \
      --add-scram "SCRAM-SHA-256=[name=$SCRAM_USER,iterations=4096,password=$SCRAM_PASSWORD]" \
      --add-scram "SCRAM-SHA-512=[name=$SCRAM_USER,iterations=4096,password=$SCRAM_PASSWORD]" \
      >"$KAFKA_DIR/format.log" 2>&1 \
      || { cat "$KAFKA_DIR/format.log" >&2; rm -rf "$KAFKA_DATA"; die "kafka StorageTool format failed"; }
  fi

  log "starting Kafka $KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT (log: $KAFKA_LOG)"
  # Fresh logs per start (previous start's kept as *.prev), so a failure's tail is this run's.
  if [[ -s "$KAFKA_LOG" ]]; then mv -f "$KAFKA_LOG" "$KAFKA_LOG.prev"; fi
  if [[ -s "$KAFKA_OUT" ]]; then mv -f "$KAFKA_OUT" "$KAFKA_OUT.prev"; fi
  : >"$KAFKA_OUT"
  # setsid: own session, so Ctrl-C in the terminal that ran us does not reach it.
  # The inner sh writes its own pid and then execs java, so the pid file is java's.
  setsid nohup sh -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PID" \
    java -Xmx"$KAFKA_HEAP" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      "$KAFKA_LOG_OPT" -Dkafka.logs.dir="$KAFKA_DIR" \
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
      stop_own_kafka "$pid"
    fi
    rm -f "$KAFKA_PID"
    if ((rc == 2)); then
      kafka_fail "Kafka exited during startup"
    fi
    kafka_fail "Kafka did not become ready within ${KAFKA_TIMEOUT}s"
  fi
  log "Kafka $KAFKA_VERSION ready after $((SECONDS - t0))s (pid $pid; SASL PLAIN/SCRAM on $KAFKA_HOST:$KAFKA_SASL_PORT${KAFKA_SSL_PORT:+; TLS on $KAFKA_HOST:$KAFKA_SSL_PORT, mutual TLS on $KAFKA_HOST:$KAFKA_MTLS_PORT})"
}

# --- TLS material ----------------------------------------------------------

TLS_FILES=(ca.pem ca-key.pem server.pem server-key.pem server-keystore.pem client.pem client-key.pem
  other-ca.pem other-ca-key.pem other-client.pem other-client-key.pem)

# The material in $TLS_DIR is complete, signed by its CA and valid for more than a day.
tls_material_ok() {
  local f
  for f in "${TLS_FILES[@]}"; do [[ -s "$TLS_DIR/$f" ]] || return 1; done
  openssl verify -CAfile "$TLS_DIR/ca.pem" "$TLS_DIR/server.pem" "$TLS_DIR/client.pem" >/dev/null 2>&1 || return 1
  openssl verify -CAfile "$TLS_DIR/other-ca.pem" "$TLS_DIR/other-client.pem" >/dev/null 2>&1 || return 1
  for f in ca.pem other-ca.pem server.pem client.pem other-client.pem; do
    openssl x509 -checkend 86400 -noout -in "$TLS_DIR/$f" >/dev/null 2>&1 || return 1
  done
}

# generate_tls_material DIR: a test CA, a server and a client certificate it signs, and an
# unrelated CA with a client certificate of its own (one the brokers and servers must refuse).
# EC P-256 keys (fast to make), PKCS#8 PEM without a password (what Kafka's PEM stores, Node and
# Redis read), valid ten years.
generate_tls_material() {
  local dir="$1"
  cat >"$dir/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = farad test CA
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
CNF
  local name cn ca
  for name in ca other-ca server client other-client; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name-key.pem"
  done
  for name in ca other-ca; do
    cn="farad test CA"
    [[ "$name" == other-ca ]] && cn="farad unrelated test CA"
    openssl req -x509 -new -config "$dir/openssl.cnf" -extensions ca -key "$dir/$name-key.pem" \
      -subj "/CN=$cn" -sha256 -days 3650 -out "$dir/$name.pem"
  done
  for name in server client other-client; do
    cn=localhost ca=ca
    [[ "$name" == client ]] && cn=farad-test-client
    [[ "$name" == other-client ]] && cn=farad-test-client ca=other-ca
    openssl req -new -config "$dir/openssl.cnf" -key "$dir/$name-key.pem" -subj "/CN=$cn" -out "$dir/$name.csr"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.pem" -CAkey "$dir/$ca-key.pem" \
      -set_serial "0x$(openssl rand -hex 16)" -sha256 -days 3650 \
      -extfile "$dir/openssl.cnf" -extensions "${name#other-}" -out "$dir/$name.pem"
  done
  # Kafka's PEM key store: the private key, then the certificate chain.
  cat "$dir/server-key.pem" "$dir/server.pem" "$dir/ca.pem" >"$dir/server-keystore.pem"
  rm -f "$dir"/*.csr
}

# Makes sure $TLS_DIR holds usable material: reuses it, or generates it anew (one run at a time).
ensure_tls_material() {
  command -v openssl >/dev/null 2>&1 || die "openssl not found; it generates the test certificates (apt-get install -y openssl)"
  (
    if command -v flock >/dev/null 2>&1; then
      exec 8>"$SERVICES_DIR/tls.lock"
      flock 8
    fi
    tls_material_ok && exit 0
    log "generating test TLS material (CA, server and client certificates) in $TLS_DIR"
    local tmp
    tmp="$(mktemp -d "$SERVICES_DIR/tls.tmp.XXXXXX")"
    if ! generate_tls_material "$tmp" >"$tmp.log" 2>&1; then
      cat "$tmp.log" >&2
      rm -rf "$tmp" "$tmp.log"
      die "openssl failed generating the test TLS material"
    fi
    rm -f "$tmp.log"
    chmod 700 "$tmp"
    rm -rf "$TLS_DIR"
    mv "$tmp" "$TLS_DIR"
    tls_material_ok || die "the TLS material generated in $TLS_DIR does not verify"
  )
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

# --- main ------------------------------------------------------------------

targets=("$@")
((${#targets[@]})) || targets=(redis kafka kafka39)
want_redis=0
kafkas=()
for t in "${targets[@]}"; do
  case "$t" in
    redis) want_redis=1 ;;
    kafka | kafka39) kafkas+=("$t") ;;
    *) die "unknown service '$t' (expected kafka, kafka39 or redis)" ;;
  esac
done

# Before the brokers: a broker's TLS listeners load it, and a running one that loaded other
# material is replaced. The tests' own TLS servers (Redis) use it too.
ensure_tls_material

((want_redis)) && start_redis

if ((${#kafkas[@]})); then
  # Jars first, one Maven at a time (one cache, possibly several runs at once)...
  mkdir -p "$CACHE_ROOT"
  (
    if command -v flock >/dev/null 2>&1; then
      exec 9>"$CACHE_ROOT/kafka.lock"
      flock 9
    fi
    for k in "${kafkas[@]}"; do
      kafka_instance "$k"
      # Only when this broker has to be started here: a reused one needs no jars.
      if ! port_open "$KAFKA_HOST" "$KAFKA_PORT" || pid_alive "$KAFKA_PID" kafka.Kafka >/dev/null; then
        fetch_kafka_jars
      fi
    done
  )
  # ...then the brokers, in parallel (each one's JVM start-up is mostly single-threaded).
  pids=()
  for k in "${kafkas[@]}"; do
    start_kafka "$k" &
    pids+=($!)
  done
  failed=0
  for p in "${pids[@]}"; do
    wait "$p" || failed=1
  done
  KAFKA_NAME=""
  ((failed == 0)) || die "a Kafka broker did not start (see above)"
fi

((want_redis)) && echo "REDIS_URL=redis://$REDIS_HOST:$REDIS_PORT"
for k in "${kafkas[@]}"; do
  kafka_instance "$k"
  case "$k" in
    kafka)
      echo "KAFKA_BROKERS=$KAFKA_HOST:$KAFKA_PORT"
      echo "KAFKA_SASL_BROKERS=$KAFKA_HOST:$KAFKA_SASL_PORT"
      echo "KAFKA_TLS_BROKERS=$KAFKA_HOST:$KAFKA_SSL_PORT"
      echo "KAFKA_MTLS_BROKERS=$KAFKA_HOST:$KAFKA_MTLS_PORT"
      ;;
    kafka39) echo "KAFKA39_BROKERS=$KAFKA_HOST:$KAFKA_PORT" ;;
  esac
done
echo "FARAD_TEST_TLS_DIR=$TLS_DIR"
