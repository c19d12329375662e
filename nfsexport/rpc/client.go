package rpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// ClientOptions configures Dial.
type ClientOptions struct {
	// LocalAddr, if set, is the local IP to bind, so that one machine can
	// appear as several client hosts (127.0.0.2, 127.0.0.3, ...).
	LocalAddr string
	// Cred is sent with every call; the zero value is AUTH_NONE.
	Cred OpaqueAuth
	// MaxRecord bounds replies (default DefaultMaxRecord + 64 KiB).
	MaxRecord int
}

// ErrClientClosed is returned for calls on a closed client.
var ErrClientClosed = errors.New("rpc: client closed")

// Client issues calls over one connection. It is safe for concurrent
// use; concurrent calls are pipelined and their replies matched by XID.
type Client struct {
	nc     net.Conn
	packet bool
	cred   OpaqueAuth
	maxRec int
	xid    atomic.Uint32

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	pending map[uint32]chan reply
	err     error // set once the connection is dead
	done    chan struct{}
}

type reply struct {
	body []byte
	err  error
}

// Dial connects to addr over network "tcp" or "udp".
func Dial(ctx context.Context, network, addr string, opts ClientOptions) (*Client, error) {
	var d net.Dialer
	if opts.LocalAddr != "" {
		ip, err := net.ResolveIPAddr("ip", opts.LocalAddr)
		if err != nil {
			return nil, err
		}
		switch network {
		case "tcp", "tcp4", "tcp6":
			d.LocalAddr = &net.TCPAddr{IP: ip.IP}
		default:
			d.LocalAddr = &net.UDPAddr{IP: ip.IP}
		}
	}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	_, packet := nc.(*net.UDPConn)
	return NewClient(nc, packet, opts), nil
}

// NewClient wraps an established connection. packet selects datagram
// framing (UDP) instead of record marking.
func NewClient(nc net.Conn, packet bool, opts ClientOptions) *Client {
	c := &Client{
		nc: nc, packet: packet, cred: opts.Cred,
		maxRec:  orDefault(opts.MaxRecord, DefaultMaxRecord+64<<10),
		pending: make(map[uint32]chan reply),
		done:    make(chan struct{}),
	}
	c.xid.Store(uint32(time.Now().UnixNano()))
	go c.readLoop()
	return c
}

// LocalAddr returns the client's local address.
func (c *Client) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Close closes the connection; pending calls fail.
func (c *Client) Close() error {
	err := c.nc.Close()
	<-c.done
	return err
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	for x, ch := range c.pending {
		ch <- reply{err: c.err}
		delete(c.pending, x)
	}
}

func (c *Client) readLoop() {
	defer close(c.done)
	buf := make([]byte, 65536)
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		var body []byte
		if c.packet {
			n, err := c.nc.Read(buf)
			if err != nil {
				c.fail(fmt.Errorf("rpc: connection lost: %w", err))
				return
			}
			body = append([]byte(nil), buf[:n]...)
		} else {
			bp, err := ReadRecord(br, c.maxRec)
			if err != nil {
				c.fail(fmt.Errorf("rpc: connection lost: %w", err))
				return
			}
			// Replies are handed to callers, whose decoded slices alias
			// them: give each its own buffer.
			body = append([]byte(nil), *bp...)
			PutBuffer(bp)
		}
		if len(body) < 4 {
			continue
		}
		xid := uint32(body[0])<<24 | uint32(body[1])<<16 | uint32(body[2])<<8 | uint32(body[3])
		c.mu.Lock()
		ch := c.pending[xid]
		delete(c.pending, xid)
		c.mu.Unlock()
		if ch != nil {
			ch <- reply{body: body}
		}
	}
}

// Call invokes prog/vers/proc with args (nil for void) and decodes the
// results into res (nil to ignore them). Non-SUCCESS replies come back
// as *AcceptError or *RejectError.
func (c *Client) Call(ctx context.Context, prog, vers, proc uint32, args xdr.Encodable, res xdr.Decodable) error {
	body, err := c.CallRaw(ctx, prog, vers, proc, args)
	if err != nil {
		return err
	}
	if res != nil {
		d := xdr.NewDecoder(body)
		res.DecodeXDR(d)
		if d.Err() != nil {
			return fmt.Errorf("rpc: decoding results of %d/%d/%d: %w", prog, vers, proc, d.Err())
		}
	}
	return nil
}

// CallRaw is Call returning the undecoded results.
func (c *Client) CallRaw(ctx context.Context, prog, vers, proc uint32, args xdr.Encodable) ([]byte, error) {
	xid := c.xid.Add(1)
	e := xdr.NewEncoder(256)
	if !c.packet {
		e.Uint32(0)
	}
	EncodeCall(e, xid, prog, vers, proc, c.cred, args)
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.pending[xid] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, xid)
		c.mu.Unlock()
	}
	if err := c.send(e); err != nil {
		forget()
		c.nc.Close()
		return nil, err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		d := xdr.NewDecoder(r.body)
		if _, err := DecodeReply(d); err != nil {
			return nil, err
		}
		return d.Rest(), nil
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}

func (c *Client) send(e *xdr.Encoder) error {
	if !c.packet {
		putRecordMark(e.Bytes()[:4], e.Len()-4)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	nb := net.Buffers(e.Buffers(nil))
	_, err := nb.WriteTo(c.nc)
	return err
}
