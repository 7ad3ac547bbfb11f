#!/bin/sh
# Test hosts for the egress tests (issue 12), never any other address:
#   egress-fixture.sh up DIR ID    a network namespace ln12-ID with a veth pair (host side
#                                  10.212.ID.1, test host 10.212.ID.2) running: HTTP on :80 and
#                                  :8080 (web root DIR/www: a file, a pip index, a git repo served
#                                  dumb-HTTP), TLS on :443 (self-signed cert DIR/tls.pem for
#                                  tls.ln12.test), and a private hosts file DIR/hosts.
#   egress-fixture.sh down DIR ID  kills the servers and deletes the namespace and veth.
# The caller bind-mounts DIR/hosts on /etc/hosts in its own mount namespace (unshare -m).
set -eu
cmd=$1 dir=$2 id=$3
ns=ln12-$id host_if=ln12h$id peer_if=ln12p$id
net=10.212.$id
case $cmd in
down)
    for p in "$dir"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    ip link del "$host_if" 2>/dev/null || true
    exit 0 ;;
up) ;;
*) echo "usage: $0 up|down DIR ID" >&2; exit 2 ;;
esac

mkdir -p "$dir/www/simple/ln12pkg" "$dir/www/pkgs"
echo "hello from the ln12 test host" > "$dir/www/index.html"
# A 1-file pure-Python wheel and a PEP 503 simple index for it.
python3 - "$dir/www" <<'PY'
import sys, zipfile, hashlib, base64, os
root = sys.argv[1]
whl = os.path.join(root, "pkgs", "ln12pkg-1.0-py3-none-any.whl")
files = {
    "ln12pkg/__init__.py": b"MARK = 'ln12pkg-installed'\n",
    "ln12pkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: ln12pkg\nVersion: 1.0\n",
    "ln12pkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: ln12\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for name, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{name},sha256={digest},{len(data)}")
record.append("ln12pkg-1.0.dist-info/RECORD,,")
with zipfile.ZipFile(whl, "w") as z:
    for name, data in files.items():
        z.writestr(name, data)
    z.writestr("ln12pkg-1.0.dist-info/RECORD", "\n".join(record) + "\n")
sha = hashlib.sha256(open(whl, "rb").read()).hexdigest()
open(os.path.join(root, "simple", "ln12pkg", "index.html"), "w").write(
    f'<html><body><a href="../../pkgs/ln12pkg-1.0-py3-none-any.whl#sha256={sha}">ln12pkg-1.0-py3-none-any.whl</a></body></html>\n')
open(os.path.join(root, "simple", "index.html"), "w").write('<html><body><a href="ln12pkg/">ln12pkg</a></body></html>\n')
PY
# A git repository served over dumb HTTP.
rm -rf "$dir/src" "$dir/www/repo.git"
git init -q "$dir/src"
echo "ln12 repo content" > "$dir/src/README"
git -C "$dir/src" -c user.name=t -c user.email=t@t add README
git -C "$dir/src" -c user.name=t -c user.email=t@t commit -qm init
git clone -q --bare "$dir/src" "$dir/www/repo.git"
git -C "$dir/www/repo.git" update-server-info
# A self-signed certificate for tls.ln12.test.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=tls.ln12.test \
    -addext subjectAltName=DNS:tls.ln12.test -keyout "$dir/tls.key" -out "$dir/tls.pem" 2>/dev/null
cat > "$dir/tls.py" <<'PY'
import http.server, ssl, sys, os
os.chdir(sys.argv[1])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
s = http.server.ThreadingHTTPServer(("0.0.0.0", 443), http.server.SimpleHTTPRequestHandler)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
PY

ip netns del "$ns" 2>/dev/null || true
ip link del "$host_if" 2>/dev/null || true
ip netns add "$ns"
ip link add "$host_if" type veth peer name "$peer_if"
ip link set "$peer_if" netns "$ns"
ip addr add "$net.1/24" dev "$host_if"
ip link set "$host_if" up
ip netns exec "$ns" ip addr add "$net.2/24" dev "$peer_if"
ip netns exec "$ns" ip link set "$peer_if" up
ip netns exec "$ns" ip link set lo up
cd "$dir/www"
# A server started here must not keep any fd of the caller (the test runner waits on some).
start() {
    name=$1; shift
    python3 -c 'import os, sys; os.closerange(3, 65536); os.execvp(sys.argv[1], sys.argv[1:])' \
        ip netns exec "$ns" "$@" >"$dir/$name.log" 2>&1 </dev/null &
    echo $! > "$dir/$name.pid"
}
start http80 python3 -m http.server 80 --bind 0.0.0.0
start http8080 python3 -m http.server 8080 --bind 0.0.0.0
start tls python3 "$dir/tls.py" "$dir/www" "$dir/tls.pem" "$dir/tls.key"

cat > "$dir/hosts" <<HOSTS
127.0.0.1 localhost
$net.2 web.ln12.test pypi.ln12.test git.ln12.test tls.ln12.test other.ln12.test blocked.ln12.test
10.213.$id.9 inside.ln12.test
169.254.169.254 metadata.ln12.test
HOSTS
# Wait (bounded) until the three servers answer.
i=0
while [ $i -lt 100 ]; do
    if curl -s -o /dev/null "http://$net.2/" && curl -s -o /dev/null "http://$net.2:8080/" \
        && curl -sk -o /dev/null "https://$net.2/"; then exit 0; fi
    i=$((i + 1)); sleep 0.1
done
echo "egress fixture: servers did not come up" >&2
exit 1
