package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"go.yaml.in/yaml/v4"
)

// Profile is a named CLI target: a server and the token to use with it.
type Profile struct {
	Server    string `yaml:"server"`
	Token     string `yaml:"token,omitempty"`
	TokenFile string `yaml:"token_file,omitempty"`
	// CAFile (PEM) is trusted, besides the system's roots, for an https
	// server: a node over TLS writes its certificate's file here.
	CAFile string `yaml:"ca_file,omitempty"`
}

// Profiles is the CLI's profile file.
type Profiles struct {
	Current  string             `yaml:"current"`
	Profiles map[string]Profile `yaml:"profiles"`
}

// ProfilePath is $EDDY_CONFIG_DIR/profiles.yaml, else
// $XDG_CONFIG_HOME/eddy/profiles.yaml, else ~/.config/eddy/profiles.yaml.
func ProfilePath() (string, error) {
	if d := os.Getenv("EDDY_CONFIG_DIR"); d != "" {
		return filepath.Join(d, "profiles.yaml"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "eddy", "profiles.yaml"), nil
}

// LoadProfiles reads the profile file; a missing file is empty.
func LoadProfiles() (*Profiles, string, error) {
	path, err := ProfilePath()
	if err != nil {
		return nil, "", err
	}
	ps := &Profiles{Profiles: map[string]Profile{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ps, path, nil
	}
	if err != nil {
		return nil, path, err
	}
	if err := yaml.Unmarshal(b, ps); err != nil {
		return nil, path, fmt.Errorf("%s: %w", path, err)
	}
	if ps.Profiles == nil {
		ps.Profiles = map[string]Profile{}
	}
	return ps, path, nil
}

// Save writes the profile file (mode 0600: it may hold tokens).
func (ps *Profiles) Save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := yaml.Marshal(ps)
	if err != nil {
		return err
	}
	return writeSecret(path, b)
}

// Names lists the profiles.
func (ps *Profiles) Names() []string {
	out := make([]string, 0, len(ps.Profiles))
	for n := range ps.Profiles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// WriteProfile stores a profile; it becomes current when there is none (or
// makeCurrent). It returns the file written.
func WriteProfile(name string, p Profile, makeCurrent bool) (string, error) {
	ps, path, err := LoadProfiles()
	if err != nil {
		return "", err
	}
	ps.Profiles[name] = p
	if ps.Current == "" || makeCurrent {
		ps.Current = name
	}
	return path, ps.Save(path)
}

// TokenOf returns the profile's token (inline, or read from its file).
func (p Profile) TokenOf() (string, error) {
	if p.Token != "" {
		return p.Token, nil
	}
	if p.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(p.TokenFile)
	if err != nil {
		return "", err
	}
	return string(trimSpace(b)), nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
