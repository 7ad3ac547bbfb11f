# Shared set-up for scripts/test, scripts/lanes and scripts/bench: the system packages Lanes
# needs, installed when running as root, or the exact command printed when not.
# rsync: the set-id tests (cp -p, rsync -p). iproute2, curl, openssl, git: the egress tests' test
# hosts (Tests/EscapeTests/Probes/egress-fixture.sh). libcurl4-openssl-dev: the release lanes-mcp
# links the Swift libraries statically, and FoundationNetworking's archive names -lcurl.
# patchelf: takes that libcurl entry out of the release lanes-mcp (lanes_release_build).
LANES_APT_PACKAGES=(libseccomp-dev libcap-dev libsqlite3-dev bubblewrap hyperfine rsync iproute2 curl openssl git libcurl4-openssl-dev patchelf)

lanes_missing_packages() {
    local missing=()
    for p in "${LANES_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    echo "${missing[@]:-}"
}

lanes_ensure_packages() {
    local missing
    missing=$(lanes_missing_packages)
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing $missing" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
    else
        echo "setup: missing system packages: $missing" >&2
        echo "setup: run: sudo apt-get update && sudo apt-get install -y $missing" >&2
        return 1
    fi
}

# Release build of lanes and lane-init as fully static executables (LANES_STATIC_EXECUTABLES=1,
# see Package.swift): start-up is most of a step's cost. Rebuilt only when a source is newer.
LANES_RELEASE_DIR=.build-static
# Where each release binary's hot functions are listed, in the order the linker lays them out
# (scripts/hot-code writes them from perf samples of one-shot steps).
LANES_HOT_CODE_DIR=scripts/lib/hot-code
lanes_release_build() {
    local bin="$LANES_RELEASE_DIR/release/lanes"
    if [ -x "$bin" ] && [ -x "$LANES_RELEASE_DIR/release/lane-init" ] && [ -x "$LANES_RELEASE_DIR/release/lanes-mcp" ] \
        && [ -z "$(find Package.swift Sources "$LANES_HOT_CODE_DIR" -newer "$bin" -print -quit)" ]; then
        return 0
    fi
    echo "setup: building lanes (release)…" >&2
    local product
    for product in lanes lane-init; do
        # shellcheck disable=SC2046
        LANES_STATIC_EXECUTABLES=1 swift build -c release --static-swift-stdlib \
            --scratch-path "$LANES_RELEASE_DIR" --product "$product" $(lanes_layout_flags "$product") 2>&1 | lanes_filter_link_warnings >&2
        [ "${PIPESTATUS[0]}" = 0 ] || return 1
    done
    # `lanes mcp` execs lanes-mcp: the Swift libraries linked statically, like the others, but
    # not a static executable: the MCP SDK's FoundationNetworking needs libcurl, which has no
    # static build here, so libc and libcurl stay shared. Same flags, so the objects are shared;
    # 3 MiB less resident than the fully dynamic build (docs/benchmarks.md).
    # shellcheck disable=SC2046
    LANES_STATIC_EXECUTABLES=1 swift build -c release --static-swift-stdlib \
        --scratch-path "$LANES_RELEASE_DIR" --product lanes-mcp $(lanes_layout_flags lanes-mcp) 2>&1 | lanes_filter_link_warnings >&2
    [ "${PIPESTATUS[0]}" = 0 ] || return 1
    lanes_drop_libcurl "$LANES_RELEASE_DIR/release/lanes-mcp"
    lanes_check_server_link "$LANES_RELEASE_DIR/release/lanes-mcp"
    lanes_rewrite_like_installed "$LANES_RELEASE_DIR/release"/{lanes,lane-init,lanes-mcp}
}

# The code layout of a release product (docs/benchmarks.md, stop 14). A one-shot step runs about
# 2,600 functions of lanes' 28 MiB of code and 600 of lane-init's 6 MiB, scattered: every 64 KiB
# window touched is a page fault (the kernel maps a fault's neighbours, up to 64 KiB), and every
# page mapped is unmapped again at exit. Each function in its own section (our code and every
# package's: the same flags for all three products, so their objects stay shared) lets the
# linker (gold) put the functions the product's list names first, together: about 50 fewer page
# faults per `lanes run` and 0.3-0.5 ms less CPU. A name the list has and the binary lacks is skipped; the
# Swift runtime's own code (libswiftCore keeps most of it in one section), glibc and SQLite
# cannot be moved. Nothing but the layout changes.
lanes_layout_flags() {
    local product=$1 order="$PWD/$LANES_HOT_CODE_DIR/$1.order"
    echo -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections
    if [ -f "$order" ]; then echo -Xlinker "--section-ordering-file=$order"; fi
}

