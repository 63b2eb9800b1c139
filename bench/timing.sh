# Timing helpers shared by bench/encrypt.sh and bench/rekey.sh (sourced).
# The caller sets WORK (a directory for the logs) and BENCH_NAME (for messages).

# run_timed LABEL CMD...: appends "wall rss" of one run to $WORK/LABEL.times;
# returns the command's exit status (a failure is reported, and the bench
# exits 1 at the end)
failed=0
run_timed() {
	label=$1
	shift
	rc=0
	/usr/bin/time -f "%e %M" -o "$WORK/$label.one" "$@" >"$WORK/$label.out" 2>"$WORK/$label.err" || rc=$?
	if [ "$rc" = 0 ]; then
		tail -1 "$WORK/$label.one" >>"$WORK/$label.times"
		return 0
	fi
	echo "$BENCH_NAME: FAILED ($rc): $*" >&2
	grep -v "^Command exited" "$WORK/$label.err" | tail -3 >&2
	failed=1
	return $rc
}

best_t() { sort -n "$1" | head -1 | cut -d' ' -f1; }
max_rss() { sort -n -k2 "$1" | tail -1 | cut -d' ' -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
