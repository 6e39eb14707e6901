# A single-node Slurm cluster of this machine, for Tools/slurm/run.sh (sourced, not run).
#
# cluster_install P... installs the Debian packages P (slurmctld slurmd slurm-client munge) when missing
# cluster_start DIR    starts munged, slurmctld and slurmd as root under DIR/slurm.conf; every
#                      state, spool, log, pid file and socket lives in DIR (an empty
#                      folder); exports SLURM_CONF so sbatch/squeue/scontrol talk to this cluster
# cluster_stop         cancels the cluster's jobs, stops the three daemons it started (by the
#                      process ids it recorded) and checks none of them is left
#
# Why these settings: the daemons run as root in a machine that may be a container without
# systemd or a writable cgroup tree, so nothing may depend on cgroups (proctrack/linuxproc,
# task/none, jobacct_gather/none) and nothing on the packages' default paths (/etc/slurm,
# /run/munge, /var/spool/slurmd): a slurm or munge the machine already runs is left alone.
# The ports are chosen free at start for the same reason.

CLUSTER_DIR=""
CLUSTER_PIDS=()          # munged, slurmctld, slurmd, in start order
CLUSTER_START_TIMEOUT=${CLUSTER_START_TIMEOUT:-60}

cluster_log() { echo "slurm-cluster: $*"; }

cluster_install() {
    local missing=() p
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    cluster_log "installing Debian packages: ${missing[*]}"
    # The packages' maintainer scripts would start the system-wide munge (and try slurmctld and
    # slurmd on a default config); a policy-rc.d that refuses keeps them stopped: this test
    # starts its own daemons and leaves nothing running. Removed again if it was not there.
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# Tools/slurm/cluster.sh: no service starts during its apt-get install\nexit 101\n' > "$policy"
        chmod 755 "$policy"; made_policy=1
    fi
    local rc=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
    [ -n "$made_policy" ] && rm -f "$policy"
    if [ $rc -ne 0 ]; then cluster_log "apt-get install ${missing[*]} failed (status $rc)"; return $rc; fi
}

# A TCP port nothing listens on (bind to port 0 and read what the kernel gave).
cluster_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until COMMAND succeeds, at most SECONDS; 1 if it never did.
cluster_wait_for() {
    local seconds=$1; shift
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.5
    done
}

cluster_node_idle() { [ "$(sinfo -h -N -o %t 2>/dev/null)" = "idle" ]; }
# True when the controller lists no pending, running or completing job.
cluster_queue_empty() { local q; q=$(squeue -h -o %i 2>/dev/null) && [ -z "$q" ]; }

