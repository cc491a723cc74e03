#!/usr/bin/env bash
# Merge the shards of a perturb sweep into one run: the Slurm job that
# scripts/slurm/submit.sh queues after the array (afterok: it starts once
# every array task has succeeded). By hand:
#
#   sbatch --export=ALL,RUNS=/abs/runs/sweep,SHARDS=N merge.sh
#
# It runs: perturb merge "$RUNS/merged" "$RUNS"/shard-*-of-N
# and exits with perturb's status. When trials are missing, perturb names
# the shards that lack them and writes nothing: rerun those shards
# (submit.sh ... --only I,J) and the merge runs again.
#
# Edit the resources to suit your cluster. A relative --output is relative
# to the job's working directory (submit.sh sets it to $RUNS).
#SBATCH --job-name=perturb-merge
##SBATCH --partition=YOUR_PARTITION
#SBATCH --time=00:30:00
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --output=slurm-%x-%j.out

set -euo pipefail

# The environment (submit.sh, sbatch --export) overrides these defaults;
# use absolute paths on a filesystem every node sees.
PERTURB="${PERTURB:-perturb}"     # the perturb binary (or a name on PATH)
RUNS="${RUNS:-runs/slurm}"        # holds shard-I-of-N for I = 1..N
SHARDS="${SHARDS:-}"              # N; empty: the one N of the shard-*-of-* folders in $RUNS
MERGED="${MERGED:-$RUNS/merged}"  # the merged run directory (must not exist yet)

die() {
	printf 'merge.sh: %s\n' "$*" >&2
	exit 2
}

[[ -d "$RUNS" ]] || die "no runs folder $RUNS: set RUNS to the folder holding shard-I-of-N"
if [[ -z "$SHARDS" ]]; then
	ns=$(find "$RUNS" -mindepth 1 -maxdepth 1 -type d -name 'shard-*-of-*' | sed 's/.*-of-//' | sort -u)
	[[ -n "$ns" ]] || die "no shard-I-of-N folders in $RUNS"
	[[ "$ns" != *$'\n'* ]] || die "$RUNS holds shards of several counts N ($(echo "$ns" | tr '\n' ' ')): set SHARDS=N"
	SHARDS="$ns"
fi
[[ "$SHARDS" =~ ^[1-9][0-9]*$ ]] || die "SHARDS must be a positive integer, not '$SHARDS'"
[[ ! -e "$MERGED" ]] ||
	die "$MERGED already exists (an earlier merge?): move it away, or set MERGED=DIR, and merge again"

shopt -s nullglob
shards=("$RUNS"/shard-*-of-"$SHARDS")
shopt -u nullglob
((${#shards[@]} > 0)) || die "no shard-*-of-$SHARDS folders in $RUNS: did the array run?"
if ((${#shards[@]} < SHARDS)); then
	printf 'merge.sh: only %d of %d shard folders exist; perturb merge reports what is missing\n' "${#shards[@]}" "$SHARDS" >&2
fi

printf 'merge.sh: job %s on %s: merging %d shards of %s into %s\n' \
	"${SLURM_JOB_ID:-?}" "$(hostname)" "${#shards[@]}" "$SHARDS" "$MERGED"
exec "$PERTURB" merge "$MERGED" "${shards[@]}"
