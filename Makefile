# Convenience targets over CMake. The README's two commands are scripts/demo.sh and scripts/test.sh.
.PHONY: all build test test-cuda bench fuzz clean
all: build
build:
	scripts/build.sh
test:
	scripts/test.sh
test-cuda:
	scripts/test_cuda.sh
bench: build
	scripts/bench.sh
clean:
	rm -rf build
