package disklayout

// Directory entry layout: inode u32, rec_len u16, name_len u8 (u16 without
// the filetype feature), file_type u8, name.
const (
	DirEntryHeaderSize = 8
	MaxNameLen         = 255
)

// File types in directory entries (with the filetype feature).
const (
	FtUnknown = 0
	FtRegFile = 1
	FtDir     = 2
	FtChrdev  = 3
	FtBlkdev  = 4
	FtFifo    = 5
	FtSock    = 6
	FtSymlink = 7
	// FtDirCsum marks the checksum tail of a metadata_csum leaf block.
	FtDirCsum = 0xDE
)

// DirEntry is a decoded directory entry header.
type DirEntry struct {
	Inode    uint32
	RecLen   uint32 // decoded length (see DecodeDirEntry)
	NameLen  uint16
	FileType uint8
}

// DecodeDirEntry decodes the entry header at the start of b (8+ bytes).
// hasFileType says whether the filetype feature splits the name length
// field. blockSize is needed to decode rec_len for 64 KiB blocks, where
// 0 and 65535 stand for 65536.
func DecodeDirEntry(b []byte, hasFileType bool, blockSize uint32) DirEntry {
	d := DirEntry{Inode: le.Uint32(b[0:])}
	raw := uint32(le.Uint16(b[4:]))
	d.RecLen = raw
	if blockSize >= 65536 {
		if raw == 0 || raw == 65535 {
			d.RecLen = blockSize
		} else {
			d.RecLen = raw&65532 | (raw&3)<<16
		}
	}
	if hasFileType {
		d.NameLen = uint16(b[6])
		d.FileType = b[7]
	} else {
		d.NameLen = le.Uint16(b[6:])
	}
	return d
}
