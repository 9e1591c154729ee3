#!/usr/bin/env bash
# Runs a command inside a private network namespace: loopback, plus one veth
# pair holding 198.51.100.1 (a documentation address) with no route out.
# WebRTC stacks gather candidates on non-loopback interfaces; here the only
# one exists inside the namespace, so test traffic cannot leave the machine.
#
#   scripts/in-private-network.sh COMMAND [ARGS...]
set -euo pipefail
if [ "${SIGSERVE_IN_NETNS:-}" = 1 ]; then
  ip link set lo up
  ip link add sig0 type veth peer name sig1
  ip addr add 198.51.100.1/24 dev sig0
  ip link set sig0 up
  ip link set sig1 up
  exec "$@"
fi
if SIGSERVE_IN_NETNS=1 unshare -n true 2>/dev/null; then
  SIGSERVE_IN_NETNS=1 exec unshare -n "$0" "$@"
fi
if [ "${CI:-}" = true ]; then
  echo "in-private-network: cannot create a network namespace (unshare -n needs root)" >&2
  exit 1
fi
echo "in-private-network: no network namespace (not root?); running on the host network" >&2
exec "$@"
