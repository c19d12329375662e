package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"sync"

	"github.com/vmroot/vmroot/nfsexport/nfs3"
	"github.com/vmroot/vmroot/overlay"
)

// Handle layout: version, 7-byte tag, overlay ID (at most 56 bytes).
const (
	fhVersion = 1
	tagLen    = 7
	fhHeader  = 1 + tagLen
)

// hostKey derives the per-host handle key from the server secret: an
// AES-128 key, so that tagging a handle costs a few block encryptions
// (READDIRPLUS makes one handle per entry).
func hostKey(secret []byte, host string) cipher.Block {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("vmroot fh host\x00"))
	m.Write([]byte(host))
	b, err := aes.NewCipher(m.Sum(nil)[:16])
	if err != nil {
		panic(err) // a 16-byte key is always valid
	}
	return b
}

// tag is a CBC-MAC of the ID under the host's key. The first block holds
// the ID's length, which makes the encoding prefix-free and CBC-MAC secure
// for IDs of different lengths.
func tag(key cipher.Block, id []byte, out []byte) {
	sp := tagPool.Get().(*[aes.BlockSize]byte)
	tagScratch(key, id, out, sp[:])
	tagPool.Put(sp)
}

// tagPool holds cipher states: one on the stack would escape through the
// cipher.Block interface and cost an allocation per checked handle.
var tagPool = sync.Pool{New: func() any { return new([aes.BlockSize]byte) }}

// tagScratch is tag computing in scratch (a block's worth): the state
// passed to the cipher escapes, so READDIRPLUS hands in heap bytes it
// already has instead of allocating per handle.
func tagScratch(key cipher.Block, id, out, scratch []byte) {
	st := scratch[:aes.BlockSize]
	clear(st)
	st[0] = byte(len(id))
	key.Encrypt(st, st)
	for len(id) > 0 {
		var blk [aes.BlockSize]byte
		n := copy(blk[:], id)
		id = id[n:]
		subtle.XORBytes(st, st, blk[:])
		key.Encrypt(st, st)
	}
	copy(out, st[:tagLen])
}

// makeFH wraps an overlay ID into a handle for this host.
func (st *hostState) makeFH(id []byte) nfs3.FH {
	_, fh := st.appendFH(make([]byte, 0, fhHeader+len(id)+aes.BlockSize), id)
	return fh
}

// appendFH is makeFH writing the handle at the end of buf, so that many
// handles can share one buffer.
func (st *hostState) appendFH(buf, id []byte) ([]byte, nfs3.FH) {
	start := len(buf)
	buf = append(buf, fhVersion)
	buf = append(buf, make([]byte, tagLen)...)
	buf = append(buf, id...)
	end := len(buf)
	buf = append(buf, make([]byte, aes.BlockSize)...) // tag's scratch
	tagScratch(st.mac, id, buf[start+1:start+fhHeader], buf[end:])
	buf = buf[:end]
	return buf, nfs3.FH(buf[start:end:end])
}

// parseFH checks a handle's tag and returns the overlay ID inside.
func (st *hostState) parseFH(fh nfs3.FH) ([]byte, nfs3.Stat) {
	if len(fh) <= fhHeader || len(fh) > fhHeader+overlay.MaxIDLen || fh[0] != fhVersion {
		return nil, nfs3.ErrBadHandle
	}
	id := fh[fhHeader:]
	var want [tagLen]byte
	tag(st.mac, id, want[:])
	if !hmac.Equal(want[:], fh[1:fhHeader]) {
		// Another host's handle, or one made with another key.
		return nil, nfs3.ErrStale
	}
	return id, nfs3.OK
}
