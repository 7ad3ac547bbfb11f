#!/bin/sh
# Runs INSIDE a proxy-mode step (issue 12). Prints one line per probe: "NAME ok" when the
# thing worked, "NAME failed CODE" when it did not. $1: the test host's address; the workspace
# holds tls.pem (the TLS test host's certificate).
addr=$1
cd "$(dirname "$0")"
probe() {
    name=$1; shift
    if out=$("$@" 2>&1); then echo "$name ok"; else echo "$name failed $?"; fi
    printf '%s\n' "$out" | head -c 300 | sed "s/^/  [$name] /"; echo
}
# Allowed: curl (plain HTTP, TLS via CONNECT, SOCKS5), Python urllib, pip, git.
probe curl_http curl -sSf http://web.ln12.test/index.html
probe curl_https curl -sSf --cacert ./tls.pem https://tls.ln12.test/index.html
probe curl_socks curl -sSf -x socks5h://127.0.0.1:3128 http://web.ln12.test/index.html
probe curl_cidr curl -sSf "http://$addr/index.html"
probe python_urllib python3 -c 'import urllib.request; assert b"ln12" in urllib.request.urlopen("http://web.ln12.test/index.html").read()'
probe python_https python3 -c 'import ssl, urllib.request; c = ssl.create_default_context(cafile="tls.pem"); assert b"ln12" in urllib.request.urlopen("https://tls.ln12.test/index.html", context=c).read()'
probe pip python3 -m pip install -q --disable-pip-version-check --no-cache-dir --index-url http://pypi.ln12.test/simple \
    --trusted-host pypi.ln12.test --target /tmp/pipt ln12pkg
probe pip_import env PYTHONPATH=/tmp/pipt python3 -c 'import ln12pkg; assert ln12pkg.MARK == "ln12pkg-installed"'
probe git_clone git clone -q http://git.ln12.test/repo.git /tmp/repo
probe git_content grep -q "ln12 repo content" /tmp/repo/README
# Forbidden: each must fail.
probe not_allowed curl -sSf http://evil.example/
probe denied_subdomain curl -sSf http://blocked.ln12.test/
probe wrong_port curl -sSf http://web.ln12.test:8080/
probe private_name curl -sSf http://inside.ln12.test/
probe metadata_name curl -sSf http://metadata.ln12.test/latest/meta-data/
probe direct_ip curl -sSf --noproxy '*' --max-time 5 "http://$addr/index.html"
probe sni_mismatch python3 -c '
import socket, ssl
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"CONNECT tls.ln12.test:443 HTTP/1.1\r\nHost: tls.ln12.test:443\r\n\r\n")
assert s.recv(100).startswith(b"HTTP/1.1 200")
c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
t = c.wrap_socket(s, server_hostname="evil.example")
t.sendall(b"GET / HTTP/1.0\r\n\r\n"); assert t.recv(100)
'
probe raw_socket python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)'
probe dns_udp python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01", ("'"$addr"'", 53))
s.recvfrom(512)'
probe dns_lookup python3 -c 'import socket; socket.getaddrinfo("evil.example", 443)'
echo probes-done
