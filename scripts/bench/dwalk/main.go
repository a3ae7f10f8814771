// dwalk: walk a tree the way a path backup does, without memento: list every
// directory (getdents), optionally lstat every entry and read every regular file
// (64 KiB reads, optionally O_DIRECT), with up to N goroutines, to measure what a
// cold walk costs the kernel. Usage: dwalk DIR N [stat [read [direct]]]
// (docs/benchmarks.md, "Issue 18, session 17").
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	root := os.Args[1]
	n, _ := strconv.Atoi(os.Args[2])
	stat := len(os.Args) > 3
	read := len(os.Args) > 4
	direct := len(os.Args) > 5

	var dirs, ents atomic.Int64
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var walk func(string)
	walk = func(d string) {
		defer wg.Done()
		es, err := os.ReadDir(d) // DirEntry types from getdents: no lstat
		if err != nil {
			panic(err)
		}
		dirs.Add(1)
		ents.Add(int64(len(es)))
		for _, e := range es {
			p := d + "/" + e.Name()
			if stat {
				os.Lstat(p)
			}
			if read && e.Type().IsRegular() {
				flag := os.O_RDONLY
				if direct {
					flag |= syscall.O_DIRECT
				}
				if f, err := os.OpenFile(p, flag, 0); err == nil {
					raw := make([]byte, 64<<10+4096)
					off := 4096 - int(uintptr(unsafe.Pointer(&raw[0]))&4095)
					b := raw[off : off+64<<10]
					for {
						k, err := f.Read(b)
						if k == 0 || err != nil {
							break
						}
					}
					f.Close()
				}
			}
			if e.IsDir() {
				wg.Add(1)
				select {
				case sem <- struct{}{}:
					go func() { walk(p); <-sem }()
				default:
					walk(p)
				}
			}
		}
	}
	t := time.Now()
	wg.Add(1)
	walk(root)
	wg.Wait()
	fmt.Printf("n=%d stat=%v dirs=%d ents=%d %.3fs\n", n, stat, dirs.Load(), ents.Load(), time.Since(t).Seconds())
}
