#!/usr/bin/env python3
"""Writes hostile.jsonl: hostile requests and the router's expected decision
under router-config.json. The expectations are written out here by hand,
per technique, from the policy in filters/router/README.md; they are not
computed by the Rust code, so the corpus test can fail.

Run: python3 filters/logic/tests/corpus/generate.py  (rewrites the file)."""
import base64, json, os

CID0 = "QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTotM"
CID1 = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
CID_EMPTY = "bafkqaaa"
BAD_CIDS = ["QmNotACid", "QmZnrPBqsrNg5iuHuFzhWg9bxwHFAcH3ojWFALyURhTot0", "bafyNOTVALID", "gc", "12345", "zzzzzz"]
TOKEN = "corpus-token-0123456789"
BEARER = ("authorization", "Bearer " + TOKEN)
BASIC = ("authorization", "Basic " + base64.b64encode(b"alice:wonderland-42").decode())
WRONG_BEARER = ("authorization", "Bearer corpus-token-0123456788")
WRONG_BASIC = ("authorization", "Basic " + base64.b64encode(b"alice:wonderland-41").decode())

rows = []
ids = set()

def add(id, method, target, expect, headers=(), http="1.1", envoy=None):
    assert id not in ids, id
    ids.add(id)
    row = {"id": id, "method": method, "target": target,
           "headers": [list(h) for h in headers], "http": http, "expect": expect}
    if envoy is not None:
        # Envoy answers this one itself, before any filter runs.
        row["envoy"] = envoy
    rows.append(row)

# Commands off the allowlist (some are subcommands of allowed ones).
DENIED = ["shutdown", "config", "config/show", "config/replace", "config/profile/apply", "key/gen",
          "key/rm", "key/list", "key/rename", "key/export", "files/write", "files/rm", "files/cp",
          "files/mkdir", "files/read", "block/rm", "name/publish", "swarm/connect", "swarm/disconnect",
          "swarm/peers", "bootstrap/add", "bootstrap/rm", "log/level", "repo/verify", "dht/put",
          "routing/put", "pin/remote/add", "pin/remote/service/add", "p2p/forward", "pubsub/pub",
          "diag/profile", "update", "object/patch/add-link", "filestore/ls", "id", "stats/bw",
          "dag/import", "version/deps", "cid/format", "refs/local"]

def upper(cmd):
    return cmd.upper()

def first_letter_encoded(cmd):
    return "%{:02X}".format(ord(cmd[0])) + cmd[1:]

for cmd in DENIED:
    c = cmd.replace("/", "-")
    add(f"deny-{c}-plain", "POST", f"/api/v0/{cmd}", 403)
    add(f"deny-{c}-bearer", "POST", f"/api/v0/{cmd}", 403, [BEARER])
    add(f"deny-{c}-double-slash", "POST", f"/api/v0//{cmd}", 403)
    add(f"deny-{c}-trailing-slash", "POST", f"/api/v0/{cmd}/", 403)
    add(f"deny-{c}-upper", "POST", f"/api/v0/{upper(cmd)}", 403)
    add(f"deny-{c}-pct-letter", "POST", f"/api/v0/{first_letter_encoded(cmd)}", 403)
    add(f"deny-{c}-dotdot", "POST", f"/api/v0/version/../{cmd}", 400)
    add(f"deny-{c}-pct-dotdot", "POST", f"/api/v0/version/%2e%2E/{cmd}", 400)
    add(f"deny-{c}-semicolon", "POST", f"/api/v0/{cmd};jsessionid=1", 403)
    add(f"deny-{c}-absolute", "POST", f"http://ipfs.example.org/api/v0/{cmd}", 403)
    add(f"deny-{c}-http10", "POST", f"/api/v0/{cmd}", 403, http="1.0")
    add(f"deny-{c}-http2", "POST", f"/api/v0/{cmd}", 403, [BEARER], http="2")
    if "/" in cmd:
        add(f"deny-{c}-pct-slash", "POST", "/api/v0/" + cmd.replace("/", "%2F"), 400)
    add(f"deny-{c}-spoofed-backend", "POST", f"/api/v0/{cmd}", 403, [("x-ipfs-edge-backend", "kubo")])

