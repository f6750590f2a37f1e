// Command silent opens sockets to an address and never sends a byte
// (scripts/bench-raft-handshakes.sh): n of them at once, 50 from each of
// the loopback addresses 127.0.1.1, 127.0.1.2, ..., each opened again
// when the server closes it, for -d; it prints how many were open near
// the end. A Raft port holds such a socket until its handshake timeout
// unless it bounds them.
package main

import (
	"flag"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "", "host:port to open sockets to")
	n := flag.Int("n", 10000, "sockets held at once")
	d := flag.Duration("d", 8*time.Second, "how long")
	flag.Parse()
	var open atomic.Int64
	end := time.Now().Add(*d)
	var wg sync.WaitGroup
	for i := range *n {
		src := &net.TCPAddr{IP: net.IPv4(127, byte(1+i/50/62500), byte(1+(i/50/250)%250), byte(1+(i/50)%250))}
		wg.Go(func() {
			for time.Now().Before(end) {
				c, err := (&net.Dialer{LocalAddr: src, Timeout: time.Second}).Dial("tcp", *addr)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				open.Add(1)
				c.SetReadDeadline(end)
				c.Read(make([]byte, 1)) // returns when the server closes it, or at the end
				open.Add(-1)
				c.Close()
			}
		})
		if i%500 == 0 {
			time.Sleep(10 * time.Millisecond) // the listen backlog keeps up
		}
	}
	time.Sleep(time.Until(end) - 500*time.Millisecond)
	fmt.Println(open.Load())
	wg.Wait()
}
