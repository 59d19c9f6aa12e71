#!/usr/bin/env bash
# Build the tiny local test image `b00t-graph-test/busybox:1` (FROM scratch +
# Debian's static busybox). No registry access is needed: the binary comes
# from the `busybox-static` Debian package.
#
# Idempotent: the image carries the label
#   org.b00t-graph.test.hash=<sha256(busybox binary + this script)>
# and the build is skipped when an image with the same hash already exists.
#
# On success prints exactly one line: the image name (so callers can do
# `IMAGE=$(tests/images/build.sh)`). On failure prints diagnostics to stderr
# and exits non-zero.
#
# Environment overrides:
#   B00TG_TEST_IMAGE   image tag to build (default b00t-graph-test/busybox:1)
#   B00TG_BUSYBOX      path of a static busybox binary to use as-is
#   B00TG_NO_INSTALL=1 never `apt-get install`; use `apt-get download` +
#                      `dpkg-deb -x` into a cache dir instead
#   B00TG_CACHE_DIR    cache dir for the extracted package
#                      (default ${XDG_CACHE_HOME:-$HOME/.cache}/b00t-graph-test)
#   B00TG_FORCE=1      rebuild even if an up-to-date image exists
set -euo pipefail

IMAGE="${B00TG_TEST_IMAGE:-b00t-graph-test/busybox:1}"
HASH_LABEL="org.b00t-graph.test.hash"
SCRIPT="$(readlink -f "${BASH_SOURCE[0]}")"
CACHE_DIR="${B00TG_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/b00t-graph-test}"

# Applets that the test-suite relies on; the build fails if any is missing.
REQUIRED_APPLETS=(sh httpd nc wget sleep echo cat ls mkdir true false kill env
                  printf test grep)

LOG="$(mktemp -t b00tg-build-log.XXXXXX)"
CTX=""
cleanup() {
    rm -f "$LOG"
    if [[ -n "$CTX" ]]; then rm -rf "$CTX"; fi
}
trap cleanup EXIT

die() {
    echo "build.sh: ERROR: $*" >&2
    if [[ -s "$LOG" ]]; then
        echo "---- log ----" >&2
        cat "$LOG" >&2
        echo "-------------" >&2
    fi
    exit 1
}

# Run a command with output captured in $LOG (shown only on failure).
quiet() { "$@" >>"$LOG" 2>&1; }

command -v docker >/dev/null 2>&1 || die "docker CLI not found"
docker info >/dev/null 2>>"$LOG" || die "docker daemon not reachable"

# Serialise concurrent invocations (parallel test runs) if flock is available.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/b00tg-test-image-build.lock"
    flock 9
fi

is_static() {
    # A static binary makes ldd report "not a dynamic executable" /
    # "statically linked". Without ldd we trust it (the post-build smoke test
    # catches a dynamic binary anyway).
    [[ -x "$1" ]] || return 1
    command -v ldd >/dev/null 2>&1 || return 0
    local out
    out="$(LC_ALL=C ldd "$1" 2>&1 || true)"   # ldd exits 1 for static binaries
    grep -qE 'not a dynamic executable|statically linked' <<<"$out"
}

dpkg_busybox() {
    # Path of busybox as installed by the busybox-static package, if any.
    local st
    st="$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null || true)"
    [[ "$st" == *"ok installed"* ]] || return 1
    dpkg -L busybox-static 2>/dev/null | grep -E '/s?bin/busybox$' | head -n1
}

apt_retry() {
    # apt-get "$@", running `apt-get update` once if the first attempt fails
    # (e.g. empty package lists in a fresh container).
    if ! quiet apt-get "$@"; then
        quiet apt-get update -qq || die "apt-get update failed"
        quiet apt-get "$@" || die "apt-get $* failed"
    fi
}

