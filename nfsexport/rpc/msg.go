// Package rpc implements ONC RPC version 2 (RFC 5531): record marking over
// TCP, datagrams over UDP, call and reply headers, AUTH_NONE and AUTH_SYS
// credentials, a concurrent server and a pipelining client.
//
// Status numbers follow RFC 5531 exactly: accept_stat SUCCESS=0,
// PROG_UNAVAIL=1, PROG_MISMATCH=2, PROC_UNAVAIL=3, GARBAGE_ARGS=4,
// SYSTEM_ERR=5; reject_stat RPC_MISMATCH=0, AUTH_ERROR=1.
package rpc

import (
	"errors"
	"fmt"

	"github.com/vmroot/vmroot/nfsexport/xdr"
)

// Version is the only RPC protocol version (rpcvers) accepted.
const Version = 2

// Message types and reply statuses.
const (
	msgCall  = 0
	msgReply = 1

	msgAccepted = 0
	msgDenied   = 1
)

// Bounds from RFC 5531.
const (
	MaxAuthBody    = 400 // opaque_auth body
	MaxMachineName = 255 // authsys_parms.machinename
	MaxGIDs        = 16  // authsys_parms.gids
)

// AcceptStat is the status of an accepted reply.
type AcceptStat uint32

const (
	Success      AcceptStat = 0
	ProgUnavail  AcceptStat = 1
	ProgMismatch AcceptStat = 2
	ProcUnavail  AcceptStat = 3
	GarbageArgs  AcceptStat = 4
	SystemErr    AcceptStat = 5
)

var acceptNames = [...]string{"SUCCESS", "PROG_UNAVAIL", "PROG_MISMATCH", "PROC_UNAVAIL", "GARBAGE_ARGS", "SYSTEM_ERR"}

func (s AcceptStat) String() string {
	if int(s) < len(acceptNames) {
		return acceptNames[s]
	}
	return fmt.Sprintf("accept_stat(%d)", uint32(s))
}

// RejectStat is the status of a denied reply.
type RejectStat uint32

const (
	RPCMismatch RejectStat = 0
	AuthError   RejectStat = 1
)

func (s RejectStat) String() string {
	switch s {
	case RPCMismatch:
		return "RPC_MISMATCH"
	case AuthError:
		return "AUTH_ERROR"
	}
	return fmt.Sprintf("reject_stat(%d)", uint32(s))
}

// AuthStat says why authentication failed.
type AuthStat uint32

const (
	AuthOK           AuthStat = 0
	AuthBadCred      AuthStat = 1
	AuthRejectedCred AuthStat = 2
	AuthBadVerf      AuthStat = 3
	AuthRejectedVerf AuthStat = 4
	AuthTooWeak      AuthStat = 5
	AuthInvalidResp  AuthStat = 6
	AuthFailed       AuthStat = 7
)

var authNames = [...]string{"AUTH_OK", "AUTH_BADCRED", "AUTH_REJECTEDCRED", "AUTH_BADVERF", "AUTH_REJECTEDVERF", "AUTH_TOOWEAK", "AUTH_INVALIDRESP", "AUTH_FAILED"}

func (s AuthStat) String() string {
	if int(s) < len(authNames) {
		return authNames[s]
	}
	return fmt.Sprintf("auth_stat(%d)", uint32(s))
}

// Flavor is an authentication flavor.
type Flavor uint32

const (
	AuthNone  Flavor = 0
	AuthSys   Flavor = 1 // also called AUTH_UNIX
	AuthShort Flavor = 2
	AuthDH    Flavor = 3
	RPCSecGSS Flavor = 6
)

// OpaqueAuth is a credential or verifier as sent on the wire.
type OpaqueAuth struct {
	Flavor Flavor
	Body   []byte
}

// EncodeXDR implements xdr.Encodable.
func (a *OpaqueAuth) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(uint32(a.Flavor))
	e.Opaque(a.Body)
}

// DecodeXDR implements xdr.Decodable; Body aliases the input.
func (a *OpaqueAuth) DecodeXDR(d *xdr.Decoder) {
	a.Flavor = Flavor(d.Uint32())
	a.Body = d.Opaque(MaxAuthBody)
}

// AuthSysParams is the body of an AUTH_SYS credential.
type AuthSysParams struct {
	Stamp       uint32
	MachineName string
	UID, GID    uint32
	GIDs        []uint32
}

// EncodeXDR implements xdr.Encodable.
func (p *AuthSysParams) EncodeXDR(e *xdr.Encoder) {
	e.Uint32(p.Stamp)
	e.String(p.MachineName)
	e.Uint32(p.UID)
	e.Uint32(p.GID)
	e.Uint32(uint32(len(p.GIDs)))
	for _, g := range p.GIDs {
		e.Uint32(g)
	}
}

// decodeAuthSys parses an AUTH_SYS body into c, storing gids in c's
// inline array so that parsing does not allocate beyond the name.
func decodeAuthSys(body []byte, c *Credential) error {
	var d xdr.Decoder
	d.Reset(body)
	c.Stamp = d.Uint32()
	c.MachineName = d.String(MaxMachineName)
	c.UID = d.Uint32()
	c.GID = d.Uint32()
	n := d.Count(MaxGIDs, 4)
	for i := 0; i < n; i++ {
		c.gids[i] = d.Uint32()
	}
	c.GIDs = c.gids[:n:n]
	return d.Err()
}

