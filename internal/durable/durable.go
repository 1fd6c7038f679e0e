// Package durable holds the file system steps that make a write survive a
// crash, shared by the packages that write files (keys, blobs).
package durable

import (
	"os"
	"runtime"
)

// SyncDir flushes a directory's entries to disk, so that a file created
// or renamed in it survives a crash. Windows cannot sync a directory (it
// makes renames durable by other means), so it is skipped there.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
