package cpus

import (
	"runtime"
	"testing"
)

func TestSparePOneMoreThanTheCPUs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	if got := SpareP(); got != N()+1 || runtime.GOMAXPROCS(0) != N()+1 {
		t.Fatalf("SpareP = %d, GOMAXPROCS %d; want %d", got, runtime.GOMAXPROCS(0), N()+1)
	}
	if got := SpareP(); got != N()+1 { // again: still one more, not two
		t.Fatalf("SpareP again = %d; want %d", got, N()+1)
	}
}

func TestSparePLeavesGOMAXPROCSFromTheEnvironment(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(1) // as the runtime set it from the variable at start
	if got := SpareP(); got != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Fatalf("SpareP = %d, GOMAXPROCS %d; want 1 as the environment says", got, runtime.GOMAXPROCS(0))
	}
}
