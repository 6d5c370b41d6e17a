#!/usr/bin/env bash
# A single-node SLURM cluster with accounting, on this machine, for `make test-slurm`.
#
#   scripts/ci/slurm_cluster.sh up      # install (apt-get, Debian) if needed, configure, start
#   scripts/ci/slurm_cluster.sh down    # stop the daemons `up` started (by their PIDs)
#   scripts/ci/slurm_cluster.sh status  # the daemons' PIDs, sinfo and sacct
#
# Needs root on Debian (bookworm ships SLURM 22.05). No systemd: every daemon runs in the
# foreground under this script's control and is stopped by the PID recorded in $STATE/pids/.
# Accounting (slurmdbd on MariaDB) is what lets submitit read job states through `sacct`.
set -euo pipefail

STATE=${IJR_SLURM_STATE:-/var/tmp/ijr-slurm}  # pids, logs, spool and controller state
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
CLUSTER=ijrci
PARTITION=ci
DB_PASS=ijr-ci-only  # a local MariaDB account reachable only through its socket on this machine
NODE=$(hostname -s)

log() { echo "slurm_cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} yourself"
  log "installing ${missing[*]}"
  # keep the packages' maintainer scripts from starting services (there is no init system here)
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ $own_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

alive() { [ -f "$STATE/pids/$1" ] && kill -0 "$(cat "$STATE/pids/$1")" 2>/dev/null; }

# start NAME CMD...: run CMD in the background (foreground mode of the daemon), record its PID
start() {
  local name=$1; shift
  if alive "$name"; then log "$name already running (pid $(cat "$STATE/pids/$name"))"; return; fi
  setsid "$@" >>"$STATE/logs/$name.out" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$name"
  log "started $name (pid $!)"
}

# wait_for DAEMON SECONDS CMD...: poll CMD until it succeeds; stop early if DAEMON died
wait_for() {
  local name=$1 limit=$2; shift 2
  for _ in $(seq 1 "$limit"); do
    "$@" >/dev/null 2>&1 && return 0
    alive "$name" || { tail -n 5 "$STATE/logs/$name"* >&2; die "$name exited; logs in $STATE/logs/"; }
    sleep 1
  done
  die "$name not ready after ${limit}s ($*); logs in $STATE/logs/"
}

write_configs() {
  local cpus mem_mb
  cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc honours OMP_NUM_THREADS
  mem_mb=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10))
  for f in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf; do
    if [ -e "$f" ] && ! head -n 1 "$f" | grep -q 'written by scripts/ci/slurm_cluster.sh'; then
      die "$f exists and was not written by this script: refusing to replace a real cluster's config"
    fi
  done
  mkdir -p /etc/slurm "$STATE"/{ctld,spool} && chown slurm:slurm "$STATE"/{ctld,spool} "$STATE/logs"
  cat >/etc/slurm/slurm.conf <<EOF
# written by scripts/ci/slurm_cluster.sh: one node, accounting through slurmdbd
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/ctld/slurmctld.pid
SlurmdPidFile=$STATE/spool/slurmd.pid
SlurmctldLogFile=$STATE/logs/slurmctld.log
SlurmdLogFile=$STATE/logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=10
MinJobAge=600
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat >/etc/slurm/slurmdbd.conf <<EOF
# written by scripts/ci/slurm_cluster.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=$STATE/ctld/slurmdbd.pid
LogFile=$STATE/logs/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
  chown slurm:slurm /etc/slurm/slurmdbd.conf && chmod 600 /etc/slurm/slurmdbd.conf
}

start_database() {
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  start mariadb /usr/sbin/mariadbd --user=mysql --socket=/run/mysqld/mysqld.sock \
    --pid-file=/run/mysqld/ijr-ci.pid --bind-address=127.0.0.1
  wait_for mariadb 60 mariadb -e 'SELECT 1'
  mariadb <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
}

up() {
  [ "$(id -u)" -eq 0 ] || die "needs root (it installs packages and starts daemons)"
  local t0=$SECONDS
  install_packages
  log "packages ready ($((SECONDS - t0)) s)"
  mkdir -p "$STATE/pids" "$STATE/logs"
  write_configs
  mkdir -p /run/munge && chown munge:munge /run/munge
  [ -s /etc/munge/munge.key ] || die "/etc/munge/munge.key missing (the munge package creates it)"
  start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
  wait_for munged 30 bash -c 'munge -n | unmunge'
  start_database
  start slurmdbd /usr/sbin/slurmdbd -D
  wait_for slurmdbd 60 sacctmgr -n list cluster
  start slurmctld /usr/sbin/slurmctld -D -i
  wait_for slurmctld 60 scontrol ping
  start slurmd /usr/sbin/slurmd -D -N "$NODE"
  wait_for slurmd 60 bash -c "sinfo -h -n $NODE -o %T | grep -Eq '^(idle|mixed|allocated)'"
  wait_for slurmdbd 60 bash -c "sacctmgr -n list cluster format=cluster | grep -q $CLUSTER"
  log "up in $((SECONDS - t0)) s: partition $PARTITION, $(grep -o "CPUs=[0-9]*" /etc/slurm/slurm.conf) on $NODE, accounting on"
}

down() {
  for name in slurmd slurmctld slurmdbd mariadb munged; do
    alive "$name" || { rm -f "$STATE/pids/$name"; continue; }
    local pid
    pid=$(cat "$STATE/pids/$name")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$STATE/pids/$name"
    log "stopped $name (pid $pid)"
  done
}

status() {
  for name in munged mariadb slurmdbd slurmctld slurmd; do
    if alive "$name"; then echo "$name: pid $(cat "$STATE/pids/$name")"; else echo "$name: down"; fi
  done
  sinfo || true
  sacct -X -n -o JobID,JobName,State,ExitCode | tail -20 || true
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
