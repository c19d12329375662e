package disklayout

import "fmt"

// Compatible features (s_feature_compat): an implementation that does not
// know them may still read and write the filesystem.
const (
	CompatDirPrealloc   = 0x1
	CompatImagicInodes  = 0x2
	CompatHasJournal    = 0x4
	CompatExtAttr       = 0x8
	CompatResizeInode   = 0x10
	CompatDirIndex      = 0x20
	CompatLazyBG        = 0x40
	CompatExcludeInode  = 0x80
	CompatExcludeBitmap = 0x100
	CompatSparseSuper2  = 0x200
	CompatFastCommit    = 0x400
	CompatStableInodes  = 0x800
	CompatOrphanFile    = 0x1000
)

// Incompatible features (s_feature_incompat): a reader that does not know
// one of them must refuse the filesystem.
const (
	IncompatCompression = 0x1
	IncompatFiletype    = 0x2
	IncompatRecover     = 0x4
	IncompatJournalDev  = 0x8
	IncompatMetaBG      = 0x10
	IncompatExtents     = 0x40
	Incompat64Bit       = 0x80
	IncompatMMP         = 0x100
	IncompatFlexBG      = 0x200
	IncompatEAInode     = 0x400
	IncompatDirData     = 0x1000
	IncompatCsumSeed    = 0x2000
	IncompatLargeDir    = 0x4000
	IncompatInlineData  = 0x8000
	IncompatEncrypt     = 0x10000
	IncompatCasefold    = 0x20000
)

// Read-only compatible features (s_feature_ro_compat): safe to ignore
// when only reading.
const (
	RoCompatSparseSuper   = 0x1
	RoCompatLargeFile     = 0x2
	RoCompatBtreeDir      = 0x4
	RoCompatHugeFile      = 0x8
	RoCompatGdtCsum       = 0x10
	RoCompatDirNlink      = 0x20
	RoCompatExtraIsize    = 0x40
	RoCompatHasSnapshot   = 0x80
	RoCompatQuota         = 0x100
	RoCompatBigalloc      = 0x200
	RoCompatMetadataCsum  = 0x400
	RoCompatReplica       = 0x800
	RoCompatReadonly      = 0x1000
	RoCompatProject       = 0x2000
	RoCompatSharedBlocks  = 0x4000
	RoCompatVerity        = 0x8000
	RoCompatOrphanPresent = 0x10000
)

// Feature names as e2fsprogs (lib/e2p) spells them, per word and bit.
var (
	compatNames = map[uint32]string{
		CompatDirPrealloc: "dir_prealloc", CompatImagicInodes: "imagic_inodes",
		CompatHasJournal: "has_journal", CompatExtAttr: "ext_attr",
		CompatResizeInode: "resize_inode", CompatDirIndex: "dir_index",
		CompatLazyBG: "lazy_bg", CompatExcludeInode: "exclude_inode",
		CompatExcludeBitmap: "snapshot_bitmap", CompatSparseSuper2: "sparse_super2",
		CompatFastCommit: "fast_commit", CompatStableInodes: "stable_inodes",
		CompatOrphanFile: "orphan_file",
	}
	incompatNames = map[uint32]string{
		IncompatCompression: "compression", IncompatFiletype: "filetype",
		IncompatRecover: "needs_recovery", IncompatJournalDev: "journal_dev",
		IncompatMetaBG: "meta_bg", IncompatExtents: "extent", Incompat64Bit: "64bit",
		IncompatMMP: "mmp", IncompatFlexBG: "flex_bg", IncompatEAInode: "ea_inode",
		IncompatDirData: "dirdata", IncompatCsumSeed: "metadata_csum_seed",
		IncompatLargeDir: "large_dir", IncompatInlineData: "inline_data",
		IncompatEncrypt: "encrypt", IncompatCasefold: "casefold",
	}
	roCompatNames = map[uint32]string{
		RoCompatSparseSuper: "sparse_super", RoCompatLargeFile: "large_file",
		RoCompatHugeFile: "huge_file", RoCompatGdtCsum: "uninit_bg",
		RoCompatDirNlink: "dir_nlink", RoCompatExtraIsize: "extra_isize",
		RoCompatHasSnapshot: "snapshot", RoCompatQuota: "quota",
		RoCompatBigalloc: "bigalloc", RoCompatMetadataCsum: "metadata_csum",
		RoCompatReplica: "replica", RoCompatReadonly: "read-only",
		RoCompatProject: "project", RoCompatSharedBlocks: "shared_blocks",
		RoCompatVerity: "verity", RoCompatOrphanPresent: "orphan_present",
	}
)

func appendNames(out []string, mask uint32, names map[uint32]string, kind byte) []string {
	for bit := 0; bit < 32; bit++ {
		m := uint32(1) << bit
		if mask&m == 0 {
			continue
		}
		if n, ok := names[m]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("FEATURE_%c%d", kind, bit))
		}
	}
	return out
}

// FeatureNames lists the features set in s in dumpe2fs order (compat,
// incompat, ro_compat; low bit first). Unknown bits are named like
// e2fsprogs does: FEATURE_C12, FEATURE_I20, FEATURE_R17.
func (s *Superblock) FeatureNames() []string {
	var out []string
	out = appendNames(out, s.FeatureCompat, compatNames, 'C')
	out = appendNames(out, s.FeatureIncompat, incompatNames, 'I')
	out = appendNames(out, s.FeatureRoCompat, roCompatNames, 'R')
	return out
}

// IncompatNames names the incompat feature bits in mask.
func IncompatNames(mask uint32) []string {
	return appendNames(nil, mask, incompatNames, 'I')
}
