// Package fatiso serves FAT12/16/32 and ISO9660 volumes as read-only
// fsys.FS trees, reading them with go-diskfs v1.9.4 through a read-only
// backend.Storage over any io.ReaderAt (a partition, a VMDK).
//
// The whole tree is indexed at open, so after OpenFAT or OpenISO returns
// no call reaches go-diskfs again: Stat, Lookup and ReadDir answer from
// memory and ReadAt reads file extents straight from the io.ReaderAt, so
// every method is safe for concurrent use and reading a file sequentially
// costs O(size). Inode numbers are 1 for the root and then sequential in
// breadth-first walk order, directories in on-disk entry order: the same
// image always gets the same numbers.
//
// Untrusted images: every call into go-diskfs runs with recover() and a
// read budget, and the sizes go-diskfs would allocate from (FAT, directory
// chains, ISO path tables and directory extents) are checked first. Trees
// with more than MaxEntries objects or MaxDepth levels are refused. A
// problem found while indexing (corrupt directory, inconsistent entry)
// fails the open with one error naming the directory; a broken file
// (FAT chain shorter than its size or looping) fails only reads of it.
// Extended attributes: none.
package fatiso