# Prefix variants.
for i, p in enumerate(["/API/v0/shutdown", "/api/V0/shutdown", "/Api/v0/shutdown", "/api/v1/shutdown",
                       "/api/v0;x/shutdown", "/api;/v0/shutdown", "/api/v0%2Fshutdown", "/api%2fv0/shutdown",
                       "/./api/v0/shutdown", "/x/../api/v0/shutdown", "/api/./v0/shutdown",
                       "/api\\v0\\shutdown", "/api/v0/shut%5Cdown", "/api/v0/shutdown%00",
                       "/api/v0/shutdown%0a", "/api/v0/shut%zzdown", "/api/v0/shutdown%", "/api/v0/shutdown#frag",
                       "api/v0/shutdown", "*", "/api/v0/%2e/shutdown", "/api/v0/.%2E/shutdown"]):
    expect = 404 if i < 6 else 400
    # Envoy 1.40's HTTP/1 parser refuses a fragment, a relative target and
    # `*` for POST itself (400), before any filter runs.
    envoy = 400 if p in ("/api/v0/shutdown#frag", "api/v0/shutdown", "*") else None
    add(f"prefix-{i}", "POST", p, expect, envoy=envoy)

# Methods and method overrides.
for m in ["post", "Post", "pOST"]:
    # Envoy 1.40's HTTP/1 parser refuses a method not in upper case (400).
    add(f"method-case-{m}", m, "/api/v0/version", 400, envoy=400)
for m in ["GET", "PUT", "DELETE", "PATCH", "HEAD", "TRACE", "CONNECT"]:
    # Envoy 1.40 refuses an HTTP/1 CONNECT with a path (400) by itself.
    envoy = 400 if m == "CONNECT" else None
    add(f"rpc-method-{m}", m, "/api/v0/version", 405, envoy=envoy)
    add(f"rpc-method-{m}-pin-add", m, f"/api/v0/pin/add?arg={CID0}", 405, [BEARER], envoy=envoy)
for h in ["x-http-method-override", "x-http-method", "x-method-override"]:
    for m in ["GET", "POST", "DELETE"]:
        add(f"override-{h}-{m}-rpc", "POST", "/api/v0/version", 400, [(h, m)])
        add(f"override-{h}-{m}-gateway", "GET", f"/ipfs/{CID0}", 400, [(h, m)])
    add(f"override-{h}-rest", "GET", "/pins", 400, [(h, "DELETE")])

# Public reads, with evasions that must still land on the right backend.
READS = [("cat", "kubo"), ("get", "kubo"), ("ls", "kubo"), ("block/get", "kubo"), ("block/stat", "kubo"),
         ("dag/get", "kubo"), ("dag/stat", "kubo"), ("dag/resolve", "kubo"), ("pin/ls", "proxy")]
for cmd, be in READS:
    c = cmd.replace("/", "-")
    add(f"read-{c}", "POST", f"/api/v0/{cmd}?arg={CID0}", be)
    add(f"read-{c}-v1", "POST", f"/api/v0/{cmd}?arg={CID1}", be)
    add(f"read-{c}-path-arg", "POST", f"/api/v0/{cmd}/{CID1}", be)
    add(f"read-{c}-ipfs-path", "POST", f"/api/v0/{cmd}?arg=/ipfs/{CID0}/dir/file", be)
    add(f"read-{c}-double-slash", "POST", f"/api/v0//{cmd}?arg={CID0}", be)
    add(f"read-{c}-absolute", "POST", f"https://ipfs.example.org/api/v0/{cmd}?arg={CID0}", be, http="1.0")
    add(f"read-{c}-spoof", "POST", f"/api/v0/{cmd}?arg={CID0}", be, [("x-ipfs-edge-backend", "rest")])
    for j, bad in enumerate(BAD_CIDS[:3]):
        add(f"read-{c}-bad-{j}", "POST", f"/api/v0/{cmd}?arg={bad}", 400)
    add(f"read-{c}-second-arg-bad", "POST", f"/api/v0/{cmd}?arg={CID0}&arg=../../etc", 400)
    add(f"read-{c}-dot-in-arg", "POST", f"/api/v0/{cmd}?arg=/ipfs/{CID0}/../x", 400)
    add(f"read-{c}-encoded-key", "POST", f"/api/v0/{cmd}?%61rg=nope", 400)
    add(f"read-{c}-semicolon-query", "POST", f"/api/v0/{cmd}?arg={CID0};arg=nope", 400)
for cmd, be in [("version", "kubo"), ("resolve", "kubo"), ("name/resolve", "kubo"), ("repo/stat", "proxy")]:
    add(f"read-{cmd.replace('/', '-')}", "POST", f"/api/v0/{cmd}", be)

# Writes: credential needed.
WRITES = [("add", ""), ("pin/add", f"?arg={CID0}"), ("pin/rm", f"?arg={CID1}"),
          ("pin/update", f"?arg={CID0}&arg={CID1}"), ("block/put", ""), ("dag/put", ""), ("repo/gc", "")]
