# shellcheck shell=bash
# A real Slurm 22.05 cluster on this one host, for suanli's Slurm executor tests: munged,
# slurmctld and four slurmd (n1..n4, NodeHostname=localhost, one port each), each node with
# 8 fake `h100` GPUs (device files symlinked to /dev/null, so Slurm really counts and binds them).
#
# Source it (`. .ci/slurm.sh`) as root, or with passwordless sudo; it is idempotent and reads no
# stdin. It exports SUANLI_TEST_SLURM=1 and SUANLI_SLURM_CONF (the slurm.conf it wrote).
# Everything lives under SUANLI_SLURM_DIR (default /var/tmp/suanli-slurm). See docs/slurm.md.

suanli_slurm_setup() {
  local as_root dir conf host node port
  if [ "$(id -u)" = 0 ]; then as_root=""; else as_root="sudo -n"; fi
  dir="${SUANLI_SLURM_DIR:-/var/tmp/suanli-slurm}"
  conf="$dir/etc/slurm.conf"
  if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
      --no-install-recommends slurm-wlm munge >/dev/null
  fi
  # munged, as the munge user; the Debian package created the key.
  if ! pgrep -u munge -x munged >/dev/null 2>&1; then
    $as_root mkdir -p /run/munge
    $as_root chown munge:munge /run/munge
    $as_root runuser -u munge -- /usr/sbin/munged
  fi
  host="$(hostname -s)"
  $as_root mkdir -p "$dir/etc" "$dir/dev" "$dir/spool/ctld" "$dir/log"
  for i in 0 1 2 3 4 5 6 7; do $as_root ln -sfn /dev/null "$dir/dev/nvidia$i"; done
  for node in 1 2 3 4; do $as_root mkdir -p "$dir/spool/n$node"; done
  $as_root tee "$dir/etc/gres.conf" >/dev/null <<EOF
AutoDetect=off
Name=gpu Type=h100 File=$dir/dev/nvidia[0-7]
EOF
  $as_root tee "$conf.new" >/dev/null <<EOF
ClusterName=suanli-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=16817
SlurmdSpoolDir=$dir/spool/%n
StateSaveLocation=$dir/spool/ctld
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
AuthType=auth/munge
CommunicationParameters=NoInAddrAny
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,default_queue_depth=1000
MessageTimeout=30
SlurmdTimeout=30
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
MaxJobCount=20000
KillWait=2
InactiveLimit=0
NodeName=n1 NodeHostname=localhost NodeAddr=127.0.0.1 Port=16901 CPUs=16 RealMemory=4000 Gres=gpu:h100:8 State=UNKNOWN
NodeName=n2 NodeHostname=localhost NodeAddr=127.0.0.1 Port=16902 CPUs=16 RealMemory=4000 Gres=gpu:h100:8 State=UNKNOWN
NodeName=n3 NodeHostname=localhost NodeAddr=127.0.0.1 Port=16903 CPUs=16 RealMemory=4000 Gres=gpu:h100:8 State=UNKNOWN
NodeName=n4 NodeHostname=localhost NodeAddr=127.0.0.1 Port=16904 CPUs=16 RealMemory=4000 Gres=gpu:h100:8 State=UNKNOWN
PartitionName=gpu Nodes=n[1-4] Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  local changed=0
  if ! cmp -s "$conf.new" "$conf"; then
    $as_root mv "$conf.new" "$conf"
    changed=1
  else
    $as_root rm -f "$conf.new"
  fi
  export SLURM_CONF="$conf"
  if [ "$changed" = 1 ]; then
    # A new configuration: restart whatever runs from an older one.
    for pidfile in "$dir"/slurmctld.pid "$dir"/slurmd-n*.pid; do
      [ -f "$pidfile" ] && $as_root kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 1
  fi
  if ! { [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; }; then
    $as_root env SLURM_CONF="$conf" slurmctld -c
  fi
  for node in 1 2 3 4; do
    if ! { [ -f "$dir/slurmd-n$node.pid" ] && kill -0 "$(cat "$dir/slurmd-n$node.pid")" 2>/dev/null; }; then
      $as_root env SLURM_CONF="$conf" slurmd -N "n$node"
    fi
  done
  # Nodes left down or drained by an earlier test run go back to service.
  $as_root env SLURM_CONF="$conf" scontrol update nodename=n[1-4] state=resume >/dev/null 2>&1 || true
  port=0
  for _ in $(seq 1 60); do
    port=$(env SLURM_CONF="$conf" sinfo -h -N -t idle,mixed,allocated -o '%N' 2>/dev/null | sort -u | wc -l)
    [ "$port" -ge 4 ] && break
    sleep 1
  done
  if [ "$port" -lt 4 ]; then
    echo "slurm.sh: only $port of 4 nodes came up; see $dir/log" >&2
    env SLURM_CONF="$conf" sinfo -N -l >&2 || true
    return 1
  fi
  export SUANLI_TEST_SLURM=1
  export SUANLI_SLURM_CONF="$conf"
}

suanli_slurm_setup
