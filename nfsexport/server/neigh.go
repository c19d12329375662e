package server

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LookupMAC finds the link-layer address of a peer on a directly attached
// link, or nil. Config.LookupMAC defaults to ARPTable.
type LookupMAC func(netip.Addr) net.HardwareAddr

// ARPTable looks addr up in the kernel's IPv4 neighbour table
// (/proc/net/arp). A peer that reached us over TCP is there: the
// handshake's reply needed its MAC.
func ARPTable(addr netip.Addr) net.HardwareAddr {
	return arpLookup("/proc/net/arp", addr)
}

func arpLookup(path string, addr netip.Addr) net.HardwareAddr {
	if !addr.Is4() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	want := addr.String()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// IP address  HW type  Flags  HW address  Mask  Device
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || fs[0] != want {
			continue
		}
		flags, err := strconv.ParseUint(strings.TrimPrefix(fs[2], "0x"), 16, 32)
		if err != nil || flags&0x2 == 0 { // ATF_COM: resolved
			continue
		}
		if mac, err := net.ParseMAC(fs[3]); err == nil && len(mac) == 6 {
			return mac
		}
	}
	return nil
}

// macCache remembers the MAC of each peer address, so the neighbour table
// is read at MOUNT and at a peer's first call, not at every call. A miss
// is remembered briefly: an address the table did not know then may be
// resolved by the next call.
type macCache struct {
	lookup LookupMAC
	mu     sync.Mutex
	m      map[netip.Addr]macEntry
}

type macEntry struct {
	mac  net.HardwareAddr
	when time.Time
}

const (
	macMissTTL  = 5 * time.Second
	macCacheMax = 8192
)

// get returns addr's MAC, looking it up when refresh is set or nothing
// usable is cached.
func (c *macCache) get(addr netip.Addr, refresh bool) net.HardwareAddr {
	c.mu.Lock()
	e, ok := c.m[addr]
	c.mu.Unlock()
	if ok && !refresh && (e.mac != nil || time.Since(e.when) < macMissTTL) {
		return e.mac
	}
	mac := c.lookup(addr)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= macCacheMax {
		c.m = map[netip.Addr]macEntry{}
	}
	c.m[addr] = macEntry{mac, time.Now()}
	c.mu.Unlock()
	return mac
}

func macKey(m net.HardwareAddr) string { return string(m) }