// Credential is the caller's identity as parsed from the call header.
// For AUTH_NONE (and any flavor other than AUTH_SYS), UID and GID are
// 65534 (nobody) so that a careless handler never sees root.
type Credential struct {
	Flavor      Flavor
	Stamp       uint32
	MachineName string
	UID, GID    uint32
	GIDs        []uint32 // supplementary groups, at most MaxGIDs
	gids        [MaxGIDs]uint32
}

// Nobody is the UID and GID given to callers without AUTH_SYS.
const Nobody = 65534

// AcceptError is an accepted reply whose status is not SUCCESS. Handlers
// return it to choose the status; the client returns it to report one.
type AcceptError struct {
	Stat      AcceptStat
	Low, High uint32 // for ProgMismatch
	Err       error  // optional cause, for logs
}

func (e *AcceptError) Error() string {
	s := "rpc: " + e.Stat.String()
	if e.Stat == ProgMismatch {
		s += fmt.Sprintf(" (supported %d..%d)", e.Low, e.High)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *AcceptError) Unwrap() error { return e.Err }

// RejectError is a denied reply.
type RejectError struct {
	Stat      RejectStat
	Low, High uint32   // for RPCMismatch
	Auth      AuthStat // for AuthError
	Err       error    // optional cause, for logs
}

func (e *RejectError) Error() string {
	s := "rpc: " + e.Stat.String()
	switch e.Stat {
	case RPCMismatch:
		s += fmt.Sprintf(" (supported %d..%d)", e.Low, e.High)
	case AuthError:
		s += " " + e.Auth.String()
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *RejectError) Unwrap() error { return e.Err }

// ErrGarbageArgs makes the server answer GARBAGE_ARGS.
var ErrGarbageArgs = &AcceptError{Stat: GarbageArgs}

// ErrSystem makes the server answer SYSTEM_ERR.
var ErrSystem = &AcceptError{Stat: SystemErr}

// ErrProcUnavail makes the server answer PROC_UNAVAIL.
var ErrProcUnavail = &AcceptError{Stat: ProcUnavail}

// ErrNoReply makes the server send no reply at all.
var ErrNoReply = errors.New("rpc: no reply")

// Garbage wraps a decoding error so the server answers GARBAGE_ARGS and
// logs the cause.
func Garbage(cause error) error { return &AcceptError{Stat: GarbageArgs, Err: cause} }

// Denied returns an error making the server answer AUTH_ERROR with s.
func Denied(s AuthStat) error { return &RejectError{Stat: AuthError, Auth: s} }

// encodeCallHeader writes a call header with the given credential and an
// AUTH_NONE verifier.
func encodeCallHeader(e *xdr.Encoder, xid, prog, vers, proc uint32, cred *OpaqueAuth) {
	e.Uint32(xid)
	e.Uint32(msgCall)
	e.Uint32(Version)
	e.Uint32(prog)
	e.Uint32(vers)
	e.Uint32(proc)
	cred.EncodeXDR(e)
	e.Uint32(uint32(AuthNone))
	e.Uint32(0)
}

// EncodeCall appends a complete call message (without record mark):
// header, credential, AUTH_NONE verifier and args (nil for void).
func EncodeCall(e *xdr.Encoder, xid, prog, vers, proc uint32, cred OpaqueAuth, args xdr.Encodable) {
	encodeCallHeader(e, xid, prog, vers, proc, &cred)
	if args != nil {
		args.EncodeXDR(e)
	}
}

// SysCred builds an AUTH_SYS credential.
func SysCred(p AuthSysParams) OpaqueAuth {
	var e xdr.Encoder
	p.EncodeXDR(&e)
	return OpaqueAuth{Flavor: AuthSys, Body: e.Bytes()}
}

// DecodeReply parses a reply header. On SUCCESS it returns nil and d is
// positioned at the results; otherwise it returns *AcceptError,
// *RejectError or a decoding error.
func DecodeReply(d *xdr.Decoder) (xid uint32, err error) {
	xid = d.Uint32()
	if mt := d.Uint32(); d.Err() == nil && mt != msgReply {
		return xid, fmt.Errorf("rpc: message type %d is not a reply", mt)
	}
	switch st := d.Uint32(); {
	case d.Err() != nil:
	case st == msgAccepted:
		var verf OpaqueAuth
		verf.DecodeXDR(d)
		as := AcceptStat(d.Uint32())
		if d.Err() != nil {
			break
		}
		switch as {
		case Success:
			return xid, nil
		case ProgMismatch:
			lo, hi := d.Uint32(), d.Uint32()
			if d.Err() == nil {
				return xid, &AcceptError{Stat: as, Low: lo, High: hi}
			}
		default:
			return xid, &AcceptError{Stat: as}
		}
	case st == msgDenied:
		rs := RejectStat(d.Uint32())
		switch rs {
		case RPCMismatch:
			lo, hi := d.Uint32(), d.Uint32()
			if d.Err() == nil {
				return xid, &RejectError{Stat: rs, Low: lo, High: hi}
			}
		case AuthError:
			as := AuthStat(d.Uint32())
			if d.Err() == nil {
				return xid, &RejectError{Stat: rs, Auth: as}
			}
		default:
			d.SetErr(fmt.Errorf("rpc: bad reject_stat %d", rs))
		}
	default:
		d.SetErr(fmt.Errorf("rpc: bad reply_stat %d", st))
	}
	return xid, fmt.Errorf("rpc: malformed reply: %w", d.Err())
}
