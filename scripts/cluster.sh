#!/usr/bin/env bash
# Tries cluster mode on this machine: starts a redis-server, N sigserve nodes
# (node dist/cli.js with REDIS_URL) and nginx with deploy/nginx/sigserve.conf,
# all on loopback, then waits. Ctrl-C (or SIGTERM, or the end of --duration)
# stops exactly what it started, by PID, and removes its temporary folder.
#
#   bash scripts/cluster.sh [--nodes N] [--port P] [--duration SECONDS]
#
# --nodes     number of sigserve nodes (default 2)
# --port      nginx's port on 127.0.0.1 (default 8080; 0 picks a free one)
# --duration  stop by itself after this many seconds (default 3600)
# Extra settings reach every node through the environment (e.g. NODE_TIMEOUT);
# node logs (LOG_LEVEL info or debug) are in the folder printed as `logs`.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=2
port=8080
duration=3600
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$nodes" =~ ^[1-9][0-9]?$ ]] || { echo "cluster.sh: --nodes must be 1..99" >&2; exit 2; }
[[ "$duration" =~ ^[0-9]+$ ]] || { echo "cluster.sh: --duration must be seconds" >&2; exit 2; }

command -v redis-server >/dev/null || { echo "cluster.sh: redis-server missing; run: apt-get install -y redis-server" >&2; exit 1; }
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$nginx_bin" ] || { echo "cluster.sh: nginx missing; run: apt-get install -y nginx" >&2; exit 1; }
[ -f dist/cli.js ] || npm run --silent build

work="$(mktemp -d /tmp/sigserve-cluster.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  trap - EXIT INT TERM
  # Newest first: nginx, then the nodes (they unregister from Redis), then Redis.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
# Waits up to 15 s for a file to contain a pattern.
wait_for() {
  for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "cluster.sh: timed out waiting for $3; log:" >&2
  tail -n 20 "$1" >&2
  exit 1
}

redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for "$work/redis.log" "Ready to accept connections" "redis-server"
redis_url="redis://127.0.0.1:$redis_port"

upstreams=""
node_urls=()
for ((n = 0; n < nodes; n++)); do
  # The `listening` line (info) tells the node's port.
  level="${LOG_LEVEL:-info}"
  [ "$level" = debug ] || level=info
  REDIS_URL="$redis_url" HOST=127.0.0.1 PORT=0 LOG_LEVEL="$level" TRUSTED_PROXIES="${TRUSTED_PROXIES:-loopback}" \
    node dist/cli.js >"$work/node$n.log" 2>&1 &
  pids+=($!)
  wait_for "$work/node$n.log" '"msg":"listening"' "node $n"
  node_port="$(grep -m1 '"msg":"listening"' "$work/node$n.log" | grep -o '"port":[0-9]*' | cut -d: -f2)"
  upstreams+="    server 127.0.0.1:$node_port max_fails=1 fail_timeout=5s;"$'\n'
  node_urls+=("http://127.0.0.1:$node_port")
done

[ "$port" = 0 ] && port="$(free_port)"
# The shipped config, with this run's nodes and port.
awk -v upstreams="$upstreams" -v port="$port" '
  /# BEGIN nodes/ { print; printf "%s", upstreams; skip = 1; next }
  /# END nodes/ { skip = 0 }
  skip { next }
  /# LISTEN/ { print "    listen 127.0.0.1:" port ";"; next }
  { print }
' deploy/nginx/sigserve.conf >"$work/sigserve.conf"
mkdir -p "$work/tmp"
chmod 777 "$work/tmp"
cat >"$work/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    include $work/sigserve.conf;
}
CONF
"$nginx_bin" -t -q -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log"
"$nginx_bin" -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log" &
pids+=($!)
for _ in $(seq 1 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/nginx-error.log" >&2; exit 1; }
  sleep 0.05
done

echo "redis $redis_url"
for ((n = 0; n < nodes; n++)); do echo "node $n ${node_urls[n]} pid ${pids[n + 1]}"; done
echo "nginx http://127.0.0.1:$port pid ${pids[-1]}"
echo "logs $work"
echo "ready: open http://127.0.0.1:$port/ ; Ctrl-C stops everything (or after ${duration} s)"

sleep "$duration" &
pids+=($!)
wait "${pids[-1]}" || true
