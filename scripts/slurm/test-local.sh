#!/usr/bin/env bash
# A real Slurm test of the sharded sweep, on this machine alone (make test-slurm).
#
# It installs Debian's slurm-wlm and munge when missing, starts its own
# munged, slurmctld and slurmd on a one-node cluster configured in a
# temporary folder (fresh ports, no cgroups, no accounting), runs a small
# landscape sweep once locally and once through submit.sh as 3 array tasks
# plus their merge, and checks with "perturb compare" that the merged run
# equals the local one. Every daemon it started is stopped on exit; the
# temporary folder is removed, except its logs when the test fails.
#
# Environment: PERTURB (default: this checkout's bin/perturb),
# SLURM_TEST_TIMEOUT (seconds to wait for the jobs, default 600), TMPDIR.
set -euo pipefail

if [[ $# -gt 0 ]]; then
	sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"
	[[ "$1" == -h || "$1" == --help ]] && exit 0
	exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
perturb="${PERTURB:-$repo/bin/perturb}"
limit="${SLURM_TEST_TIMEOUT:-600}"
shards=3
start=$SECONDS

say() { printf 'test-slurm: %s\n' "$*"; }
fail() {
	printf 'test-slurm: FAIL: %s\n' "$*" >&2
	exit 1
}

[[ -x "$perturb" ]] || fail "no perturb binary at $perturb: run make build (or set PERTURB)"
perturb=$(realpath -e "$perturb")

# Root runs the daemons (SlurmUser=root). Not root: rerun under passwordless sudo.
if [[ "$(id -u)" != 0 ]]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		say "not root: rerunning under sudo"
		exec sudo -n PERTURB="$perturb" SLURM_TEST_TIMEOUT="$limit" TMPDIR="${TMPDIR:-/tmp}" bash "$0"
	fi
	fail "the Slurm test runs slurmctld, slurmd and munged as root: run it as root or with passwordless sudo"
fi

# State the EXIT trap cleans up.
tmp=""
policy_rc=""
munged_pid=""
ctld_pid=""
slurmd_pid=""
ok=0

stop_pid() { # stop_pid PID NAME: SIGTERM, wait up to 15 s, then SIGKILL.
	local pid="$1" name="$2" t
	[[ -n "$pid" ]] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((t = 0; t < 150; t++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			say "$name (pid $pid) ignored SIGTERM: killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

show_logs() {
	local f
	for f in "$tmp"/log/*.log "$tmp"/log/*.stderr "$tmp"/runs/slurm-*.out; do
		[[ -s "$f" ]] || continue
		# A daemon's stderr repeats its log file: show it only without one.
		[[ "$f" == *.stderr && -s "${f%.stderr}.log" ]] && continue
		printf '\n===== %s (last 60 lines) =====\n' "$f"
		tail -n 60 "$f"
	done
	printf '\n'
}

cleanup() {
	local rc=$? d pid cwd t
	set +e
	trap - EXIT INT TERM
	if [[ -n "$policy_rc" ]]; then
		rm -f "$policy_rc"
	fi
	if [[ -n "$ctld_pid" ]] && kill -0 "$ctld_pid" 2>/dev/null; then
		# Cancel what is left and give slurmd a moment to end the job steps.
		if [[ -n "$(squeue -h -o %i 2>/dev/null)" ]]; then
			say "cancelling the jobs left"
			scancel --user=root 2>/dev/null
			for ((t = 0; t < 30; t++)); do
				[[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break
				sleep 1
			done
		fi
	fi
	stop_pid "$slurmd_pid" slurmd
	stop_pid "$ctld_pid" slurmctld
	stop_pid "$munged_pid" munged
	if [[ -n "$tmp" && -d "$tmp" ]]; then
		# Job steps (slurmstepd, perturb) outlive slurmd: stop any process
		# still working in the temporary folder.
		for d in /proc/[0-9]*; do
			pid="${d#/proc/}"
			[[ "$pid" == "$$" ]] && continue
			cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
			if [[ "$cwd" == "$tmp" || "$cwd" == "$tmp"/* ]]; then
				say "stopping leftover process $pid ($(tr '\0' ' ' <"$d/cmdline" 2>/dev/null))"
				kill -TERM "$pid" 2>/dev/null
				sleep 1
				kill -KILL "$pid" 2>/dev/null
			fi
		done
		if [[ $rc == 0 && $ok == 1 ]]; then
			rm -rf "$tmp"
		else
			rm -rf "$tmp/munge-key" "$tmp/state" "$tmp/spool"
			say "logs kept in $tmp (slurm.conf, log/, runs/)"
		fi
	fi
	if [[ $rc == 0 && $ok == 1 ]]; then
		say "PASS ($((SECONDS - start)) s)"
	else
		[[ $rc != 0 ]] || rc=1
		say "FAIL (exit status $rc, $((SECONDS - start)) s)"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# (a) Slurm and MUNGE.
need=(slurmctld slurmd sbatch squeue scontrol sinfo scancel munged munge)
missing=()
for c in "${need[@]}"; do
	command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
if ((${#missing[@]} > 0)); then
	command -v apt-get >/dev/null 2>&1 ||
		fail "${missing[*]} missing and no apt-get here: install Slurm (slurmctld, slurmd, client commands) and MUNGE"
	say "installing slurm-wlm and munge (missing: ${missing[*]})"
	# Keep the packages' init scripts from starting system daemons.
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		policy_rc=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\n# temporary, from perturb scripts/slurm/test-local.sh\nexit 101\n' >"$policy_rc"
		chmod 755 "$policy_rc"
	fi
	t0=$SECONDS
	DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
		fail "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null ||
		fail "apt-get install slurm-wlm munge failed"
	if [[ -n "$policy_rc" ]]; then
		rm -f "$policy_rc"
		policy_rc=""
	fi
	say "installed in $((SECONDS - t0)) s"
	for c in "${need[@]}"; do
		command -v "$c" >/dev/null 2>&1 || fail "$c still missing after installing slurm-wlm and munge"
	done
fi

# The temporary folder. munged wants every directory above its socket
# searchable by all, and its key readable by its owner alone.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/perturb-slurm.XXXXXX")
chmod 755 "$tmp"
mkdir -p "$tmp/log" "$tmp/run" "$tmp/state" "$tmp/spool" "$tmp/runs"
mkdir -m 755 "$tmp/munge"
mkdir -m 700 "$tmp/munge-key"

# (b) A MUNGE key of our own and a munged on our own socket.
key="$tmp/munge-key/munge.key"
if command -v mungekey >/dev/null 2>&1; then
	mungekey --create --keyfile="$key"
else
	dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
fi
chmod 600 "$key"
socket="$tmp/munge/munge.socket"
munged --foreground --key-file="$key" --socket="$socket" \
	--pid-file="$tmp/munge/munged.pid" --seed-file="$tmp/munge/munged.seed" \
	>"$tmp/log/munged.log" 2>&1 &
munged_pid=$!
for ((t = 0; t < 100; t++)); do
	[[ -S "$socket" ]] && break
	kill -0 "$munged_pid" 2>/dev/null || break
	sleep 0.1
done
if ! munge --socket="$socket" --no-input | unmunge --socket="$socket" >/dev/null 2>&1; then
	show_logs
	fail "munged did not start (log above)"
fi

# (c) slurm.conf for one node: this host, on 127.0.0.1, on two free ports.
port_in_use() {
	if command -v ss >/dev/null 2>&1; then
		ss -Htan 2>/dev/null | awk '{ print $4 }' | grep -qE "[:.]$1\$"
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}
pick_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 30000))
		[[ "$p" == "${1:-}" ]] && continue
		port_in_use "$p" || {
			echo "$p"
			return 0
		}
	done
	return 1
}
ctld_port=$(pick_port) || fail "no free TCP port found for slurmctld"
slurmd_port=$(pick_port "$ctld_port") || fail "no free TCP port found for slurmd"
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
conf="$tmp/slurm.conf"
cat >"$conf" <<CONF
# One-node test cluster of perturb's scripts/slurm/test-local.sh.
ClusterName=perturbtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/run/slurmctld.pid
SlurmdPidFile=$tmp/run/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
KillWait=10
InactiveLimit=0
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$conf"
say "one-node cluster: $host, $cpus CPUs, $mem MB, slurmctld port $ctld_port, slurmd port $slurmd_port, in $tmp"

slurmctld -D -f "$conf" >"$tmp/log/slurmctld.stderr" 2>&1 &
ctld_pid=$!
slurmd -D -f "$conf" >"$tmp/log/slurmd.stderr" 2>&1 &
slurmd_pid=$!

# (d) Wait (at most 60 s) for the node to be idle.
state=""
for ((t = 0; t < 60; t++)); do
	kill -0 "$ctld_pid" 2>/dev/null || { show_logs; fail "slurmctld exited (logs above)"; }
	kill -0 "$slurmd_pid" 2>/dev/null || { show_logs; fail "slurmd exited (logs above)"; }
	state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
	[[ "$state" == idle ]] && break
	sleep 1
done
if [[ "$state" != idle ]]; then
	show_logs
	fail "node $host is not idle after 60 s (state: ${state:-unknown}; logs above)"
fi
say "node $host idle after $t s"

# (e) A small landscape sweep, locally and as $shards array tasks.
cfg="$tmp/slurm-test.toml"
cat >"$cfg" <<'TOML'
name  = "slurm-test"
seed  = 11
dtype = "float64"

[trials]
count = 20
n     = 10
etas  = [0.05, 0.1]

[[model]]
name  = "gauss"
inits = [0]

[[optimizer]]
name   = "sgd"
batch  = 1
epochs = 1

[[optimizer]]
name  = "gd"
steps = 10
TOML

"$perturb" run "$cfg" --out "$tmp/local" --workers 1 >"$tmp/log/local.log" 2>&1 ||
	{ cat "$tmp/log/local.log"; fail "the local run failed (output above)"; }

sub=$(PERTURB="$perturb" bash "$here/submit.sh" "$cfg" "$shards" "$tmp/runs" -- \
	--cpus-per-task=1 --mem=256M --time=10 2>&1) ||
	{ printf '%s\n' "$sub"; show_logs; fail "submit.sh failed (output above)"; }
printf '%s\n' "$sub" | sed 's/^/  | /'
array_id=$(printf '%s\n' "$sub" | awk '/^array job:/ { print $3 }')
merge_id=$(printf '%s\n' "$sub" | awk '/^merge job:/ { print $3 }')
[[ "$array_id" =~ ^[0-9]+$ && "$merge_id" =~ ^[0-9]+$ ]] ||
	fail "could not read the job ids from submit.sh's output (above)"

# Wait for the merge job to end (no accounting: scontrol show job).
job_field() { # job_field JOBID FIELD: FIELD of the job's first record
	scontrol -o show job "$1" 2>/dev/null | head -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}
merge_state=""
deadline=$((SECONDS + limit))
while ((SECONDS < deadline)); do
	kill -0 "$ctld_pid" 2>/dev/null || { show_logs; fail "slurmctld exited (logs above)"; }
	merge_state=$(job_field "$merge_id" JobState)
	case "$merge_state" in
	COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | PREEMPTED | BOOT_FAIL | DEADLINE)
		break
		;;
	PENDING)
		if [[ "$(job_field "$merge_id" Reason)" == DependencyNeverSatisfied ]]; then
			merge_state="PENDING (DependencyNeverSatisfied)"
			break
		fi
		;;
	esac
	sleep 2
done

array_report=$(scontrol -o show job "$array_id" 2>/dev/null |
	awk '{ id = ""; st = ""; ex = ""; for (i = 1; i <= NF; i++) {
		if ($i ~ /^JobId=/) id = substr($i, 7); if ($i ~ /^ArrayTaskId=/) t = substr($i, 13)
		if ($i ~ /^JobState=/) st = substr($i, 10); if ($i ~ /^ExitCode=/) ex = substr($i, 10) }
		print "task " t " (job " id "): " st ", exit " ex }')
say "array job $array_id:"
printf '%s\n' "$array_report" | sed 's/^/  /'
say "merge job $merge_id: ${merge_state:-unknown}, exit $(job_field "$merge_id" ExitCode)"

if [[ "$merge_state" != COMPLETED ]]; then
	show_logs
	((SECONDS < deadline)) || fail "the merge job had not ended after $limit s (state ${merge_state:-unknown}; logs above)"
	fail "the merge job ended ${merge_state:-unknown} (logs above)"
fi
bad=$(printf '%s\n' "$array_report" | grep -cv 'COMPLETED, exit 0:0$' || true)
if [[ "$bad" != 0 || $(printf '%s\n' "$array_report" | grep -c .) != "$shards" ]]; then
	show_logs
	fail "not every one of the $shards array tasks completed with exit 0 (above)"
fi
[[ "$(job_field "$merge_id" ExitCode)" == 0:0 ]] || { show_logs; fail "the merge job exited $(job_field "$merge_id" ExitCode)"; }

# (f) The merge reported neither missing nor duplicated trials, and the
# merged run equals the local one.
merge_log="$tmp/runs/slurm-perturb-merge-$merge_id.out"
[[ -f "$merge_log" ]] || { show_logs; fail "no merge log $merge_log"; }
if ! grep -qE '^merged ([0-9]+) of \1 trials from '"$shards"' runs .*\(0 duplicates dropped, 0 missing\)' "$merge_log"; then
	show_logs
	fail "the merge did not report all trials from $shards shards with 0 duplicates and 0 missing (log above)"
fi
if grep -qiE 'duplicat|missing' <(grep -v '(0 duplicates dropped, 0 missing)' "$merge_log"); then
	show_logs
	fail "the merge reported duplicated or missing trials (log above)"
fi
say "$(grep -E '^merged ' "$merge_log")"
if ! "$perturb" compare "$tmp/local" "$tmp/runs/merged" >"$tmp/log/compare.log" 2>&1; then
	cat "$tmp/log/compare.log"
	show_logs
	fail "perturb compare: the merged run differs from the local run (above)"
fi
say "$(tail -n 1 "$tmp/log/compare.log"): perturb compare local merged"
ok=1
