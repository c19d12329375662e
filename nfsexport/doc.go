// Package nfsexport is the root of vmroot's NFSv3 export stack.
//
// The protocol layer lives in subpackages and knows nothing about files:
//
//   - xdr: bounded XDR (RFC 4506) encoding and decoding.
//   - rpc: ONC RPC (RFC 5531) server and client over TCP record marking
//     and UDP, with AUTH_NONE and AUTH_SYS credentials.
//   - portmap: portmapper v2 (RFC 1833) answering from a local table.
//   - mount: MOUNT v3 (RFC 1813 appendix I) wire types and dispatcher.
//   - nfs3: NFSv3 (RFC 1813) wire types, codecs and dispatcher.
//   - client: an in-process NFSv3/MOUNT/portmap client for tests.
//
// The server package puts them together: an NFSv3 server over the overlay
// engine with one copy-on-write view per client host (vmroot serve).
package nfsexport