for cmd, q in WRITES:
    c = cmd.replace("/", "-")
    t = f"/api/v0/{cmd}{q}"
    add(f"write-{c}-anon", "POST", t, 401)
    add(f"write-{c}-anon-http2", "POST", t, 401, http="2")
    add(f"write-{c}-wrong-bearer", "POST", t, 401, [WRONG_BEARER])
    add(f"write-{c}-wrong-basic", "POST", t, 401, [WRONG_BASIC])
    add(f"write-{c}-token-as-basic", "POST", t, 401, [("authorization", "Basic " + TOKEN)])
    add(f"write-{c}-token-prefix", "POST", t, 401, [("authorization", "Bearer " + TOKEN[:-1])])
    add(f"write-{c}-token-suffix", "POST", t, 401, [("authorization", "Bearer " + TOKEN + "x")])
    add(f"write-{c}-two-auth", "POST", t, 401, [BEARER, WRONG_BEARER])
    add(f"write-{c}-unknown-scheme", "POST", t, 401, [("authorization", "Token " + TOKEN)])
    add(f"write-{c}-bearer", "POST", t, "proxy", [BEARER])
    add(f"write-{c}-basic", "POST", t, "proxy", [BASIC])
    add(f"write-{c}-bearer-lowercase-scheme", "POST", t, "proxy", [("authorization", "bearer " + TOKEN)])
    add(f"write-{c}-spoof-kubo", "POST", t, 401, [("x-ipfs-edge-backend", "kubo")])
    add(f"write-{c}-get", "GET", t, 405, [BEARER])
for cmd in ["pin/add", "pin/rm", "pin/update"]:
    c = cmd.replace("/", "-")
    for j, bad in enumerate(BAD_CIDS):
        add(f"write-{c}-bad-cid-{j}", "POST", f"/api/v0/{cmd}?arg={bad}", 400, [BEARER])
    add(f"write-{c}-good-then-bad", "POST", f"/api/v0/{cmd}?arg={CID0}&arg=bad", 400, [BEARER])
    add(f"write-{c}-path-arg", "POST", f"/api/v0/{cmd}/{CID0}", "proxy", [BEARER])
    add(f"write-{c}-path-arg-anon", "POST", f"/api/v0/{cmd}/{CID0}", 401)
    add(f"write-{c}-path-and-bad-query", "POST", f"/api/v0/{cmd}/{CID0}?arg=x", 400, [BEARER])
    add(f"write-{c}-ipns-arg", "POST", f"/api/v0/{cmd}?arg=/ipns/docs.ipfs.tech", "proxy", [BEARER])
    add(f"write-{c}-bad-ipns", "POST", f"/api/v0/{cmd}?arg=/ipns/a%20b", 400, [BEARER])
    add(f"write-{c}-anon-bad", "POST", f"/api/v0/{cmd}?arg=bad", 401)

# Gateway.
for m in ["GET", "HEAD", "OPTIONS"]:
    add(f"gw-{m}-v0", m, f"/ipfs/{CID0}", "gateway")
    add(f"gw-{m}-v1-path", m, f"/ipfs/{CID1}/wiki/index.html", "gateway")
    add(f"gw-{m}-ipns", m, "/ipns/docs.ipfs.tech/", "gateway")
for m in ["POST", "PUT", "DELETE", "PATCH"]:
    add(f"gw-{m}", m, f"/ipfs/{CID0}", 405)
    add(f"gw-{m}-ipns", m, "/ipns/docs.ipfs.tech", 405)
for j, bad in enumerate(BAD_CIDS):
    add(f"gw-bad-cid-{j}", "GET", f"/ipfs/{bad}", 400)
for i, (t, e) in enumerate([
    (f"/ipfs//{CID0}", "gateway"), (f"/ipfs/{CID0}//a//b/", "gateway"), (f"/ipfs/{CID_EMPTY}", "gateway"),
    (f"/ipfs/{CID0}?format=car", "gateway"), (f"/ipfs/{CID0}/a;b=c", "gateway"),
    (f"/ipfs/{CID0}/../../api/v0/shutdown", 400), (f"/ipfs/{CID0}/%2e%2e/%2e%2e/api/v0/shutdown", 400),
    (f"/ipfs/{CID0}%2F..%2F..%2Fapi%2Fv0%2Fshutdown", 400), (f"/ipfs/{CID0}/a%2Fb", 400),
    ("/ipfs/", 400), ("/ipfs", 400), ("/ipns/", 400), ("/ipns/bad!name", 400), ("/ipns/a%00b", 400),
    (f"/IPFS/{CID0}", 404), (f"/Ipfs/{CID0}", 404), (f"/ipfs;x/{CID0}", 404),
    (f"/%69pfs/{CID0}", "gateway"), (f"http://evil.example/ipfs/{CID0}", "gateway"),
    (f"/ipfs/{CID0}/x?arg=a;b", 400), (f"/ipfs/{CID0}/\\..\\..\\api", 400),
]):
    add(f"gw-target-{i}", "GET", t, e)