# Package.swift's `serverLink` flags are ignored without a word if a toolchain stops passing them
# on; the server would then start with 116,000 relocations and 30,000 exported symbols again
# (~6 MiB more resident per server). Refuses such a binary.
lanes_check_server_link() {
    local bin=$1 exported
    if ! readelf -h "$bin" | grep -q 'Type:[[:space:]]*EXEC'; then
        echo "setup: $bin is position-independent; Package.swift's serverLink asks for -no-pie" >&2
        return 1
    fi
    exported=$(nm -D --defined-only "$bin" | wc -l)
    if [ "$exported" -gt 1000 ]; then
        echo "setup: $bin exports $exported symbols; Package.swift's serverLink asks for --no-export-dynamic" >&2
        return 1
    fi
}

# Writes each binary again with cp, as an installer (cp, install, dpkg) does. The linker writes its
# output through a shared mapping, which leaves the file in the page cache as 4 KiB pages; a
# file written with write(2) is cached in large folios (one evicted and read back from disk
# behaves the same). The bytes are the same, but a process running the linker's copy paid more per
# page fault: a one-shot `lanes run` took 11-20 % more CPU and a server kept ~12 MiB more of its
# code resident (docs/benchmarks.md, stop 12). bubblewrap, installed by dpkg, never pays it.
lanes_rewrite_like_installed() {
    local f
    for f in "$@"; do
        cp --preserve=mode "$f" "$f.copy" && mv -f "$f.copy" "$f" || return 1
    done
}

# lanes-mcp defines libcurl's functions itself and loads libcurl only if one is called
# (Sources/CLazyCurl: a server never does). FoundationNetworking's module still puts -lcurl on
# the link line, after any flag a package can add, so the linker records libcurl as needed and
# every server would map it and the 28 libraries it needs (5.5 MiB resident). The entry is
# removed only when nothing in the binary is left for libcurl to define.
lanes_drop_libcurl() {
    local bin=$1
    readelf -d "$bin" | grep -q 'NEEDED.*\[libcurl' || return 0
    if nm -D --undefined-only "$bin" | grep -q ' curl_' || readelf -V "$bin" | grep -q 'File: libcurl'; then
        echo "setup: $bin still needs libcurl's symbols; it keeps libcurl" >&2
        return 1
    fi
    patchelf --remove-needed libcurl.so.4 "$bin"
}

# Hides the static-link warnings known to be harmless (scripts/lib/static-link-warnings.txt says
# why, one by one) and says how many it hid; every other line, warnings included, passes through.
lanes_filter_link_warnings() {
    local known
    known=$(dirname "${BASH_SOURCE[0]}")/static-link-warnings.txt
    awk -v known="$known" '
        BEGIN { while ((getline line < known) > 0) if (line !~ /^#/ && line != "") pats[n++] = line }
        /warning:/ { for (i = 0; i < n; i++) if ($0 ~ pats[i]) { hidden++; next } }
        { print; fflush() }
        END { if (hidden) printf "setup: %d known-harmless static-link warnings hidden (see %s)\n", hidden, known }'
}

# The Python client the MCP tests and benchmarks drive `lanes mcp` with: the official `mcp`
# package from PyPI, in a venv under .build-venv (ignored by git). Idempotent: an existing venv
# with `mcp` importable is kept; nothing is fetched then.
LANES_VENV=${LANES_VENV:-$PWD/.build-venv}
LANES_PIP_PACKAGES=(mcp)
lanes_ensure_venv() {
    if [ -x "$LANES_VENV/bin/python3" ] && "$LANES_VENV/bin/python3" -c 'import mcp' 2>/dev/null; then
        return 0
    fi
    echo "setup: creating the Python venv $LANES_VENV with ${LANES_PIP_PACKAGES[*]}" >&2
    python3 -m venv "$LANES_VENV" >&2
    "$LANES_VENV/bin/pip" install -q "${LANES_PIP_PACKAGES[@]}" >&2
}
