# ---- egress (issue 12) --------------------------------------------------------------------------
# Sourced by scripts/bench (or run alone: `sudo scripts/bench.d/egress.sh [LANES_BINARY]`).
# Makes a test host in a network namespace (Tests/EscapeTests/Probes/egress-fixture.sh, root
# only), then measures, from the same client programs:
#   - connection set-up: 200 sequential HTTP GETs of a small file, each on a new connection,
#     direct from the host vs from inside a proxy-mode step through its proxy (ms per request);
#   - throughput: a 1 GiB download with curl, direct vs through the proxy (MB/s).
# Adds a hyperfine row `lanes-proxy` (a proxy-mode step running /bin/true) when sourced.
egress_main() {
    local lanes=$1 root=$2 work=$3
    if [ "$(id -u)" != 0 ]; then echo "bench: egress: skipped (needs root for ip netns)" >&2; return 0; fi
    local fx="$work/egress-fixture" id=$((200 + $$ % 50))
    mkdir -p "$fx"
    sh "$root/Tests/EscapeTests/Probes/egress-fixture.sh" up "$fx" "$id" >&2 || { echo "bench: egress: fixture failed" >&2; return 0; }
    local addr="10.212.$id.2"
    truncate -s 1G "$fx/www/big.bin"
    # Python's http.server copies in user space (~60 MB/s here): the 1 GiB rows use a sendfile(2)
    # server on :9000 in the test host, so the server is not the bottleneck of either path.
    cat > "$fx/fast.py" <<'PY'
import os, socket, sys, threading
path = sys.argv[1]
size = os.path.getsize(path)
srv = socket.create_server(("0.0.0.0", 9000), backlog=64)
def serve(c):
    with c:
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(4096)
            if not d:
                return
            buf += d
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
        with open(path, "rb") as f:
            c.sendfile(f)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
    python3 -c 'import os, sys; os.closerange(3, 65536); os.execvp(sys.argv[1], sys.argv[1:])' \
        ip netns exec "ln12-$id" python3 "$fx/fast.py" "$fx/www/big.bin" >"$fx/fast.log" 2>&1 </dev/null &
    echo $! > "$fx/fast.pid"
    sleep 0.5
    local cfg="$work/egress-cfg" ws="$work/egress-ws"
    mkdir -p "$cfg/Profiles" "$cfg/Lanes" "$ws"
    printf 'description = "bench"\n[filesystem]\nworkspace = "read-write"\n[network]\nmode = "proxy"\nallow = ["*.ln12.test", "*.ln12.test:9000", "%s/32", "%s/32:9000"]\n' "$addr" "$addr" > "$cfg/Profiles/net.toml"
    printf 'description = "bench"\nowner = "bench"\nprofile = "net"\n' > "$cfg/Lanes/bench.toml"
    cat > "$ws/conns.py" <<'PY'
import sys, time, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
opener = urllib.request.build_opener() if len(sys.argv) < 4 else urllib.request.build_opener(urllib.request.ProxyHandler({}))
opener.open(url).read()
t = time.perf_counter()
for _ in range(n):
    opener.open(url).read()
print("%.3f" % ((time.perf_counter() - t) * 1000 / n))
PY
    local run="unshare -m sh -c 'mount --bind $fx/hosts /etc/hosts && exec \"\$@\"' sh"
    local direct_ms proxy_ms direct_bps proxy_bps
    direct_ms=$(python3 "$ws/conns.py" "http://$addr/index.html" 200 noproxy)
    proxy_ms=$(eval "$run" "$lanes" run --config "$cfg" bench --workspace "$ws" -- python3 conns.py http://web.ln12.test/index.html 200 2>/dev/null)
    # Warm-up: the first read of the sparse file fills the page cache; neither row should pay it.
    curl -s --noproxy '*' -o /dev/null "http://$addr:9000/big.bin"
    direct_bps=$(curl -s --noproxy '*' -o /dev/null -w '%{speed_download}' "http://$addr:9000/big.bin")
    proxy_bps=$(eval "$run" "$lanes" run --config "$cfg" bench --workspace "$ws" -- \
        curl -s -o /dev/null -w '%{speed_download}' http://web.ln12.test:9000/big.bin 2>/dev/null)
    python3 - "$direct_ms" "$proxy_ms" "$direct_bps" "$proxy_bps" >&2 <<'PY'
import sys
dm, pm, db, pb = (float(x or 0) for x in sys.argv[1:])
print("bench: egress (issue 12): through the step's proxy vs direct from the host")
print("| measure | direct | through the proxy | difference |")
print("| --- | --- | --- | --- |")
print(f"| HTTP request on a new connection | {dm:.3f} ms | {pm:.3f} ms | +{pm - dm:.3f} ms |")
print(f"| 1 GiB download (curl) | {db / 1e6:.0f} MB/s | {pb / 1e6:.0f} MB/s | {100 * pb / db if db else 0:.0f} % of direct |")
PY
    sh "$root/Tests/EscapeTests/Probes/egress-fixture.sh" down "$fx" "$id" >&2
    egress_cfg=$cfg
}
if [ -n "${BASH_SOURCE:-}" ] && [ "${BASH_SOURCE[0]}" != "$0" ]; then
    egress_main "$lanes" "$root" "$work"
    if [ -n "${egress_cfg:-}" ]; then
        extra_names+=("lanes-proxy")
        extra_cmds+=("$lanes run --config $egress_cfg bench --workspace $ws -- /bin/true")
    fi
else
    set -eu
    root=$(cd "$(dirname "$0")/../.." && pwd)
    lanes=${1:-$root/.build/release/lanes}
    work=$(mktemp -d /tmp/lanes-egress-bench.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    egress_main "$lanes" "$root" "$work"
fi
# ---- end egress ---------------------------------------------------------------------------------