cluster_start() {
    CLUSTER_DIR=$1
    local d=$CLUSTER_DIR node cpus mem_mb ctld_port slurmd_port
    node=$(hostname -s)
    cpus=$(nproc)
    # Half the machine's memory for jobs, in MB (jobs here do not ask for memory).
    mem_mb=$(awk '/^MemTotal:/ {print int($2 / 2048)}' /proc/meminfo)
    ctld_port=$(cluster_free_port)
    slurmd_port=$(cluster_free_port)
    mkdir -p "$d/munge" "$d/state" "$d/spool" "$d/log"
    # munged wants its socket's folders searchable by all and writable by none but root.
    chmod 755 "$d" "$d/munge"

    dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$d/munge/munge.key"
    # Each daemon in its own session: a Ctrl-C meant for the test reaches the test, whose
    # cluster_stop then stops the jobs and daemons in order.
    BACKPACK_SLURM_CLUSTER="$d" setsid munged --foreground --socket="$d/munge/munge.socket" --key-file="$d/munge/munge.key" \
        --pid-file="$d/munge/munged.pid" --log-file="$d/log/munged.log" \
        --seed-file="$d/munge/munged.seed" >>"$d/log/munged.out" 2>&1 &
    CLUSTER_PIDS+=($!)
    if ! cluster_wait_for 20 munge --socket="$d/munge/munge.socket" --string=ping; then
        cluster_log "munged did not start:"; tail -20 "$d/log/munged.log" "$d/log/munged.out" 2>/dev/null
        return 1
    fi

    cat > "$d/slurm.conf" <<EOF
# Written by Tools/slurm/cluster.sh: a single-node cluster of $(hostname) under $d.
ClusterName=backpack-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/munge.socket
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$d/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# A job whose dependency can no longer be satisfied (a failed shard) is cancelled, not left pending.
DependencyParameters=kill_invalid_depend
ReturnToService=2
# Finished jobs stay visible to scontrol for 10 minutes (there is no accounting database).
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=60 State=UP
EOF
    : > "$d/plugstack.conf"
    export SLURM_CONF="$d/slurm.conf"
    # Every process of the cluster carries this variable (the daemons, slurmstepd, and the jobs,
    # which get the submitting shell's environment), so that cluster_stop can find any left.
    export BACKPACK_SLURM_CLUSTER="$d"

    setsid slurmctld -D -f "$SLURM_CONF" >>"$d/log/slurmctld.out" 2>&1 &
    CLUSTER_PIDS+=($!)
    setsid slurmd -D -f "$SLURM_CONF" -N "$node" >>"$d/log/slurmd.out" 2>&1 &
    CLUSTER_PIDS+=($!)
    if ! cluster_wait_for "$CLUSTER_START_TIMEOUT" cluster_node_idle; then
        cluster_log "the node did not become idle within ${CLUSTER_START_TIMEOUT} s; sinfo says: $(sinfo -h -N -o '%t %E' 2>&1)"
        local f; for f in "$d"/log/slurm*; do echo "--- $f"; tail -25 "$f"; done
        return 1
    fi
    cluster_log "node $node ($cpus CPUs) idle; slurm.conf: $SLURM_CONF"
}

# Process ids of live processes whose environment has BACKPACK_SLURM_CLUSTER=$CLUSTER_DIR.
cluster_processes() {
    local f pid
    for f in /proc/[0-9]*/environ; do
        pid=${f#/proc/}; pid=${pid%/environ}
        tr '\0' '\n' < "$f" 2>/dev/null | grep -qxF "BACKPACK_SLURM_CLUSTER=$CLUSTER_DIR" && echo "$pid"
    done
    return 0
}
cluster_none_left() { [ -z "$(cluster_processes)" ]; }

cluster_stop() {
    [ -n "$CLUSTER_DIR" ] || return 0
    local pid left node
    node=$(hostname -s)
    # This shell's children (tr, grep) must not count as the cluster's.
    unset BACKPACK_SLURM_CLUSTER
    # Cancel whatever the cluster still runs and wait (bounded) for the jobs to leave the queue
    # and their slurmstepd to remove its socket, so that no step outlives slurmd.
    if [ ${#CLUSTER_PIDS[@]} -ge 3 ]; then
        if ! cluster_queue_empty; then
            scancel --user="$(id -un)" 2>/dev/null || true
            cluster_wait_for 30 cluster_queue_empty || cluster_log "jobs still listed 30 s after scancel"
        fi
        cluster_wait_for 30 bash -c "! compgen -G '$CLUSTER_DIR/spool/${node}_*'" || cluster_log "job steps still running"
    fi
    # slurmd, slurmctld, munged: the reverse of start order.
    for ((i = ${#CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${CLUSTER_PIDS[$i]}
        kill -TERM "$pid" 2>/dev/null || continue
        cluster_wait_for 20 bash -c "! kill -0 $pid 2>/dev/null" || { kill -KILL "$pid" 2>/dev/null || true; }
        wait "$pid" 2>/dev/null || true
    done
    CLUSTER_PIDS=()
    if ! cluster_wait_for 10 cluster_none_left; then
        left=$(cluster_processes | paste -sd' ' -)
        cluster_log "processes of the cluster still running after stop, killed: $left"
        ps -o pid,ppid,stat,cmd -p "${left// /,}" 2>/dev/null || true
        for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
        return 1
    fi
    cluster_log "stopped munged, slurmctld and slurmd; no process of the cluster is left"
}
