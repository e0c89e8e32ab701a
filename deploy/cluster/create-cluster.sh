#!/bin/sh
# The one-shot job of docker-compose.cluster.yml that joins its Redis nodes into a cluster.
# Compose runs it on every `up`, so it finds out what is there before it acts:
#
#   no node holds a cluster yet (a first start): create one, CLUSTER_REPLICAS replicas per
#       master; redis-cli makes the first nodes of CLUSTER_NODES the masters;
#   every node holds the cluster (nodes.conf on its volume): have each node meet the others
#       at their current addresses, as containers that `up` recreated may have new IPs,
#       which the nodes' saved configuration does not know;
#   anything else (a node lost its volume, say): stop, and say so; guessing could join an
#       empty node as a master that claims slots nobody else holds any more.
#
# Then it waits until every node says cluster_state:ok, every node is seen in its role and
# every replica holds its master's data, and exits 0: what depends on this job finds the
# cluster whole.
#
# CLUSTER_NODES     host:port of every node, space-separated
# CLUSTER_REPLICAS  replicas per master (default 1)
# REDISCLI_AUTH     the nodes' password (redis-cli reads it)
# CLUSTER_WAIT_S    how long to wait for that (default 60)
# POSIX sh, redis-cli, getent and awk: what both redis:7-alpine and Debian's redis-server have.
set -eu

: "${CLUSTER_NODES:?not set}"
replicas=${CLUSTER_REPLICAS:-1}
wait_s=${CLUSTER_WAIT_S:-60}

# CLUSTER MEET and `redis-cli --cluster create` (Redis 7.0) take IP addresses only.
address() {
    ip=$(getent hosts "${1%:*}" | awk '{ print $1; exit }')
    if [ -z "$ip" ]; then
        echo "cannot resolve ${1%:*}" >&2
        exit 1
    fi
    echo "$ip:${1##*:}"
}

cli() {
    host=${1%:*}
    port=${1##*:}
    shift
    redis-cli -h "$host" -p "$port" "$@"
}

# One field of a node's CLUSTER INFO, empty where the node does not answer.
info() {
    cli "$1" cluster info 2> /dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

nodes=""
for node in $CLUSTER_NODES; do
    nodes="$nodes $(address "$node")"
done

total=0
fresh=0
joined=0
for node in $nodes; do
    total=$((total + 1))
    slots=$(info "$node" cluster_slots_assigned)
    if [ -z "$slots" ]; then
        echo "$node does not answer CLUSTER INFO" >&2
        exit 1
    elif [ "$slots" = 0 ] && [ "$(info "$node" cluster_known_nodes)" = 1 ]; then
        fresh=$((fresh + 1))
    elif [ "$slots" = 16384 ]; then
        joined=$((joined + 1))
    fi
done

if [ "$fresh" = "$total" ]; then
    echo "creating a cluster of $total nodes, $replicas replica(s) per master:$nodes"
    # shellcheck disable=SC2086  # one argument per node
    redis-cli --cluster create $nodes --cluster-replicas "$replicas" --cluster-yes
elif [ "$joined" = "$total" ]; then
    echo "the $total nodes hold a cluster already; telling each the others' addresses:$nodes"
    for other in $nodes; do
        # The bus port too: cluster-port, or 10000 above the port where that is 0.
        bus=$(cli "$other" config get cluster-port | tr -d '\r' | sed -n 2p)
        if [ "${bus:-0}" = 0 ]; then
            bus=$((${other##*:} + 10000))
        fi
        for node in $nodes; do
            if [ "$node" != "$other" ]; then
                cli "$node" cluster meet "${other%:*}" "${other##*:}" "$bus" > /dev/null
            fi
        done
    done
else
    echo "of $total nodes, $fresh are empty and $joined hold the whole cluster: not" >&2
    echo "touching it." >&2
    echo "Either start over (docker compose -f docker-compose.cluster.yml down -v, which" >&2
    echo "deletes every buffer), or add the empty nodes yourself: redis-cli --cluster" >&2
    echo "add-node NEW_IP:6379 OLD_IP:6379 --cluster-slave, then CLUSTER FORGET the lost one." >&2
    exit 1
fi

# Done when every node says cluster_state:ok, the first one sees every node in its role
# (replicas are told their master last, and the news travels in the nodes' gossip), and
# every master's replicas hold its data (until then, stores waiting on REPLAY_REPLICA_ACKS
# would time out, and clients are not told of the replica).
first=${nodes# }
first=${first%% *}
roles() {
    cli "$first" cluster nodes | awk '
        $3 ~ /master/ && $9 != "" { masters++ }
        $3 ~ /slave/ { replicas++ }
        $3 ~ /fail/ { failing++ }
        END { printf "%d masters, %d replicas, %d failing\n", masters, replicas, failing }'
}
synced() {
    for each in $nodes; do
        replication=$(cli "$each" info replication | tr -d '\r')
        case $replication in
            *role:master*)
                online=$(echo "$replication" | grep -c '^slave[0-9]*:.*state=online' || true)
                [ "$online" -ge "$replicas" ] || return 1 ;;
        esac
    done
}
masters=$((total / (replicas + 1)))
expected="$masters masters, $((total - masters)) replicas, 0 failing"
deadline=$(($(date +%s) + wait_s))
for node in $nodes; do
    until [ "$(info "$node" cluster_state)" = ok ] && [ "$(roles)" = "$expected" ] && synced
    do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            state=$(info "$node" cluster_state)
            echo "not settled in $wait_s s: $node says cluster_state:$state;" \
                "$first sees $(roles), expected $expected; replicas in sync:" \
                "$(synced && echo yes || echo no)" >&2
            cli "$first" cluster nodes >&2 || true
            exit 1
        fi
        sleep 1
    done
done
echo "cluster ok: $(roles)"
