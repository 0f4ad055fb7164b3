.PHONY: setup run test test-full bench demo soak mutate

setup:
	./scripts/setup.sh

# Runs the kiosk with simulated devices and the embedded platform simulator.
# Without a display it runs the scripted walk-through and writes screenshots.
run:
	./scripts/run.sh

test:
	./scripts/test.sh

# Full-count soak and crash tests (hundreds of kill -9 cycles).
test-full:
	KIOSK_TEST_FULL=1 ./scripts/test.sh

bench: setup
	.venv/bin/python -m bench.run_all

# Mutation testing ([tool.mutmut] in pyproject.toml): the outbox, the drainer and the visit
# session against their tests; prints killed / total per module (target 90 %).
# Results are cached in mutants/; `rm -rf mutants` for a clean run.
mutate:
	.venv/bin/mutmut run --max-children $${MUTATE_JOBS:-2}
	.venv/bin/python scripts/mutation_score.py

# The 10,000-visit soak through the real UI (issue 12): figures into bench/results/soak.json.
soak: setup
	.venv/bin/python -m bench.soak --visits 10000 --json --out bench/results/soak.json
