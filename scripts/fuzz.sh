#!/usr/bin/env bash
# fuzz.sh PKG TARGET TIME: fuzz one target briefly. Go's fuzzing engine
# sometimes ends a run with "context deadline exceeded" when a worker is
# slow to stop on a loaded machine, without any failing input; such a run
# is retried once. A real failure (a failing input written to testdata)
# fails at once.
set -u
pkg=$1 target=$2 time=$3
for attempt in 1 2; do
	out=$(go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$time" -fuzzminimizetime "$time" 2>&1)
	rc=$?
	echo "$out"
	[ $rc -eq 0 ] && exit 0
	if echo "$out" | grep -q "Failing input written" || ! echo "$out" | grep -q "context deadline exceeded"; then
		exit $rc
	fi
	echo "fuzz.sh: $target ended with the engine's 'context deadline exceeded' and no failing input; retrying (attempt $attempt)"
done
exit 1
