#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests and for trying the cluster profile
# without a cluster:  scripts/slurm-local.sh install | start | stop | status
#
# Installs Debian's slurmctld/slurmd/slurm-client/munge if missing (as root), writes
# /etc/slurm/slurm.conf (job steps lose SLURM_CONF, so it must live there), and starts munged,
# slurmctld and slurmd by hand (no systemd on these machines). Two partitions on one node:
# `cpu` (default) and `gpu`; the node advertises one GPU as a generic resource so that GPU
# rules' requests (--gpus) are accepted and can be checked, though no device is behind it.
# Accounting is off: sacct does not work, so Snakemake's executor must poll with squeue and
# finished jobs must stay visible to squeue long enough (MinJobAge, see below).
# A config not written by this script is never overwritten.
set -euo pipefail

STATE=${TRANSFERLAB_SLURM_DIR:-/tmp/transferlab-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by transferlab scripts/slurm-local.sh"
HOST=$(hostname -s)

die() { echo "slurm-local: $*" >&2; exit 1; }

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null && return
  [ "$(id -u)" = 0 ] || die "SLURM is not installed and we are not root: install slurmctld slurmd slurm-client munge"
  echo "slurm-local: installing slurmctld slurmd slurm-client munge (Debian packages)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

write_config() {
  if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script; refusing to overwrite a real cluster's config"
  fi
  local cpus mem
  cpus=$(nproc)
  # Leave the OS a tenth of the memory; SLURM refuses jobs asking for more than RealMemory.
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d"
  local tmp
  tmp=$(mktemp /etc/slurm/.slurm.conf.XXXXXX)
  cat >"$tmp" <<EOF
$MARK
ClusterName=transferlab
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# No cgroups in containers: track processes by parentage, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay queryable by squeue/scontrol for 300 s: Snakemake's executor polls
# with squeue here and needs MinJobAge >= 3 x its init-seconds-before-status-checks.
MinJobAge=300
# Time between SIGTERM and SIGKILL at a time limit or scancel: time to write a checkpoint.
KillWait=30
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
EOF
  chmod 644 "$tmp"
  mv "$tmp" "$CONF"
  # A stand-in GPU "generic resource": schedulable and visible in job records. slurmd drops a
  # gpu gres that has no device file, so /dev/null stands in for /dev/nvidia0.
  printf '%s\nNodeName=%s Name=gpu File=/dev/null\n' "$MARK" "$HOST" >/etc/slurm/gres.conf.tmp
  mv /etc/slurm/gres.conf.tmp /etc/slurm/gres.conf
}

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

start_munge() {
  if munge -n </dev/null >/dev/null 2>&1; then return; fi
  [ -s /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || create-munge-key; }
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  install -d -o munge -g munge -m 755 /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && return; sleep 0.1; done
  die "munged did not come up"
}

start() {
  install_packages
  [ "$(id -u)" = 0 ] || die "starting the daemons needs root"
  write_config
  start_munge
  running slurmctld || /usr/sbin/slurmctld -i
  running slurmd || /usr/sbin/slurmd
  for _ in $(seq 100); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
      echo "slurm-local: up ($HOST, $(nproc) CPUs, partitions cpu+gpu; logs in $STATE)" >&2
      return
    fi
    # A node left DOWN/DRAIN by an earlier unclean stop comes back on resume.
    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    sleep 0.2
  done
  tail -n 20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
  die "node $HOST did not become idle"
}

stop() {
  # Jobs first, so that nothing is left writing into a test's directory.
  if command -v scancel >/dev/null && running slurmctld; then scancel --full --quiet -u "$(id -un)" 2>/dev/null || true; fi
  for d in slurmd slurmctld; do
    if running "$d"; then
      pid=$(cat "$STATE/$d.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  echo "slurm-local: stopped (munged left running; config kept at $CONF)" >&2
}

case "${1:-}" in
  install) install_packages ;;
  start) start ;;
  stop) stop ;;
  status) running slurmctld && running slurmd && sinfo ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
