// Go's runtime on Pith: its threads (clone with Go's flags), futexes, per-thread signal
// stacks, asynchronous preemption by tgkill(SIGURG), nil checks through SIGSEGV, and the
// garbage collector's worker threads. Prints "ok NAME" or "FAIL NAME" and exits with the
// number of failures. (No timers: Go's need epoll, which comes with the network issue.)
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

var failures int

func check(name string, ok bool) {
	if ok {
		fmt.Println("ok", name)
	} else {
		fmt.Println("FAIL", name)
		failures++
	}
}

func recovers(f func()) (recovered bool) {
	defer func() { recovered = recover() != nil }()
	f()
	return false
}

type node struct{ next *node }

func main() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				mu.Lock()
				total++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	check("100 goroutines on a sync.Mutex", total == 100000)

	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	sum := 0
	for i := 0; i < 10000; i++ {
		ping <- i
		sum += <-pong
	}
	close(ping)
	check("10,000 round trips on unbuffered channels", sum == 10000*10001/2)

	digests := make([][32]byte, 256)
	for i := range digests {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			data := make([]byte, 64<<10)
			for j := range data {
				data[j] = byte(i + j)
			}
			digests[i] = sha256.Sum256(data)
		}(i)
	}
	wg.Wait()
	all := sha256.New()
	for _, d := range digests {
		all.Write(d[:])
	}
	check("256 goroutines hashing, as one goroutine does", fmt.Sprintf("%x", all.Sum(nil))[:16] == expectedDigest())

	var keep []*node
	for i := 0; i < 200000; i++ {
		keep = append(keep, &node{})
		if i%1000 == 0 {
			keep = keep[:0]
		}
	}
	runtime.GC()
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	check("the garbage collector runs", stats.NumGC >= 1)

	var m map[string]int
	check("a nil map write panics and is recovered", recovers(func() { m["x"] = 1 }))
	var p *node
	check("a nil pointer dereference (SIGSEGV) panics and is recovered",
		recovers(func() { _ = p.next }))

	// One P: main runs again only if the spinning goroutine is preempted asynchronously
	// (sysmon's tgkill with SIGURG), since the loop has no call to yield at.
	runtime.GOMAXPROCS(1)
	var stop, spinning int32
	done := make(chan bool)
	go func() {
		atomic.StoreInt32(&spinning, 1)
		for atomic.LoadInt32(&stop) == 0 {
		}
		done <- true
	}()
	for atomic.LoadInt32(&spinning) == 0 {
		runtime.Gosched()
	}
	atomic.StoreInt32(&stop, 1)
	check("a goroutine that never yields is preempted", <-done)
	os.Exit(failures)
}

// The digest of the 256 hashes above, computed in one goroutine.
func expectedDigest() string {
	all := sha256.New()
	for i := 0; i < 256; i++ {
		data := make([]byte, 64<<10)
		for j := range data {
			data[j] = byte(i + j)
		}
		d := sha256.Sum256(data)
		all.Write(d[:])
	}
	return fmt.Sprintf("%x", all.Sum(nil))[:16]
}
