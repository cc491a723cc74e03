#!/usr/bin/env bash
# One shard of a perturb sweep per Slurm array task.
#
# Array index I (1, 2, ..., N) runs shard I/N: the array is 1-based, so
# that a task's index is its shard number (index 0 is refused). Submit it
# with scripts/slurm/submit.sh, which sets the variables below and the
# array, or by hand:
#
#   sbatch --array=1-N --export=ALL,CONFIG=/abs/sweep.toml,RUNS=/abs/runs/sweep,SHARDS=N array.sh
#
# Resubmitting a task (sbatch --array=I ... with SHARDS=N) resumes its shard:
# the trials already stored in $RUNS/shard-I-of-N are skipped.
#
# Edit the resources to suit your cluster and sweep. A relative --output is
# relative to the job's working directory (submit.sh sets it to $RUNS).
#SBATCH --job-name=perturb
##SBATCH --partition=YOUR_PARTITION
#SBATCH --time=04:00:00
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --output=slurm-%x-%A_%a.out
# Ask Slurm for SIGTERM 120 s before the time limit: perturb then stores the
# trials in progress and exits with 130, and a resubmitted task resumes.
#SBATCH --signal=B:TERM@120

set -euo pipefail

# What to run. The environment (submit.sh, sbatch --export) overrides these
# defaults; use absolute paths on a filesystem every node sees.
PERTURB="${PERTURB:-perturb}"              # the perturb binary (or a name on PATH)
CONFIG="${CONFIG:-configs/quickstart.toml}" # the sweep's TOML config
RUNS="${RUNS:-runs/slurm}"                 # shard I goes to $RUNS/shard-I-of-N
SHARDS="${SHARDS:-}"                       # N; empty: the array's task count (a full 1-N array only)
MAX_MEMORY="${MAX_MEMORY:-}"               # perturb --max-memory in GiB; empty: half the job's memory

die() {
	printf 'array.sh: %s\n' "$*" >&2
	exit 2
}

[[ -n "${SLURM_ARRAY_TASK_ID:-}" ]] ||
	die "not an array task (SLURM_ARRAY_TASK_ID is unset): submit with sbatch --array=1-N, or use scripts/slurm/submit.sh"

i="$SLURM_ARRAY_TASK_ID"
n="$SHARDS"
if [[ -z "$n" ]]; then
	# Without SHARDS, only a full 1-N array says what N is: a resubmitted
	# subset (--array=3) has SLURM_ARRAY_TASK_COUNT=1.
	if [[ "${SLURM_ARRAY_TASK_MIN:-}" == 1 && "${SLURM_ARRAY_TASK_MAX:-}" == "${SLURM_ARRAY_TASK_COUNT:-}" ]]; then
		n="$SLURM_ARRAY_TASK_COUNT"
	else
		die "set SHARDS=N (the number of shards): array ${SLURM_ARRAY_TASK_MIN:-?}-${SLURM_ARRAY_TASK_MAX:-?} with ${SLURM_ARRAY_TASK_COUNT:-?} tasks is not a full 1-N array"
	fi
fi
[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "SHARDS must be a positive integer, not '$n'"
if ! [[ "$i" =~ ^[0-9]+$ ]] || ((i < 1 || i > n)); then
	die "array index $i is not a shard of 1..$n: the array is 1-based (--array=1-$n)"
fi

workers="${SLURM_CPUS_PER_TASK:-${SLURM_CPUS_ON_NODE:-1}}"
args=(run "$CONFIG" --shard "$i/$n" --out "$RUNS/shard-$i-of-$n" --workers "$workers")
# perturb's --max-memory bounds its working buffers only: the other half of
# the job's memory is for the data set, the Go runtime and SQLite.
if [[ -z "$MAX_MEMORY" ]]; then
	mb="${SLURM_MEM_PER_NODE:-}"
	if [[ -z "$mb" && -n "${SLURM_MEM_PER_CPU:-}" ]]; then
		mb=$((SLURM_MEM_PER_CPU * workers))
	fi
	if [[ -n "$mb" && "$mb" != 0 ]]; then
		MAX_MEMORY=$(awk -v mb="$mb" 'BEGIN { g = 0.5 * mb / 1024; printf "%.3f", (g < 0.01 ? 0.01 : g) }')
	fi
fi
if [[ -n "$MAX_MEMORY" ]]; then
	args+=(--max-memory "$MAX_MEMORY")
fi

mkdir -p "$RUNS"
printf 'array.sh: job %s, task %s on %s: shard %s/%s\n' \
	"${SLURM_ARRAY_JOB_ID:-?}" "$i" "$(hostname)" "$i" "$n"
printf 'array.sh: %s' "$PERTURB"
printf ' %q' "${args[@]}"
printf '\n'

# exec: perturb is the batch shell itself, so Slurm's SIGTERM (time limit,
# scancel) reaches it directly and the task's exit status is perturb's
# (0 done, 130 interrupted: resubmit to resume, other: an error).
exec "$PERTURB" "${args[@]}"
