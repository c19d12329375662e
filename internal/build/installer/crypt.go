package installer

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"hash"
)

// cryptAlphabet is crypt(3)'s base-64 alphabet.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// SHA512Crypt hashes a password in the "$6$" format of glibc crypt(3)
// (Ulrich Drepper's SHA-crypt specification, default 5000 rounds), which
// ESXi's kickstart accepts as "rootpw --iscrypted", so the image never holds
// the password in clear. salt is at most 16 characters of cryptAlphabet.
func SHA512Crypt(password, salt string) string {
	if len(salt) > 16 {
		salt = salt[:16]
	}
	p, s := []byte(password), []byte(salt)
	repeat := func(h hash.Hash, b []byte, n int) {
		for ; n > len(b); n -= len(b) {
			h.Write(b)
		}
		h.Write(b[:n])
	}
	h := sha512.New()
	h.Write(p)
	h.Write(s)
	h.Write(p)
	b := h.Sum(nil)

	h.Reset()
	h.Write(p)
	h.Write(s)
	repeat(h, b, len(p))
	for n := len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(p)
		}
	}
	a := h.Sum(nil)

	h.Reset()
	for range p {
		h.Write(p)
	}
	pp := make([]byte, 0, len(p))
	for dp := h.Sum(nil); len(pp) < len(p); {
		pp = append(pp, dp[:min(len(dp), len(p)-len(pp))]...)
	}

	h.Reset()
	for i := 0; i < 16+int(a[0]); i++ {
		h.Write(s)
	}
	ds := h.Sum(nil)
	ss := ds[:len(s)]

	for i := 0; i < 5000; i++ {
		h.Reset()
		if i&1 != 0 {
			h.Write(pp)
		} else {
			h.Write(a)
		}
		if i%3 != 0 {
			h.Write(ss)
		}
		if i%7 != 0 {
			h.Write(pp)
		}
		if i&1 != 0 {
			h.Write(a)
		} else {
			h.Write(pp)
		}
		a = h.Sum(a[:0])
	}

	out := []byte("$6$" + salt + "$")
	enc := func(b2, b1, b0 byte, n int) {
		w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
		for ; n > 0; n-- {
			out = append(out, cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	for i := 0; i < 21; i++ {
		// The specification's byte order: (0,21,42), (22,43,1), (44,2,23), ...
		x, y, z := i, i+21, i+42
		switch i % 3 {
		case 1:
			x, y, z = i+21, i+42, i
		case 2:
			x, y, z = i+42, i, i+21
		}
		enc(a[x], a[y], a[z], 4)
	}
	enc(0, 0, a[63], 2)
	return string(out)
}

// newSalt returns a random 16-character salt.
func newSalt() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errors.New("no randomness for the password salt")
	}
	for i := range b {
		b[i] = cryptAlphabet[b[i]&0x3f]
	}
	return string(b[:]), nil
}
