# getty: the commands a developer and CI run. See README.md.
GO        ?= go
FUZZTIME  ?= 30s
SOAK_DURATION ?= 10m
PKG       := ./...
# The oldest Go the library supports (go.mod's go line) and the newest
# release; CI tests with both (toolchains come through the Go module proxy).
GO_FLOOR  ?= go1.22.12
GO_NEWEST ?= go1.27.4

.PHONY: test test-floor test-newest demo bench bench-compare fuzz lint vet soak fault interop

# -race needs cgo, so a C compiler: go env CGO_ENABLED says 0 without one.
RACE := $(if $(filter 1,$(shell $(GO) env CGO_ENABLED)),-race,)

## test: the whole suite with the race detector (fuzz seed corpora included;
## docs_test.go type-checks every Go snippet of README.md and docs/*.md).
## Without a C compiler it runs without -race and says so.
test:
	@if [ -z "$(RACE)" ]; then echo "make test: cgo is off (no C compiler?): running WITHOUT the race detector; on Debian: apt-get install gcc"; fi
	$(GO) vet $(PKG)
	$(GO) test $(RACE) -count=1 $(PKG)

## test-floor: vet and the suite (without -race, to save time) with the
## oldest supported Go, so nothing newer than go.mod's go line slips in
test-floor:
	GOTOOLCHAIN=$(GO_FLOOR) $(GO) vet $(PKG)
	GOTOOLCHAIN=$(GO_FLOOR) $(GO) test -count=1 $(PKG)

## test-newest: make test (with -race) with the newest Go release
test-newest:
	GOTOOLCHAIN=$(GO_NEWEST) $(MAKE) test

## demo: a server and clients exchanging messages in one process
demo:
	$(GO) run ./examples/echo

## interop: the WebSocket transport against peers getty did not write: the ws
## package (Node.js) as client and server, and headless Chromium (a page's
## WebSocket, and examples/chat with two pages). Needs node/npm and chromium;
## .ci/run installs chromium when it is missing. See interop/README.md.
interop:
	cd interop && npm ci --no-audit --no-fund
	GETTY_INTEROP=1 $(GO) test -count=1 -v -timeout 5m ./interop/

## bench: in-package benchmarks (allocations per message, dispatch, wheel, codecs)
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKG)

## bench-compare: getty against plain net, upstream getty, gnet and netpoll
bench-compare:
	cd benchmark && $(GO) run ./cmd/compare

## fuzz: each fuzz target for FUZZTIME
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReassembly$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzLengthFieldCodec$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzDelimiterCodec$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzProxyHeader$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzWSFrameTracker$$' -fuzztime $(FUZZTIME) .

vet:
	$(GO) vet $(PKG)

## lint: gofmt, vet and staticcheck (installed on demand)
lint: vet
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKG)

## soak: mixed load, client reconnects and server restarts for SOAK_DURATION (test/soak)
soak:
	$(GO) run ./test/soak -duration $(SOAK_DURATION)

## fault: a client pool through toxiproxy faults (test/fault, its own module)
fault:
	cd test/fault && $(GO) test -race -count=1 -v .
