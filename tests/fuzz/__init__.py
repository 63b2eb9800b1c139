"""Structure-aware fuzzing of btrfs-extcrypt (issue 17, point 6).

mutate.py makes csum-valid mutants of seed images; engine.py builds the seeds,
runs every command on each mutant and judges the results; run_fuzz.py is the
command line (`make fuzz`, `make fuzz-smoke`).
"""
