#!/usr/bin/env bash
# Submit a sharded perturb sweep to Slurm: an array of N shards
# (scripts/slurm/array.sh), then their merge (scripts/slurm/merge.sh) once
# every shard has succeeded.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: scripts/slurm/submit.sh [--only LIST] CONFIG N [RUNS] [-- SBATCH_OPTION...]

Submits scripts/slurm/array.sh as a job array of N tasks (--array=1-N; task
I runs shard I/N into RUNS/shard-I-of-N), then scripts/slurm/merge.sh with
--dependency=afterok on the array: when every task has succeeded it merges
the shards into RUNS/merged. If a task fails, Slurm cancels the merge job;
submit again (every shard resumes, finished ones exit at once) or
resubmit just the failed shards with --only.

  CONFIG   the sweep's TOML config
  N        the number of shards (array tasks)
  RUNS     the folder for the shards, the merge and the job logs
           (default: runs/CONFIG_NAME-slurm, CONFIG_NAME being the config
           file's name without .toml); the jobs run in it
  --only LIST
           submit only these array indices (sbatch --array syntax, e.g.
           3,7 or 1-100%10) out of 1..N, then the merge
  -- SBATCH_OPTION...
           further sbatch options for both jobs, e.g. -- --account=ACCT
           --partition=PART (they override the #SBATCH lines)

The resources (time, CPUs, memory, partition) are the #SBATCH lines at
the top of array.sh and merge.sh. The perturb binary is $PERTURB if set,
else this checkout's bin/perturb, else perturb on PATH; CONFIG, RUNS and
the binary must be on a filesystem every node sees.
USAGE
}

die() {
	printf 'submit.sh: %s\n' "$*" >&2
	exit 2
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

only=""
pos=()
extra=()
while (($# > 0)); do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--only)
		(($# >= 2)) || die "--only needs a LIST of array indices (e.g. --only 3,7)"
		only="$2"
		shift 2
		;;
	--only=*)
		only="${1#--only=}"
		shift
		;;
	--)
		shift
		extra=("$@")
		break
		;;
	-*)
		usage >&2
		die "unknown option $1 (sbatch options go after --)"
		;;
	*)
		pos+=("$1")
		shift
		;;
	esac
done
if ((${#pos[@]} < 2 || ${#pos[@]} > 3)); then
	usage >&2
	exit 2
fi

config="${pos[0]}"
n="${pos[1]}"
[[ -f "$config" ]] || die "no config file $config"
[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "N (the number of shards) must be a positive integer, not '$n'"
config=$(realpath -e "$config")
runs="${pos[2]:-runs/$(basename "$config" .toml)-slurm}"
if [[ -n "$only" && ! "$only" =~ ^[0-9][0-9,:%-]*$ ]]; then
	die "--only takes sbatch --array indices such as 3,7 or 1-10%2, not '$only'"
fi

command -v sbatch >/dev/null 2>&1 || die "sbatch not found: run this on a Slurm login node"

if [[ -n "${PERTURB:-}" ]]; then
	perturb="$PERTURB"
	[[ "$perturb" == */* ]] || perturb=$(command -v "$perturb") || die "PERTURB=$PERTURB is not on PATH"
elif [[ -x "$here/../../bin/perturb" ]]; then
	perturb="$here/../../bin/perturb"
else
	perturb=$(command -v perturb) || die "no perturb binary: run make build, or set PERTURB=/path/to/perturb"
fi
[[ -x "$perturb" && -f "$perturb" ]] || die "$perturb is not an executable file: run make build, or set PERTURB"
perturb=$(realpath -e "$perturb")

mkdir -p "$runs"
runs=$(realpath -e "$runs")
if [[ -e "$runs/merged" ]]; then
	die "$runs/merged already exists: this sweep is merged. Move it away to merge again, or pick another RUNS"
fi

export PERTURB="$perturb" CONFIG="$config" RUNS="$runs" SHARDS="$n"
unset MERGED MAX_MEMORY

jobid() { # sbatch --parsable prints ID or ID;CLUSTER
	local out
	out=$("$@") || return 1
	out="${out%%;*}"
	[[ "$out" =~ ^[0-9]+$ ]] || {
		printf 'submit.sh: unexpected output from sbatch: %s\n' "$out" >&2
		return 1
	}
	printf '%s\n' "$out"
}

array_id=$(jobid sbatch --parsable --export=ALL --chdir="$runs" --array="${only:-1-$n}" \
	"${extra[@]}" "$here/array.sh") || die "sbatch of the array failed (see above)"
merge_id=$(jobid sbatch --parsable --export=ALL --chdir="$runs" \
	--dependency="afterok:$array_id" --kill-on-invalid-dep=yes \
	"${extra[@]}" "$here/merge.sh") ||
	die "sbatch of the merge failed (see above); the array is job $array_id: merge later with: sbatch --export=ALL,PERTURB=$perturb,RUNS=$runs,SHARDS=$n --chdir=$runs $here/merge.sh"

cat <<MSG
array job: $array_id (tasks ${only:-1-$n}: shard I of $n into $runs/shard-I-of-$n)
merge job: $merge_id (starts when every array task has succeeded; cancelled if one fails)
watch:     squeue -j $array_id,$merge_id
after:     sacct -j $array_id,$merge_id --format=JobID,JobName,State,ExitCode,Elapsed
           (or scontrol show job $array_id, while Slurm remembers it)
logs:      $runs/slurm-*-${array_id}_I.out and $runs/slurm-*-$merge_id.out (with the default --output)
merged:    $runs/merged (then: $perturb summarize $runs/merged)
MSG
