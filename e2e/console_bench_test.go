package e2e

import (
	"fmt"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Console figures (issue 16), run by scripts/bench-console.sh: the time
// from navigation to the first complete render of a page in Debian's
// Chromium, against a real node.

// BenchmarkConsoleOverview: the Overview of a node with 64 partitions
// (16 topics of 4), from navigation to its cards showing all 64.
func BenchmarkConsoleOverview(b *testing.B) {
	p := newProc(b)
	p.start()
	for i := 0; i < 16; i++ {
		if code, err := p.do("POST", "/v1/topics", "application/json", []byte(fmt.Sprintf(`{"name":"t%d","partitions":4}`, i)), nil); err != nil || code != 201 {
			b.Fatalf("create: %d %v", code, err)
		}
	}
	br := newBrowser(b, p)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		br.fresh(p.url("/console/#t=" + p.token))
		br.waitText(`[data-testid="card-partitions"]`, "64")
	}
}

// BenchmarkConsoleNewestPage: the record browser on a topic of a million
// records (one partition), from navigation to the newest 50 on screen.
func BenchmarkConsoleNewestPage(b *testing.B) {
	p := newProc(b)
	p.start()
	out, err := exec.Command(eddyBin, "bench", "produce", "--server", "http://"+p.httpAddr, "--token", p.token, "--topic", "big",
		"--records", "1000000", "--size", "100", "--batch", "1000", "--concurrency", "4").CombinedOutput()
	if err != nil {
		b.Fatalf("bench produce: %v\n%s", err, out)
	}
	br := newBrowser(b, p)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		br.fresh(p.url("/console/#t=" + p.token))
		br.open("records/big")
		br.waitText(`[data-testid="records"]`, "999999")
		n, err := chromedp.Run(br.ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="record"]').length`))
		if err != nil || n != 50 {
			b.Fatalf("%d rows (%v)", n, err)
		}
	}
}

// fresh loads the console anew: no token or page state kept from the
// last iteration.
func (b *browser) fresh(url string) {
	b.eval(`try { sessionStorage.clear() } catch (e) {}`)
	b.do("navigate", chromedp.Navigate("about:blank"))
	b.do("navigate", chromedp.Navigate(url))
}
