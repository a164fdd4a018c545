# getty: the commands a developer and CI run. See README.md.
GO        ?= go
FUZZTIME  ?= 30s
SOAK_DURATION ?= 10m
PKG       := ./...

.PHONY: test demo bench bench-compare fuzz lint vet soak fault interop

## test: the whole suite with the race detector (fuzz seed corpora included)
test:
	$(GO) vet $(PKG)
	$(GO) test -race -count=1 $(PKG)

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