add("gw-spoof-rest", "GET", f"/ipfs/{CID0}", "gateway", [("x-ipfs-edge-backend", "rest")])
add("gw-spoof-kubo-http2", "GET", f"/ipfs/{CID0}", "gateway", [("x-ipfs-edge-backend", "kubo")], http="2")

# /ipfs/gc: REST for writes, the gateway (bad CID) for reads.
add("gc-post-anon", "POST", "/ipfs/gc", 401)
add("gc-post-bearer", "POST", "/ipfs/gc", "rest", [BEARER])
add("gc-post-basic-http10", "POST", "/ipfs/gc", "rest", [BASIC], http="1.0")
add("gc-get", "GET", "/ipfs/gc", 400)
add("gc-head", "HEAD", "/ipfs/gc", 400)
add("gc-put", "PUT", "/ipfs/gc", 405, [BEARER])
add("gc-post-double-slash", "POST", "//ipfs//gc/", 401)
add("gc-post-upper", "POST", "/ipfs/GC", 405)
add("gc-post-spoof", "POST", "/ipfs/gc", 401, [("x-ipfs-edge-backend", "rest")])

# Cluster REST.
for p in ["/id", "/version", "/peers", "/pins", "/allocations", "/health", "/health/graph", "/health/alerts",
          "/health/bandwidth", "/monitor/metrics", "/monitor/metrics/freespace", f"/pins/{CID0}",
          f"/allocations/{CID1}"]:
    add(f"rest-get{p.replace('/', '-')}", "GET", p, "rest")
for p in ["/id", "/pins", "/version"]:
    for m in ["PUT", "DELETE", "PATCH", "HEAD"]:
        add(f"rest-{m}{p.replace('/', '-')}", m, p, 405)
for m, p in [("POST", f"/pins/{CID0}"), ("DELETE", f"/pins/{CID0}"), ("POST", f"/pins/ipfs/{CID0}/a"),
             ("DELETE", f"/pins/ipns/docs.ipfs.tech"), ("POST", f"/pins/{CID1}/recover"), ("POST", "/pins/recover"),
             ("POST", "/add")]:
    n = f"rest-{m}{p.replace('/', '-')}"[:80]
    add(n + "-anon", m, p, 401)
    add(n + "-bearer", m, p, "rest", [BEARER])
    add(n + "-wrong", m, p, 401, [WRONG_BASIC])
for m, p in [("POST", "/peers"), ("DELETE", "/peers/12D3KooWJqfyU6rTvamvmPY3ajvurGmS1a9Z1XhsRZVpJeJfb8uS"), ("POST", "/token")]:
    n = f"rest-{m}{p.replace('/', '-')}"[:60]
    add(n + "-anon", m, p, 403)
    add(n + "-bearer", m, p, 403, [BEARER])
for i, (m, p, e) in enumerate([
    ("GET", "/pins/nope", 400), ("POST", "/pins/nope", 400), ("DELETE", "/pins/ipfs/nope/x", 400),
    ("GET", "/ID", 404), ("GET", "/debug/pprof/", 404), ("GET", "/webui", 404), ("GET", "/metrics", 404),
    ("GET", "/pins/..%2f..%2fid", 400), ("GET", "//id//", "rest"), ("GET", "/%69d", "rest"),
    ("GET", "/id;x", 404), ("GET", "/health/graph/..", 400), ("POST", "/ipns/gc", 405),
]):
    add(f"rest-misc-{i}", m, p, e, [BEARER] if m != "GET" else [])

# Health paths.
for i, (m, t, e) in enumerate([
    ("GET", "/", "health"), ("HEAD", "/", "health"), ("GET", "//", "health"), ("GET", "/?probe=1", "health"),
    ("GET", "http://lb.internal/", "health"), ("POST", "/", 405), ("DELETE", "/", 405), ("OPTIONS", "/", 405),
    ("GET", "/%2e", 400), ("GET", "/..", 400), ("GET", "/%2e%2e/", 400),
]):
    add(f"health-{i}", m, t, e, http="1.0" if i == 1 else "1.1")
add("health-spoof", "GET", "/", "health", [("x-ipfs-edge-backend", "kubo")])

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile.jsonl")
with open(out, "w") as f:
    for r in rows:
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
print(f"{len(rows)} requests -> {out}")
