// Package overlay is vmroot's copy-on-write union engine: one writable
// diff directory on the host over read-only layers (host directories or
// filesystems inside images, as fsys.FS). It knows nothing of FUSE or NFS;
// both front ends call it in-process with node pointers and credentials,
// and get syscall.Errno values back.
//
// # On-disk format of the diff
//
// The diff is an aufs rw branch: a name shadows the same name below it;
// ".wh.NAME" hides NAME of the layers below; ".wh..wh..opq" in a directory
// hides everything below that directory; names beginning ".wh." are
// reserved and never shown. Whiteouts are hard links to the branch's
// ".wh..wh.aufs" (plain empty files when the link count runs out), as aufs
// makes them. Reserved directories in the diff root:
//
//   - .wh..wh.plnk/  pseudo-links: one hard link per copied-up file whose
//     lower inode had more than one name, named by its origin id, so a
//     second name of the same lower inode finds the copied-up inode.
//   - .wh..wh.orph/  staging: copy-ups and new directories are built here
//     and renamed into place; it is emptied at every mount.
//
// Read-only directory layers may carry aufs whiteouts or overlayfs ones
// (a 0/0 character device; trusted.overlay.opaque="y"); both are honoured.
//
// vmroot adds extended attributes in the trusted.vmroot. namespace (when
// the process cannot set trusted.* attributes, i.e. is not root, it uses
// user.vmroot.): "origin" on every copied-up object (its identity below),
// "meta" on a regular file whose data still lives in the lower layer (a
// metadata-only copy-up: the diff file is sparse and aufs would show it as
// zeros; every other entry is plain aufs), "pending" on pseudo-links.
//
// # Identity
//
// st_ino of a lower object is its lower inode number tagged with the
// layer's distance from the base in bits 48-62 (so the base's numbers are
// unchanged); a copied-up object keeps it through its origin attribute, so
// st_ino is the same across copy-up, unmount, remount and restarts. Objects
// created in the diff have st_ino = host st_ino | 1<<63.
//
// ID returns a compact handle (at most 40 bytes). Resolve maps it back
// without any in-memory path cache: an upper object is reopened by its host
// file handle (open_by_handle_at) and its path read back from the host; a
// lower directory is found through its ".." chain in the (immutable) lower
// layer; a lower non-directory is found in its parent directory (carried in
// the handle) by origin, so a copied-up, renamed-in-place or whited-out
// state is seen as the union sees it now.
//
// # Renames
//
// Renaming a directory that exists in a lower layer copies up its whole
// subtree (directories, and regular files as metadata-only copies, so no
// file data is copied), marks the copies opaque and renames the copy: the
// result is a plain aufs branch with no redirects. The cost is one inode
// per entry in the subtree.
//
// # Crash safety
//
// Copy-ups are staged in .wh..wh.orph and renamed into place; a copy-up
// that carries file data is fsynced before its rename, so after a crash a
// file is wholly old or wholly new. Copies without data (metadata-only
// copy-ups, new empty files) are not fsynced: a journaling host
// filesystem (ext4, xfs) commits their size and attributes no later than
// the rename that makes them visible. A metadata-only copy-up that later
// gains its data is filled in place and its "meta" attribute removed only
// after fsync. A rename of a lower name first whites out the old name (the
// upper copy still at that name shadows its own whiteout), then renames:
// the rename(2) is the one step at which the name changes, so a crash
// shows the object under exactly one of its names. Replacing an upper
// directory (which may hold whiteouts) is an exchange followed by removal
// of the old target: a crash in between can leave the replaced, empty
// directory under the source's old name.
//
// # Memory
//
// The engine holds its nodes weakly: a node that no front end, open
// handle or child holds any more (for FUSE: once the kernel has sent
// FORGET for it) is dropped at the next garbage collection. Everything in
// a node is read back from the layers, so a later lookup, or Resolve of
// its ID, rebuilds it with the same st_ino.
//
// # Permissions
//
// Namespace operations do not check permissions: the FUSE front end
// leaves that to the kernel (default_permissions, with POSIX ACLs), and
// other front ends call Access and MayDelete, which follow the kernel's
// rules: access ACLs, and the sticky-directory rule for removal.
//
// # Concurrency
//
// Namespace changes take a tree lock exclusively; lookups and readdir
// share it; file reads and writes take no tree lock at all. Data copy-up of
// a large file happens outside the tree lock.
package overlay