find_busybox() {
    local p
    if [[ -n "${B00TG_BUSYBOX:-}" ]]; then
        is_static "$B00TG_BUSYBOX" || die "B00TG_BUSYBOX=$B00TG_BUSYBOX is not a static executable"
        echo "$B00TG_BUSYBOX"; return
    fi
    if p="$(dpkg_busybox)" && [[ -n "$p" ]] && is_static "$p"; then
        echo "$p"; return
    fi
    if is_static /bin/busybox; then
        echo /bin/busybox; return
    fi
    p="$CACHE_DIR/root/bin/busybox"
    if is_static "$p"; then
        echo "$p"; return
    fi

    command -v apt-get >/dev/null 2>&1 || die "no static busybox found and apt-get unavailable"
    export DEBIAN_FRONTEND=noninteractive
    if [[ "${B00TG_NO_INSTALL:-0}" != 1 && "$(id -u)" == 0 ]]; then
        apt_retry install -y -qq --no-install-recommends busybox-static
        p="$(dpkg_busybox)" || die "busybox-static installed but dpkg -L finds no busybox"
        is_static "$p" || die "$p is not a static executable"
        echo "$p"; return
    fi

    # No install: fetch the .deb and extract it into the cache dir.
    mkdir -p "$CACHE_DIR/deb"
    rm -rf "$CACHE_DIR/deb"/*.deb "$CACHE_DIR/root"
    (cd "$CACHE_DIR/deb" && apt_retry download busybox-static)
    local deb
    deb="$(ls "$CACHE_DIR"/deb/busybox-static_*.deb 2>/dev/null | head -n1)"
    [[ -n "$deb" ]] || die "apt-get download busybox-static produced no .deb"
    quiet dpkg-deb -x "$deb" "$CACHE_DIR/root" || die "dpkg-deb -x $deb failed"
    p="$(find "$CACHE_DIR/root" -path '*bin/busybox' -type f | head -n1)"
    [[ -n "$p" ]] || die "no bin/busybox inside $deb"
    if [[ "$p" != "$CACHE_DIR/root/bin/busybox" ]]; then
        mkdir -p "$CACHE_DIR/root/bin"
        ln -sf "$p" "$CACHE_DIR/root/bin/busybox"
    fi
    is_static "$p" || die "$p is not a static executable"
    echo "$p"
}

BB="$(find_busybox)"
HASH="$(cat "$BB" "$SCRIPT" | sha256sum | cut -d' ' -f1)"

OLD_ID=""
if OLD_HASH="$(docker image inspect -f "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$IMAGE" 2>/dev/null)"; then
    if [[ "$OLD_HASH" == "$HASH" && "${B00TG_FORCE:-0}" != 1 ]]; then
        echo "$IMAGE"
        exit 0
    fi
    OLD_ID="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
fi

# ---- build context -------------------------------------------------------
CTX="$(mktemp -d -t b00tg-test-ctx.XXXXXX)"
mkdir -p "$CTX/bin" "$CTX/www" "$CTX/tmp" "$CTX/etc"
chmod 1777 "$CTX/tmp"
cp "$BB" "$CTX/bin/busybox"
chmod 0755 "$CTX/bin/busybox"

APPLETS="$("$BB" --list 2>>"$LOG")" || die "$BB --list failed"
for a in "${REQUIRED_APPLETS[@]}"; do
    grep -qx -- "$a" <<<"$APPLETS" || die "busybox at $BB lacks required applet '$a'"
done
# Link every applet into /bin (sh, httpd, nc, wget, ... and all the rest).
while IFS= read -r a; do
    [[ -n "$a" && "$a" != busybox && "$a" != */* ]] || continue
    ln -sf busybox "$CTX/bin/$a"
done <<<"$APPLETS"

cat >"$CTX/www/index.html" <<'EOF'
<!doctype html>
<html><head><title>b00t-graph test</title></head>
<body><h1>b00t-graph-test ok</h1></body></html>
EOF
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$CTX/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$CTX/etc/group"

cat >"$CTX/Dockerfile" <<EOF
FROM scratch
COPY . /
ENV PATH=/bin
LABEL org.b00t-graph.test="1" $HASH_LABEL="$HASH"
CMD ["sh"]
EOF
printf 'Dockerfile\n.dockerignore\n' >"$CTX/.dockerignore"

quiet docker build -q -t "$IMAGE" "$CTX" || die "docker build of $IMAGE failed"

# Smoke test: catches e.g. a dynamically linked busybox.
if ! quiet docker run --rm --network none "$IMAGE" sh -c 'httpd --help >/dev/null 2>&1; test -d /www && echo ok'; then
    docker image rm -f "$IMAGE" >/dev/null 2>&1 || true
    die "smoke test of freshly built $IMAGE failed"
fi

# Drop the previous version if it is now dangling (no other tag) and unused.
NEW_ID="$(docker image inspect -f '{{.Id}}' "$IMAGE")"
if [[ -n "$OLD_ID" && "$OLD_ID" != "$NEW_ID" ]] &&
   [[ "$(docker image inspect -f '{{len .RepoTags}}' "$OLD_ID" 2>/dev/null)" == 0 ]]; then
    docker image rm "$OLD_ID" >/dev/null 2>&1 || true
fi

echo "$IMAGE"
