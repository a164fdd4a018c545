# getty: the commands a developer and CI run. See README.md.
GO        ?= go
FUZZTIME  ?= 30s
PKG       := ./...

.PHONY: test demo bench bench-compare fuzz lint vet

## test: the whole suite with the race detector (fuzz seed corpora included)
test:
	$(GO) vet $(PKG)
	$(GO) test -race -count=1 $(PKG)

## demo: a server and clients exchanging messages in one process
demo:
	$(GO) run ./examples/echo

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

vet:
	$(GO) vet $(PKG)

## lint: gofmt, vet and staticcheck (installed on demand)
lint: vet
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKG)
