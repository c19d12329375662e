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
	@echo; echo '$$ vmroot info .demo/appliance.vmdk'
	@bin/vmroot info $(DEMO)/appliance.vmdk
	@echo; echo '$$ vmroot ls -l .demo/appliance.vmdk /'
	@bin/vmroot ls -l $(DEMO)/appliance.vmdk /
	@echo; echo '$$ vmroot cat .demo/appliance.vmdk /etc/fstab'
	@bin/vmroot cat $(DEMO)/appliance.vmdk /etc/fstab
	@echo; echo '$$ vmroot ls -R .demo/appliance.vmdk /etc | head'
	@bin/vmroot ls -R $(DEMO)/appliance.vmdk /etc | head

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
