// Command sink is the reference for Eddy's one-record HTTP path
// (scripts/bench-small-box.sh): a fasthttp server that reads each request
// and answers 200 with a small JSON body, doing nothing else. The same wrk
// load runs against it and against a node.
package main

import (
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18099", "listen address")
	flag.Parse()
	answer := []byte(`{"offsets":[{"partition":0,"offset":0}]}`)
	log.Fatal(fasthttp.ListenAndServe(*addr, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(answer)
	}))
}
