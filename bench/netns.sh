#!/bin/sh
# netns.sh - two network namespaces joined by a veth pair, so that a
# client and a sink can talk over a "remote" link on this machine.
#
#   bench/netns.sh up            create volleyA (10.77.0.1) and volleyB
#                                (10.77.0.2), lo up in each
#   bench/netns.sh down          remove both (the veth pair goes with them)
#   bench/netns.sh exec A|B CMD...   run CMD inside volleyA or volleyB
#
# Needs root.  Traffic stays inside these namespaces: 10.77.0.0/24 exists
# only on the veth pair, and neither namespace has a default route.
#
# Delay.  This kernel has no netem ("tc qdisc add dev X root netem delay
# 10ms" fails: "Specified qdisc kind is unknown"), so the delay comes from
# bench/delay_relay, a user-space TCP relay.  The sink runs in B, the
# clients in A, and one relay runs in A next to the clients:
#
#   A: client -> 10.77.0.1:2526 delay_relay --delay-ms 10 --+
#                                                            | veth
#   B:                               sink on 10.77.0.2:2525 <-+
#
#   bench/netns.sh up
#   bench/netns.sh exec B /usr/sbin/smtp-sink -u nobody -c 10.77.0.2:2525 1000 &
#   bench/netns.sh exec A build/bench/delay_relay --listen 10.77.0.1:2526 \
#       --to 10.77.0.2:2525 --delay-ms 10 &
#   bench/netns.sh exec A build/bench/raw_replay --server 10.77.0.1:2526 --rtt
#   ... stop the two by their PIDs ...
#   bench/netns.sh down
#
# Why 10 ms in one relay: the relay delays each direction by D, so a
# command and its reply take 2*D, and D = 10 gives the 20 ms round trip.
# (A relay in each namespace would need D = 5 each and double the copying
# for nothing.)  Why in A: the clients' target, 10.77.0.1:PORT, is then
# local to them, and the one real cross-namespace hop, relay -> sink,
# reaches the sink from 10.77.0.1 over the veth, as a remote client
# would; the sink's namespace runs nothing but the sink.  Placing it in B
# (listening on 10.77.0.2) gives the same 20 ms; it is a matter of which
# side the measured programs should share their CPU with, and on this
# 2-core machine they all share it anyway.
set -eu

NS_A=volleyA
NS_B=volleyB
ADDR_A=10.77.0.1
ADDR_B=10.77.0.2
VETH_A=veth-volleyA
VETH_B=veth-volleyB

ns_exists() {
	ip netns list | awk '{print $1}' | grep -qx "$1"
}

netns_up() {
	for ns in "$NS_A" "$NS_B"; do
		if ns_exists "$ns"; then
			echo "netns.sh: $ns exists already: run 'bench/netns.sh down' first" >&2
			exit 1
		fi
	done
	ip netns add "$NS_A"
	ip netns add "$NS_B"
	# Created in A and moved, so no end ever sits in the root namespace
	# under a name that could clash.
	ip -n "$NS_A" link add "$VETH_A" type veth peer name "$VETH_B"
	ip -n "$NS_A" link set "$VETH_B" netns "$NS_B"
	ip -n "$NS_A" addr add "$ADDR_A/24" dev "$VETH_A"
	ip -n "$NS_B" addr add "$ADDR_B/24" dev "$VETH_B"
	for ns in "$NS_A" "$NS_B"; do
		ip -n "$ns" link set lo up
	done
	ip -n "$NS_A" link set "$VETH_A" up
	ip -n "$NS_B" link set "$VETH_B" up
	echo "netns.sh: $NS_A ($ADDR_A) <-> $NS_B ($ADDR_B) up"
}

netns_down() {
	for ns in "$NS_A" "$NS_B"; do
		if ns_exists "$ns"; then
			ip netns del "$ns"
		fi
	done
	echo "netns.sh: $NS_A and $NS_B removed"
}

usage() {
	echo "usage: bench/netns.sh up | down | exec A|B CMD..." >&2
	exit 2
}

[ $# -ge 1 ] || usage
if [ "$(id -u)" != 0 ]; then
	echo "netns.sh: needs root (ip netns)" >&2
	exit 1
fi
case $1 in
up)
	netns_up
	;;
down)
	netns_down
	;;
exec)
	[ $# -ge 3 ] || usage
	case $2 in
	A) ns=$NS_A ;;
	B) ns=$NS_B ;;
	*) usage ;;
	esac
	shift 2
	exec ip netns exec "$ns" "$@"
	;;
*)
	usage
	;;
esac
