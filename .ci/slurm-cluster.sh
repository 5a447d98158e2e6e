#!/usr/bin/env bash
# Starts a one-node SLURM cluster on this machine, as root: a munge key, a
# slurm.conf for this host (every CPU schedulable on its own, processes tracked
# without cgroups), slurmctld and slurmd. Idempotent: a running cluster is left
# as it is. Needs Debian's slurmctld, slurmd, slurm-client and munge.
#
#   sudo .ci/slurm-cluster.sh          # start (and wait until the node is idle)
#   sudo .ci/slurm-cluster.sh stop     # stop both daemons
set -euo pipefail

if [ "${1:-}" = stop ]; then
    pkill -x slurmd || true
    pkill -x slurmctld || true
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "run as root (the daemons and the munge key need it)" >&2
    exit 1
fi
for cmd in munged slurmctld slurmd sinfo; do
    command -v "$cmd" >/dev/null || {
        echo "$cmd is missing: apt-get install munge slurmctld slurmd slurm-client" >&2
        exit 1
    }
done

if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mix|alloc'; then
    echo "SLURM is already running: $(sinfo -h -o '%N %T %c')"
    exit 0
fi

# munge: one key, readable only by its daemon.
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged

host=$(hostname -s)
# This node as slurmd sees it (CPUs, sockets, memory).
node=$(slurmd -C | head -n 1)
install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=trainlab
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
KillWait=30
$node State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mix|alloc'; then
        echo "SLURM is up: $(sinfo -h -o '%N %T %c')"
        exit 0
    fi
    sleep 1
done
echo "SLURM did not come up; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
sinfo >&2 || true
exit 1
