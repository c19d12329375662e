package ext

import (
	"math/bits"

	"github.com/vmroot/vmroot/internal/ext/disklayout"
)

// dxHash computes the htree hash of name (major hash with bit 0 clear, as
// stored in index entries) for one of the legacy, half-MD4 or TEA
// algorithms. ok is false for algorithms it does not know.
func dxHash(name []byte, version uint8, seed *[4]uint32) (hash uint32, ok bool) {
	buf := [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	if seed[0]|seed[1]|seed[2]|seed[3] != 0 {
		buf = *seed
	}
	var in [8]uint32
	switch version {
	case disklayout.HashLegacy, disklayout.HashLegacyUnsigned:
		hash = legacyHash(name, version == disklayout.HashLegacyUnsigned)
	case disklayout.HashHalfMD4, disklayout.HashHalfMD4Unsigned:
		unsigned := version == disklayout.HashHalfMD4Unsigned
		for p := name; ; p = p[32:] {
			strToHashBuf(p, in[:8], unsigned)
			halfMD4(&buf, &in)
			if len(p) <= 32 {
				break
			}
		}
		hash = buf[1]
	case disklayout.HashTea, disklayout.HashTeaUnsigned:
		unsigned := version == disklayout.HashTeaUnsigned
		for p := name; ; p = p[16:] {
			strToHashBuf(p, in[:4], unsigned)
			teaTransform(&buf, in[:4])
			if len(p) <= 16 {
				break
			}
		}
		hash = buf[0]
	default:
		return 0, false
	}
	hash &^= 1
	if hash == 0x7fffffff<<1 {
		// The largest value is reserved as the end-of-directory cookie.
		hash = (0x7fffffff - 1) << 1
	}
	return hash, true
}

// char widens a name byte the way the kernel does on platforms where
// char is signed or unsigned (the superblock records which was used).
func char(c byte, unsigned bool) uint32 {
	if unsigned {
		return uint32(c)
	}
	return uint32(int32(int8(c)))
}

func legacyHash(name []byte, unsigned bool) uint32 {
	h0, h1 := uint32(0x12a3fe2d), uint32(0x37abe8f9)
	for _, c := range name {
		h := h1 + (h0 ^ char(c, unsigned)*7152373)
		if h&0x80000000 != 0 {
			h -= 0x7fffffff
		}
		h1, h0 = h0, h
	}
	return h0 << 1
}

// strToHashBuf packs up to 4*len(out) bytes of msg into out, padding
// with a word derived from the full remaining length.
func strToHashBuf(msg []byte, out []uint32, unsigned bool) {
	n := uint32(len(msg))
	pad := n | n<<8
	pad |= pad << 16
	if len(msg) > 4*len(out) {
		msg = msg[:4*len(out)]
	}
	val := pad
	j := 0
	for i, c := range msg {
		val = char(c, unsigned) + val<<8
		if i%4 == 3 {
			out[j] = val
			j++
			val = pad
		}
	}
	if j < len(out) {
		out[j] = val
		j++
	}
	for ; j < len(out); j++ {
		out[j] = pad
	}
}

func teaTransform(buf *[4]uint32, in []uint32) {
	var sum uint32
	b0, b1 := buf[0], buf[1]
	a, b, c, d := in[0], in[1], in[2], in[3]
	for n := 0; n < 16; n++ {
		sum += 0x9E3779B9
		b0 += ((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >> 5) + b)
		b1 += ((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >> 5) + d)
	}
	buf[0] += b0
	buf[1] += b1
}

// halfMD4 is the reduced MD4 compression the kernel uses for dir hashes.
func halfMD4(buf *[4]uint32, in *[8]uint32) {
	const k2, k3 = 0x5A827999, 0x6ED9EBA1
	f := func(x, y, z uint32) uint32 { return z ^ (x & (y ^ z)) }
	g := func(x, y, z uint32) uint32 { return (x & y) + ((x ^ y) & z) }
	h := func(x, y, z uint32) uint32 { return x ^ y ^ z }
	a, b, c, d := buf[0], buf[1], buf[2], buf[3]
	r := func(fn func(x, y, z uint32) uint32, w *uint32, x, y, z, v uint32, s int) {
		*w = bits.RotateLeft32(*w+fn(x, y, z)+v, s)
	}
	r(f, &a, b, c, d, in[0], 3)
	r(f, &d, a, b, c, in[1], 7)
	r(f, &c, d, a, b, in[2], 11)
	r(f, &b, c, d, a, in[3], 19)
	r(f, &a, b, c, d, in[4], 3)
	r(f, &d, a, b, c, in[5], 7)
	r(f, &c, d, a, b, in[6], 11)
	r(f, &b, c, d, a, in[7], 19)

	r(g, &a, b, c, d, in[1]+k2, 3)
	r(g, &d, a, b, c, in[3]+k2, 5)
	r(g, &c, d, a, b, in[5]+k2, 9)
	r(g, &b, c, d, a, in[7]+k2, 13)
	r(g, &a, b, c, d, in[0]+k2, 3)
	r(g, &d, a, b, c, in[2]+k2, 5)
	r(g, &c, d, a, b, in[4]+k2, 9)
	r(g, &b, c, d, a, in[6]+k2, 13)

	r(h, &a, b, c, d, in[3]+k3, 3)
	r(h, &d, a, b, c, in[7]+k3, 9)
	r(h, &c, d, a, b, in[2]+k3, 11)
	r(h, &b, c, d, a, in[6]+k3, 15)
	r(h, &a, b, c, d, in[1]+k3, 3)
	r(h, &d, a, b, c, in[5]+k3, 9)
	r(h, &c, d, a, b, in[0]+k3, 11)
	r(h, &b, c, d, a, in[4]+k3, 15)

	buf[0] += a
	buf[1] += b
	buf[2] += c
	buf[3] += d
}
