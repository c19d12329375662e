package hybrid

// On-disk layout: ISO9660 (ECMA-119), El Torito 1.0, the MBR, and the
// isolinux conventions for a hybrid image.
const (
	isoBlock   = 2048
	firstVD    = 16 // volume descriptors start at this block
	maxVDs     = 64 // descriptors read before giving up on a terminator
	vdBoot     = 0  // boot record
	vdPrimary  = 1
	vdEnd      = 255
	vdIDOff    = 1  // "CD001"
	bootSysOff = 7  // boot system identifier, 32 bytes
	catLBAOff  = 71 // boot record: block of the boot catalog
	toritoID   = "EL TORITO SPECIFICATION"

	// Boot catalog: a validation entry, then the initial/default entry.
	catEntry     = 32
	valHeaderID  = 1
	valPlatform  = 1  // offset: 0 is 80x86 (BIOS)
	platformX86  = 0  //
	valKey       = 30 // 0x55 0xAA
	defBootable  = 0x88
	defMedia     = 1 // offset: 0 is no emulation
	defLBA       = 8 // offset: first block of the boot image
	mediaNoEmul  = 0
	pvdRootRec   = 156 // primary descriptor: root directory record
	dirExtentOff = 2   // directory record: extent block (LE)
	dirSizeOff   = 10  // data length (LE)
	dirFlagsOff  = 25
	dirNameLen   = 32
	dirName      = 33
	flagDir      = 2
	maxDirBytes  = 64 << 20 // directory data walked before giving up

	// The boot info table mkisofs -boot-info-table and isolinux agree on,
	// patched into the boot file: primary descriptor block, boot file block,
	// boot file length, and the 32-bit sum of its words from byte 64 on.
	infoOff     = 8
	infoSumFrom = 64
	// isolinux.bin 3.72 and later start with the hybrid entry point here,
	// marked by this little-endian word.
	hybridOff   = 0x40
	hybridMagic = 0x7078c0fb

	// MBR: boot code, then the fields the hybrid boot code reads: the boot
	// file's first 512-byte sector (64 bits), the disk signature, the
	// partition table and the boot signature.
	mbrCode     = 432
	mbrFileLBA  = 432
	mbrDiskID   = 440
	mbrPartTab  = 446
	mbrSigOff   = 510
	partActive  = 0x80
	partType    = 0x17 // hidden IFS/NTFS: what isohybrid uses, nothing mounts it
	heads       = 64
	sectors     = 32
	cylinder    = heads * sectors * 512 // the image is padded to whole cylinders
	maxCylinder = 1023
)
