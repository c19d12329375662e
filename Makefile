# vmroot: `make demo` runs vmroot on a generated sample appliance;
# `make test` installs what the tests need (as root) and runs them all.
GO ?= go
export PATH := $(PATH):/usr/local/go/bin
DEMO := $(CURDIR)/.demo

.PHONY: build demo test deps vet fuzz bench clean

build:
	$(GO) build -o bin/vmroot ./cmd/vmroot

deps:
	./scripts/test-deps.sh

$(DEMO)/appliance.vmdk: testdata/mkappliance.sh
	./testdata/mkappliance.sh $(DEMO)

demo: deps build $(DEMO)/appliance.vmdk
	./testdata/demo.sh bin/vmroot $(DEMO)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	$(GO) vet ./...

fuzz:
	./scripts/fuzz-brief.sh

test: deps vet
	$(GO) test -race -timeout 20m ./...
	./scripts/fuzz-brief.sh

bench: deps build
	./bench/run.sh

clean:
	rm -rf bin $(DEMO)
