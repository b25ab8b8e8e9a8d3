# edgeq: `make demo` and `make test` do all set-up themselves (tools/bootstrap.sh).
PY := .venv/bin/python

.PHONY: bootstrap demo test bench bench-llm lint fuzz
FUZZ_SECONDS ?= 300

bootstrap:
	@bash tools/bootstrap.sh

demo: bootstrap
	$(PY) examples/digits/demo.py
	.venv/bin/edgeq deploy --target rpi5 examples/digits/models/cnn_t2_qat.pt2 \
		--calib examples/digits/models/cnn_data.npz --runs 20
	.venv/bin/edgeq deploy --target stm32h7 examples/digits/models/mlp_q4_qat.pt2 \
		--calib examples/digits/models/mlp_data.npz --runs 20

test: bootstrap
	$(PY) -m pytest -n 2 -q tests

bench: bootstrap
	.venv/bin/pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_pack.py
	$(PY) benchmarks/bench_kernels.py --json bench_kernels.json
	$(PY) benchmarks/bench_mcu.py

# edgeq's LLM decoder vs llama.cpp (agreement, host tokens/s, modelled Pi 5); docs/llm.md
bench-llm: bootstrap
	.venv/bin/pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_llm.py

lint: bootstrap
	.venv/bin/ruff check edgeq tests tools benchmarks examples

# Each fuzzer (C loader+executor, Python readers) for FUZZ_SECONDS; prints executions, coverage, crashes.
fuzz: bootstrap
	$(PY) tools/fuzz/run_fuzz.py --seconds $(FUZZ_SECONDS)
