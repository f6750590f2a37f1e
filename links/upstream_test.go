package links

import "testing"

// TestClip: a target's text cut to a bound, never inside a rune.
func TestClip(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc..."},
		{"aé", 2, "a..."},            // é is two bytes: not cut in two
		{"a\xffbcd", 3, "a\xffb..."}, // invalid bytes before the cut stay
		{"日本語", 7, "日本..."},
	} {
		if got := clip(c.in, c.n); got != c.want {
			t.Errorf("clip(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
